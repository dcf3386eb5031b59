using Raft.Client.Events;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using Raft.Engine.Hosting;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Node.Hosting;
using Raft.Protocol;

namespace Raft.Node.Events;

/// <summary>
/// Turns the node's events into sequence-numbered changes and pushes them to hub subscribers in batches, at most every
/// <see cref="Interval"/>: thousands of commits a second become one "appended", one "commit" and one "applied" change per
/// batch. If events pile up beyond <see cref="MaxBacklog"/>, they are dropped and subscribers are told to reload the full state.
/// </summary>
public sealed class EventStreamer(ClusterMember member, IHubContext<RaftHub> hub, ILogger<EventStreamer> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(50);
    private const int MaxBacklog = 50_000;
    private const int MaxEntriesPerBatch = 200;
    private const int MaxTracedPerBatch = 500;
    private static readonly TimeSpan StatusRefresh = TimeSpan.FromMilliseconds(250);
    private readonly ConcurrentQueue<object> _events = new();
    private long _seq;
    private int _backlog;
    private int _subscribers;
    private volatile bool _overflowed;

    public long Seq => Interlocked.Read(ref _seq);

    /// <summary>
    /// Hub connections. With none, events are not queued at all (a node nobody watches spends nothing on its stream);
    /// a subscriber starts from the full state anyway.
    /// </summary>
    /// <summary>Completed when a subscriber connects; the stream sleeps on it while nobody listens.</summary>
    private TaskCompletionSource _subscriberArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void SubscriberConnected()
    {
        Interlocked.Increment(ref _subscribers);
        Volatile.Read(ref _subscriberArrived).TrySetResult();
    }

    public void SubscriberDisconnected() => Interlocked.Decrement(ref _subscribers);

    public async Task<FullState> GetFullStateAsync(CancellationToken cancellationToken = default)
    {
        long seq = Seq;
        RaftNodeStatus status = member.Node.Status;
        IReadOnlyList<LogEntry> tail = await member.Node.ReadLogAsync(Math.Max(status.FirstIndex, status.LastIndex - MaxEntriesPerBatch + 1), MaxEntriesPerBatch, cancellationToken);
        return new FullState(seq, StatusOf(member), tail.Select(View).ToList());
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        member.Node.EventRaised += Enqueue;
        member.Faults.Changed += Enqueue;
        member.Tracer.Traced += Enqueue;
        try
        {
            using var timer = new PeriodicTimer(Interval);
            DateTimeOffset lastSent = DateTimeOffset.MinValue;
            while (true)
            {
                // Nobody listens: no wake-ups (20 a second were a good part of an idle member's CPU) until someone does.
                TaskCompletionSource arrived = Volatile.Read(ref _subscriberArrived);
                if (Volatile.Read(ref _subscribers) == 0)
                {
                    await arrived.Task.WaitAsync(stoppingToken);
                    Interlocked.CompareExchange(ref _subscriberArrived, new(TaskCreationOptions.RunContinuationsAsynchronously), arrived);
                }
                if (!await timer.WaitForNextTickAsync(stoppingToken))
                {
                    break;
                }
                if (_overflowed)
                {
                    _events.Clear();
                    Interlocked.Exchange(ref _backlog, 0);
                    _overflowed = false;
                    await hub.Clients.All.SendAsync(HubContract.Reset, stoppingToken);
                    continue;
                }
                if (Volatile.Read(ref _subscribers) == 0)
                {
                    continue;
                }
                List<Change> changes = await DrainAsync(stoppingToken);
                if (changes.Count == 0 && DateTimeOffset.UtcNow - lastSent < StatusRefresh)
                {
                    continue;
                }
                long last = Seq;
                var batch = new ChangeBatch(changes.Count > 0 ? changes[0].Seq : last + 1, last, StatusOf(member), changes);
                await hub.Clients.All.SendAsync(HubContract.Changes, batch, stoppingToken);
                lastSent = DateTimeOffset.UtcNow;
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            logger.LogInformation("event stream stopped: {Error}", e.Message);
        }
        finally
        {
            try
            {
                member.Node.EventRaised -= Enqueue;
            }
            catch (InvalidOperationException)
            {
            }
            member.Faults.Changed -= Enqueue;
            member.Tracer.Traced -= Enqueue;
        }
    }

    private void Enqueue(object item)
    {
        if (Volatile.Read(ref _subscribers) == 0)
        {
            return;
        }
        if (Interlocked.Increment(ref _backlog) > MaxBacklog)
        {
            _overflowed = true;
            return;
        }
        _events.Enqueue(item);
    }

    /// <summary>Everything queued, as changes: the rare ones each, the high-volume ones (append, commit, apply) coalesced.</summary>
    private async Task<List<Change>> DrainAsync(CancellationToken cancellationToken)
    {
        var changes = new List<Change>();
        long? appendFrom = null, appendTo = null, commit = null, applied = null;
        int traced = 0;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        while (_events.TryDequeue(out object? item))
        {
            Interlocked.Decrement(ref _backlog);
            switch (item)
            {
                case EntriesAppended e:
                    // A truncation (an append that starts at or below what was appended before) is kept as its own change.
                    if (appendFrom != null && e.FirstIndex <= appendTo)
                    {
                        changes.Add(await AppendedAsync(appendFrom.Value, appendTo!.Value, now, cancellationToken));
                        appendFrom = null;
                    }
                    appendFrom ??= e.FirstIndex;
                    appendTo = e.LastIndex;
                    break;
                case CommitAdvanced e:
                    commit = e.CommitIndex;
                    break;
                case EntryApplied e:
                    applied = e.Index;
                    break;
                case RaftEvent e:
                    changes.Add(Describe(e));
                    break;
                case MessageTrace t when traced++ < MaxTracedPerBatch:
                    changes.Add(new Change(Next(), now, t.Outgoing ? "message-sent" : "message-received", t.Describe(), Term: t.Message.Term));
                    break;
                case MessageTrace:
                    break; // beyond the cap for one batch: dropped (the trace is a sample, not a record)
                case FaultSpec f:
                    changes.Add(new Change(Next(), now, "faults", f.Isolate ? "isolated from all peers" :
                        f.CutPeers.Count > 0 ? $"links cut to {string.Join(", ", f.CutPeers)}" :
                        f.DropRate > 0 || f.MaxDelayMs > 0 ? $"dropping {f.DropRate:P0}, delaying up to {f.MaxDelayMs} ms" : "healed"));
                    break;
            }
        }
        if (appendFrom != null)
        {
            changes.Add(await AppendedAsync(appendFrom.Value, appendTo!.Value, now, cancellationToken));
        }
        if (commit != null)
        {
            changes.Add(new Change(Next(), now, "commit", $"commit index {commit}", Index: commit));
        }
        if (applied != null)
        {
            changes.Add(new Change(Next(), now, "applied", $"applied up to {applied}", Index: applied));
        }
        return changes;
    }

    private async Task<Change> AppendedAsync(long from, long to, DateTimeOffset at, CancellationToken cancellationToken)
    {
        long start = Math.Max(from, to - MaxEntriesPerBatch + 1);
        IReadOnlyList<LogEntry> entries = await member.Node.ReadLogAsync(start, MaxEntriesPerBatch, cancellationToken);
        return new Change(Next(), at, "appended", from == to ? $"entry {from}" : $"entries {from}-{to}", Index: to, FromIndex: from,
            Entries: entries.Where(e => e.Index <= to).Select(View).ToList());
    }

    private long Next() => Interlocked.Increment(ref _seq);

    private Change Describe(RaftEvent e) => e switch
    {
        TermChanged t => new Change(Next(), t.At, "term", $"term {t.Term}", Term: t.Term),
        VoteCast v => new Change(Next(), v.At, "vote", $"voted for {v.VotedFor} in term {v.Term}", Term: v.Term, LeaderId: v.VotedFor),
        CampaignStarted c => new Change(Next(), c.At, "campaign", $"{(c.PreVote ? "pre-vote" : "election")} for term {c.Term}" +
            (c.LastHeardFromLeader is { } heard ? $", {(c.At - heard).TotalMilliseconds:F0} ms after it last heard from the leader" : ""), Term: c.Term),
        RoleChanged r => new Change(Next(), r.At, "role", $"became {r.Role} in term {r.Term}", Term: r.Term, Role: r.Role.ToString()),
        LeaderChanged l => new Change(Next(), l.At, "leader", l.LeaderId is null ? $"no leader known (term {l.Term})" : $"leader is {l.LeaderId} (term {l.Term})", Term: l.Term, LeaderId: l.LeaderId),
        SnapshotTaken s => new Change(Next(), s.At, "snapshot-taken", $"snapshot at {s.Index} ({s.Bytes} bytes)", Term: s.Term, Index: s.Index),
        SnapshotInstalled s => new Change(Next(), s.At, "snapshot-installed", $"installed snapshot at {s.Index} ({s.Bytes} bytes) from {s.FromLeader}", Term: s.Term, Index: s.Index),
        ConfigurationChanged c => new Change(Next(), c.At, "configuration", $"{c.Configuration}{(c.Committed ? "" : " (not committed yet)")}"),
        OperationAbandoned a => new Change(Next(), a.At, "abandoned", a.Notice switch
        {
            Engine.Consensus.CatchUpFailed f => $"adding {f.ServerId} failed: {f.Reason}",
            Engine.Consensus.TransferAbandoned t => $"transfer to {t.Target} abandoned",
            _ => a.Notice.ToString(),
        }),
        ProblemDetected p => new Change(Next(), p.At, "problem", Describe(p.Notice)),
        _ => new Change(Next(), e.At, e.GetType().Name, e.ToString()),
    };

    public static string Describe(Engine.Consensus.RaftNotice notice) => notice switch
    {
        Engine.Consensus.SnapshotRefused r => $"refused a snapshot at {r.Index} from {r.From}: {r.Reason}",
        Engine.Consensus.MessageRefused m => $"refused {m.Kind} from {m.From}: {m.Reason} (further refusals from {m.From} are only counted)",
        Engine.Consensus.FollowerLogLost l => $"{l.Follower} lost entries it had acknowledged (its log ends at {l.LastIndex}, it had matched {l.MatchIndex}): repairing it from {l.LastIndex + 1}",
        _ => notice.ToString(),
    };

    public static LogEntryView View(LogEntry entry) => new(entry.Index, entry.Term, entry.Kind.ToString(), Summarize(entry));

    private static string Summarize(LogEntry entry)
    {
        try
        {
            return entry.Kind switch
            {
                Engine.Log.EntryKind.NoOp => "no-op",
                Engine.Log.EntryKind.Configuration => ClusterConfiguration.Decode(entry.Data).ToString(),
                _ => KvCommand.Decode(entry.Data).ToString(),
            };
        }
        catch (FormatException)
        {
            return $"{entry.Data.Length} bytes";
        }
    }

    public static StatusView StatusOf(ClusterMember member)
    {
        NodeStatus s = Services.StatusMapper.ToProto(member);
        return new StatusView(
            s.Id, s.Role, s.Term, NullIfEmpty(s.VotedFor), NullIfEmpty(s.LeaderId), s.CommitIndex, s.AppliedIndex, s.FirstIndex, s.LastIndex, s.LastTerm,
            s.SnapshotIndex, s.SnapshotTerm, s.SnapshotBytes,
            s.Members.Select(m => new MemberView(m.Id, m.Address, m.Voter, m.MatchIndex, m.NextIndex, m.ReplicationState, m.RecentlyActive)).ToList(),
            new FaultsView(s.FaultsEnabled, [.. s.Faults.CutPeers], s.Faults.Isolate, s.Faults.DropRate, s.Faults.MaxDelayMs),
            NullIfEmpty(s.TransferTarget), NullIfEmpty(s.CatchingUp), s.ElectionElapsedTicks, s.ElectionTimeoutTicks, s.TickMs, s.MaxCommandBytes);
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
