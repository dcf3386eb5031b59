using System.Diagnostics;
using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Hosting;

/// <summary>
/// The engine's traces (System.Diagnostics, so OpenTelemetry and any other <see cref="ActivityListener"/> can take
/// them): one <c>raft.write</c> span per <see cref="RaftNode.ProposeAsync"/>, a child of the caller's span (a gRPC
/// server span, say), with a child for each stage the write went through on this node. Nothing is recorded unless a
/// listener samples <see cref="SourceName"/>.
/// </summary>
public static class RaftTracing
{
    /// <summary>The <see cref="ActivitySource"/> name to listen to (OpenTelemetry: <c>AddSource(RaftTracing.SourceName)</c>).</summary>
    public const string SourceName = "Raft.Engine";

    /// <summary>The whole write, from the call until its answer.</summary>
    public const string Write = "raft.write";

    /// <summary>Queued for the node's loop until the core appended it (its index and term are known from here).</summary>
    public const string Propose = "raft.propose";

    /// <summary>The leader's durable write (one fsync) of the batch that holds the entry.</summary>
    public const string Persist = "raft.persist";

    /// <summary>From its AppendEntries leaving until a majority stored it (committed); an event for each follower that stored it.</summary>
    public const string Replicate = "raft.replicate";

    /// <summary>The state machine applying the entry.</summary>
    public const string Apply = "raft.apply";

    internal static readonly ActivitySource Source = new(SourceName, typeof(RaftTracing).Assembly.GetName().Version?.ToString());
}

/// <summary>What is known so far of one traced write; filled in on the node's loop.</summary>
internal sealed class WriteTrace(Activity write)
{
    public Activity Write { get; } = write;
    public DateTime? ProposedAt { get; set; }
    public long Index { get; set; }
    public DateTime? PersistStartedAt { get; set; }
    public DateTime? PersistedAt { get; set; }
    public int BatchEntries { get; set; }
    public DateTime? CommittedAt { get; set; }
    public List<(string Follower, DateTime At)> StoredBy { get; } = [];

    /// <summary>A <c>raft.write</c> span under the caller's, or null when nobody records this source.</summary>
    public static WriteTrace? Begin(string nodeId)
    {
        Activity? write = RaftTracing.Source.StartActivity(RaftTracing.Write, ActivityKind.Internal);
        if (write is null)
        {
            return null;
        }
        write.SetTag("raft.node", nodeId);
        if (!write.Recorded)
        {
            write.Dispose();
            return null;
        }
        return new WriteTrace(write);
    }
}

/// <summary>
/// Marks the stages of the traced writes in flight as the loop carries them out, and emits their spans once each is
/// applied (or dropped). The stage spans are made afterwards with the times seen, so that nothing on the loop waits
/// for a span and an untraced write costs one dictionary check per batch.
/// </summary>
internal sealed class WriteTracer(string nodeId)
{
    private readonly Dictionary<long, WriteTrace> _byIndex = [];
    private DateTime _applyMark;

    public bool Idle => _byIndex.Count == 0;

    public void Proposed(WriteTrace trace, long index, long term)
    {
        trace.ProposedAt = DateTime.UtcNow;
        trace.Index = index;
        trace.Write.SetTag("raft.index", index);
        trace.Write.SetTag("raft.term", term);
        _byIndex[index] = trace;
    }

    /// <summary>A Ready was taken: its new entries are about to leave and be written; its committed entries are committed now.</summary>
    public void Taken(Ready ready)
    {
        if (Idle)
        {
            return;
        }
        DateTime now = DateTime.UtcNow;
        foreach (LogEntry entry in ready.EntriesToPersist)
        {
            if (_byIndex.TryGetValue(entry.Index, out WriteTrace? trace))
            {
                trace.PersistStartedAt = now;
                trace.BatchEntries = ready.EntriesToPersist.Count;
            }
        }
        foreach (LogEntry entry in ready.CommittedEntries)
        {
            if (_byIndex.TryGetValue(entry.Index, out WriteTrace? trace))
            {
                trace.CommittedAt ??= now;
            }
        }
    }

