using Raft.Engine.Consensus;
using Raft.Engine.Membership;

namespace Raft.Engine.Reads;

/// <summary>A read the leader has registered: answered once a majority confirms leadership in its round or a later one.</summary>
internal sealed record PendingRead(long RequestId, string Origin, long Index);

/// <summary>
/// The leader's reads waiting for confirmation (ReadIndex, dissertation 6.4), in round order, and the numbering of
/// heartbeat rounds that confirms them: every AppendEntries carries the latest round number and every answer echoes
/// it, so an answer to round r confirms every read of round r or before. Also the lease, which dates rounds.
/// </summary>
internal sealed class ReadIndexQueue(RaftOptions options)
{
    private readonly List<(PendingRead Read, long Round, HashSet<string> Acks)> _unconfirmed = [];
    private readonly List<(long RequestId, string Origin)> _awaitingCommit = [];
    private LeaderLease? _lease;

    /// <summary>The latest round number; AppendEntries carry it.</summary>
    public long Round { get; private set; }

    /// <summary>A read was registered since the last batch: a heartbeat round must go out to confirm it.</summary>
    public bool HeartbeatWanted { get; private set; }

    private LeaderLease? Lease => options.LeaseReads ? _lease ??= new LeaderLease(options.ElectionTicks, options.LeaseDriftMarginTicks) : null;

    /// <summary>With lease reads: whether a recent majority answer lets the leader read without a round.</summary>
    public bool LeaseHolds(ClusterConfiguration configuration, string self, long now) => Lease?.Holds(configuration, self, now) == true;

    /// <summary>Voids the lease until a round sent from now on is answered by a majority (answers to older rounds no longer count).</summary>
    public void DropLease() => _lease?.Reset();

    /// <summary>A heartbeat round is going out at <paramref name="now"/>; with leases each round gets its own number, to date answers.</summary>
    public void OnHeartbeatRound(long now)
    {
        if (Lease is { } lease)
        {
            lease.OnRoundSent(++Round, now);
        }
    }

    /// <summary>The batch was taken: any heartbeat it needed went out with it.</summary>
    public void OnBatchTaken() => HeartbeatWanted = false;

    /// <summary>A new leader does not yet know the commit index of earlier terms: the read waits for its first commit.</summary>
    public void AwaitCommit(long requestId, string origin) => _awaitingCommit.Add((requestId, origin));

    public List<(long RequestId, string Origin)> TakeAwaitingCommit()
    {
        var waiting = _awaitingCommit.ToList();
        _awaitingCommit.Clear();
        return waiting;
    }

    public bool HasAwaitingCommit => _awaitingCommit.Count > 0;

    /// <summary>Registers a read (at its read index) in a new round, already confirmed by <paramref name="confirmedBy"/>.</summary>
    public void Add(PendingRead read, IEnumerable<string> confirmedBy)
    {
        _unconfirmed.Add((read, ++Round, new HashSet<string>(confirmedBy, StringComparer.Ordinal)));
        HeartbeatWanted = true;
    }

    /// <summary>An answer from <paramref name="peer"/> to an AppendEntries of round <paramref name="round"/>.</summary>
    public void Acknowledge(string peer, long round)
    {
        Lease?.OnAnswered(peer, round);
        foreach ((_, long readRound, HashSet<string> acks) in _unconfirmed)
        {
            if (readRound > round)
            {
                break;
            }
            acks.Add(peer);
        }
    }

    /// <summary>The reads a majority has confirmed, from the front: a later round's answers confirm earlier rounds too.</summary>
    public List<PendingRead> TakeConfirmed(ClusterConfiguration configuration)
    {
        var confirmed = new List<PendingRead>();
        while (_unconfirmed.Count > 0 && configuration.IsQuorum(_unconfirmed[0].Acks))
        {
            confirmed.Add(_unconfirmed[0].Read);
            _unconfirmed.RemoveAt(0);
        }
        return confirmed;
    }

    /// <summary>Leadership ended (or begins anew): every waiting read is handed back to be failed, and the lease is void.</summary>
    public List<(long RequestId, string Origin)> TakeAllAndReset()
    {
        var all = _unconfirmed.Select(r => (r.Read.RequestId, r.Read.Origin)).Concat(_awaitingCommit).ToList();
        _unconfirmed.Clear();
        _awaitingCommit.Clear();
        _lease?.Reset();
        return all;
    }
}
