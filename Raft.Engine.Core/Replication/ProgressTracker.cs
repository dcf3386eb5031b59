using Raft.Engine.Consensus;
using Raft.Engine.Membership;

namespace Raft.Engine.Replication;

/// <summary>
/// A leader's <see cref="Progress"/> for every other member of the configuration in force, and the questions asked of
/// all of them together: which index a majority holds (the commit rule's input) and whether a majority was heard from
/// lately (CheckQuorum). Empty on servers that do not lead.
/// </summary>
internal sealed class ProgressTracker(int maxInflight)
{
    // Insertion order is the order messages go out in, so a seeded run stays the same run.
    private readonly Dictionary<string, Progress> _peers = new(StringComparer.Ordinal);

    public int Count => _peers.Count;

    public IEnumerable<string> Peers => _peers.Keys;

    public IEnumerable<KeyValuePair<string, Progress>> All => _peers;

    public Progress this[string peer] => _peers[peer];

    public bool TryGet(string peer, out Progress progress) => _peers.TryGetValue(peer, out progress!);

    public void Clear() => _peers.Clear();

    /// <summary>
    /// Tracks exactly the members of <paramref name="configuration"/> other than <paramref name="self"/>. Newcomers start
    /// at <paramref name="nextIndex"/>, counted as active (they have not had a chance to answer); returns them, to be probed.
    /// </summary>
    public List<string> TrackMembersOf(ClusterConfiguration configuration, string self, long nextIndex)
    {
        var added = new List<string>();
        foreach (string member in configuration.Members)
        {
            if (member != self && !_peers.ContainsKey(member))
            {
                _peers[member] = new Progress(nextIndex, maxInflight) { RecentActive = true };
                added.Add(member);
            }
        }
        foreach (string gone in _peers.Keys.Where(p => !configuration.IsMember(p)).ToList())
        {
            _peers.Remove(gone);
        }
        return added;
    }

    /// <summary>The highest index held by a majority of voters; the leader's own entry is <paramref name="selfMatch"/>.</summary>
    public long QuorumMatch(ClusterConfiguration configuration, string self, long selfMatch) =>
        configuration.QuorumIndex(id => id == self ? selfMatch : _peers.TryGetValue(id, out Progress? p) ? p.Match : 0);

    /// <summary>CheckQuorum: did a majority of voters answer since the last check? Starts a new round either way.</summary>
    public bool TakeRecentlyActiveQuorum(ClusterConfiguration configuration, string self)
    {
        bool active = configuration.IsQuorum(configuration.Voters.Where(v => v == self || (_peers.TryGetValue(v, out Progress? p) && p.RecentActive)));
        foreach (Progress p in _peers.Values)
        {
            p.RecentActive = false;
        }
        return active;
    }

    /// <summary>Each follower's replication state, sorted by id (built on every status refresh: one array, no LINQ).</summary>
    public FollowerStatus[] Statuses()
    {
        var followers = new FollowerStatus[_peers.Count];
        int i = 0;
        foreach ((string id, Progress p) in _peers)
        {
            followers[i++] = new FollowerStatus(id, p.Match, p.Next, p.State, p.InflightCount, p.RecentActive);
        }
        Array.Sort(followers, static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        return followers;
    }
}