    public void AfterStep(ReadyStep step, Ready ready)
    {
        if (Idle)
        {
            return; // traces are added between batches, never during one: nothing of this batch is traced
        }
        if (step is ReadyStep.SentBeforePersist or ReadyStep.Sent)
        {
            _applyMark = DateTime.UtcNow; // what is applied next starts here
        }
        if (step != ReadyStep.Persisted)
        {
            return;
        }
        DateTime now = DateTime.UtcNow;
        foreach (LogEntry entry in ready.EntriesToPersist)
        {
            if (_byIndex.TryGetValue(entry.Index, out WriteTrace? trace))
            {
                trace.PersistedAt = now;
            }
        }
    }

    /// <summary>The leader learned how far its followers have stored: notes each follower that now holds a traced entry.</summary>
    public void FollowersProgressed(IReadOnlyList<FollowerStatus> followers)
    {
        if (followers.Count == 0)
        {
            return;
        }
        DateTime now = DateTime.UtcNow;
        foreach (WriteTrace trace in _byIndex.Values)
        {
            if (trace.CommittedAt != null && trace.StoredBy.Count == followers.Count)
            {
                continue;
            }
            foreach (FollowerStatus follower in followers)
            {
                if (follower.MatchIndex >= trace.Index && !trace.StoredBy.Exists(s => s.Follower == follower.Id))
                {
                    trace.StoredBy.Add((follower.Id, now));
                }
            }
        }
    }

    /// <summary>An entry was applied (it began at the last mark): a traced one has its stage spans emitted.</summary>
    public void Applied(LogEntry entry)
    {
        if (Idle)
        {
            return;
        }
        DateTime now = DateTime.UtcNow;
        DateTime applyStart = _applyMark;
        _applyMark = now;
        if (_byIndex.Remove(entry.Index, out WriteTrace? trace))
        {
            Emit(trace, RaftTracing.Apply, applyStart, now);
            EmitStages(trace);
        }
    }

    /// <summary>The entry at <paramref name="index"/> will not be applied as proposed (overwritten, or replaced by a snapshot).</summary>
    public void Dropped(long index, string reason)
    {
        if (_byIndex.Remove(index, out WriteTrace? trace))
        {
            EmitStages(trace);
            trace.Write.SetStatus(ActivityStatusCode.Error, reason);
        }
    }

    public void Clear() => _byIndex.Clear();

    private void EmitStages(WriteTrace trace)
    {
        if (trace.ProposedAt is { } proposed)
        {
            Emit(trace, RaftTracing.Propose, trace.Write.StartTimeUtc, proposed); // queued when the write began
        }
        if (trace.PersistStartedAt is { } persistStart && trace.PersistedAt is { } persisted)
        {
            Emit(trace, RaftTracing.Persist, persistStart, persisted, span => span.SetTag("raft.batch.entries", trace.BatchEntries));
        }
        if (trace.PersistStartedAt is { } sent && trace.CommittedAt is { } committed)
        {
            Emit(trace, RaftTracing.Replicate, sent, committed, span =>
            {
                foreach ((string follower, DateTime at) in trace.StoredBy)
                {
                    span.AddEvent(new ActivityEvent("stored by follower", at, new ActivityTagsCollection { ["raft.follower"] = follower }));
                }
            });
        }
    }

    private void Emit(WriteTrace trace, string name, DateTime start, DateTime end, Action<Activity>? fill = null)
    {
        using Activity? span = RaftTracing.Source.StartActivity(name, ActivityKind.Internal, trace.Write.Context, startTime: start);
        if (span is null)
        {
            return;
        }
        span.SetTag("raft.node", nodeId);
        span.SetTag("raft.index", trace.Index);
        fill?.Invoke(span);
        span.SetEndTime(end < start ? start : end);
    }
}
