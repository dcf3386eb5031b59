namespace Raft.Engine.Membership;

/// <summary>Who is in the cluster: voters decide elections and commitment; learners only receive the log.</summary>
public sealed class ClusterConfiguration
{
    public ClusterConfiguration(IEnumerable<string> voters, IEnumerable<string>? learners = null)
    {
        Voters = new SortedSet<string>(voters, StringComparer.Ordinal);
        Learners = new SortedSet<string>(learners ?? [], StringComparer.Ordinal);
        if (Voters.Count == 0)
        {
            throw new ArgumentException("A configuration needs at least one voter.", nameof(voters));
        }
        if (Voters.Overlaps(Learners))
        {
            throw new ArgumentException("A server cannot be both voter and learner.", nameof(learners));
        }
    }

    public IReadOnlySet<string> Voters { get; }
    public IReadOnlySet<string> Learners { get; }
    public IEnumerable<string> Members => Voters.Concat(Learners);

    public int QuorumSize => (Voters.Count / 2) + 1;

    public bool IsVoter(string id) => Voters.Contains(id);

    public bool IsMember(string id) => Voters.Contains(id) || Learners.Contains(id);

    /// <summary>Whether the voters in <paramref name="yes"/> form a majority.</summary>
    public bool IsQuorum(IEnumerable<string> yes) => yes.Count(Voters.Contains) >= QuorumSize;

    /// <summary>The highest index that a majority of voters has reached, given each voter's match index.</summary>
    public long QuorumIndex(Func<string, long> matchOf)
    {
        long[] matches = Voters.Select(matchOf).OrderDescending().ToArray();
        return matches[QuorumSize - 1];
    }

    public override string ToString() =>
        Learners.Count == 0 ? $"voters [{string.Join(",", Voters)}]" : $"voters [{string.Join(",", Voters)}] learners [{string.Join(",", Learners)}]";
}
