namespace Raft.Engine.Consensus;

/// <summary>
/// Linearizable reads without log writes (ReadIndex, dissertation 6.4): the leader notes its commit index, confirms it
/// still leads with a round of heartbeats answered by a majority, and the read is served once that index is applied.
/// A new leader serves reads only once its no-op has committed. A follower asks the leader for the index.
/// </summary>
public sealed partial class RaftCore
{
    private readonly List<PendingRead> _pendingReads = [];
    private readonly List<(long RequestId, string Origin)> _readsAwaitingCommit = [];
    /// <summary>Numbers heartbeat rounds; every AppendEntries carries the latest, and answers echo it.</summary>
    private long _readContext;
    private bool _readHeartbeatPending;
    private LeaderLease? _lease;

    private LeaderLease? Lease => _options.LeaseReads ? _lease ??= new LeaderLease(_options.ElectionTicks, _options.LeaseDriftMarginTicks) : null;

    private sealed class PendingRead(long requestId, string origin, long index, long context)
    {
        public long RequestId { get; } = requestId;
        public string Origin { get; } = origin;
        public long Index { get; } = index;
        public long Context { get; } = context;
        public HashSet<string> Acks { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>Asks for a read index. The answer comes back as a <see cref="ReadState"/> in a later <see cref="Ready"/>.</summary>
    public void ReadIndex(long requestId)
    {
        if (Role == Role.Leader)
        {
            RegisterRead(requestId, Id);
        }
        else if (LeaderId != null)
        {
            Send(new ReadIndexRequest(Id, LeaderId, Term, requestId));
        }
        else
        {
            _readStates.Add(new ReadState(requestId, 0, false, null));
        }
    }

    private void RegisterRead(long requestId, string origin)
    {
        if (TermAt(CommitIndex) != Term)
        {
            // Until its no-op commits, a new leader does not know the commit index of earlier terms.
            _readsAwaitingCommit.Add((requestId, origin));
            return;
        }
        if (_transferTarget is null && Lease?.Holds(Configuration, Id, _ticks) == true)
        {
            Answer(requestId, origin, CommitIndex, true, Id); // within the lease: no round needed
            return;
        }
        var read = new PendingRead(requestId, origin, CommitIndex, ++_readContext);
        read.Acks.Add(Id);
        if (!_rules.ConfirmReadsWithQuorum)
        {
            read.Acks.UnionWith(Configuration.Voters); // test-only: pretend the heartbeat round already succeeded
        }
        _pendingReads.Add(read);
        _readHeartbeatPending = true;
        ConfirmReads();
    }

    private void StartReadsAwaitingCommit()
    {
        if (_readsAwaitingCommit.Count == 0 || TermAt(CommitIndex) != Term)
        {
            return;
        }
        var waiting = _readsAwaitingCommit.ToList();
        _readsAwaitingCommit.Clear();
        foreach ((long requestId, string origin) in waiting)
        {
            RegisterRead(requestId, origin);
        }
    }

    /// <summary>An answer from <paramref name="peer"/> to an AppendEntries of round <paramref name="context"/> confirms every read of that round or before.</summary>
    private void AcknowledgeReads(string peer, long context)
    {
        Lease?.OnAnswered(peer, context);
        foreach (PendingRead read in _pendingReads)
        {
            if (read.Context > context)
            {
                break;
            }
            read.Acks.Add(peer);
        }
        ConfirmReads();
    }

    private void ConfirmReads()
    {
        // Reads are in round order and a later round's answers confirm earlier rounds too, so confirm from the front.
        while (_pendingReads.Count > 0 && Configuration.IsQuorum(_pendingReads[0].Acks))
        {
            PendingRead read = _pendingReads[0];
            _pendingReads.RemoveAt(0);
            Answer(read.RequestId, read.Origin, read.Index, true, Id);
        }
    }

    private void Answer(long requestId, string origin, long index, bool ok, string? leaderHint)
    {
        if (origin == Id)
        {
            _readStates.Add(new ReadState(requestId, index, ok, leaderHint));
        }
        else
        {
            Send(new ReadIndexResponse(Id, origin, Term, requestId, index, ok));
        }
    }

    private void HandleReadIndexRequest(ReadIndexRequest request)
    {
        if (Role == Role.Leader)
        {
            RegisterRead(request.RequestId, request.From);
        }
        else
        {
            Send(new ReadIndexResponse(Id, request.From, Term, request.RequestId, 0, false));
        }
    }

    private void HandleReadIndexResponse(ReadIndexResponse response) =>
        _readStates.Add(new ReadState(response.RequestId, response.ReadIndex, response.Ok, LeaderId));

    private void FailPendingReads(string? newLeader)
    {
        foreach (PendingRead read in _pendingReads)
        {
            Answer(read.RequestId, read.Origin, 0, false, newLeader);
        }
        foreach ((long requestId, string origin) in _readsAwaitingCommit)
        {
            Answer(requestId, origin, 0, false, newLeader);
        }
        _pendingReads.Clear();
        _readsAwaitingCommit.Clear();
    }
}
