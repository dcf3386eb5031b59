using Raft.Engine.Consensus;
using Raft.Engine.Membership;

namespace Raft.Engine.Reads;

/// <summary>
/// The leader's lease for reads without a heartbeat round (dissertation 6.4.1; off unless <see cref="RaftOptions.LeaseReads"/>).
/// With CheckQuorum a follower ignores votes for an election timeout after it last heard from its leader, so once a
/// majority has answered a round of heartbeats sent at tick T, no other leader can be elected before T plus an election
/// timeout, as counted on the followers' clocks. The leader serves reads from its commit index until then, less a margin
/// for clocks that run at different speeds. The assumption is the clocks': the bound on drift must hold.
/// </summary>
internal sealed class LeaderLease(int electionTicks, int driftMarginTicks)
{
    /// <summary>When each recent round of heartbeats (by its context number) was sent.</summary>
    private readonly Dictionary<long, long> _roundSentAt = [];
    /// <summary>Per peer: when the latest round it has answered was sent.</summary>
    private readonly Dictionary<string, long> _answeredRoundSentAt = new(StringComparer.Ordinal);

    public void Reset()
    {
        _roundSentAt.Clear();
        _answeredRoundSentAt.Clear();
    }

    public void OnRoundSent(long context, long now)
    {
        _roundSentAt[context] = now;
        foreach (long old in _roundSentAt.Where(r => r.Value < now - (2L * electionTicks)).Select(r => r.Key).ToList())
        {
            _roundSentAt.Remove(old); // an answer to a round this old cannot extend the lease anyway
        }
    }

    /// <summary>A peer answered an AppendEntries that carried <paramref name="context"/>: it heard from us at or after that round.</summary>
    public void OnAnswered(string peer, long context)
    {
        if (_roundSentAt.TryGetValue(context, out long sentAt) && sentAt > _answeredRoundSentAt.GetValueOrDefault(peer, long.MinValue))
        {
            _answeredRoundSentAt[peer] = sentAt;
        }
    }

    /// <summary>Whether a majority of <paramref name="configuration"/>'s voters answered a round recent enough that the lease still holds.</summary>
    public bool Holds(ClusterConfiguration configuration, string self, long now)
    {
        long start = configuration.QuorumIndex(id => id == self ? now : _answeredRoundSentAt.GetValueOrDefault(id, long.MinValue / 2));
        return now < start + electionTicks - driftMarginTicks;
    }
}
