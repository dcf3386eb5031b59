using System.Text;

namespace Raft.Engine.Membership;

/// <summary>
/// Who is in the cluster: voters decide elections and commitment; learners only receive the log.
/// A server that joins an existing cluster starts with the empty configuration and learns the real one from the leader.
/// </summary>
public sealed class ClusterConfiguration : IEquatable<ClusterConfiguration>
{
    public static ClusterConfiguration Empty { get; } = new([]);

    public ClusterConfiguration(IEnumerable<string> voters, IEnumerable<string>? learners = null)
    {
        Voters = new SortedSet<string>(voters, StringComparer.Ordinal);
        Learners = new SortedSet<string>(learners ?? [], StringComparer.Ordinal);
        if (Voters.Overlaps(Learners))
        {
            throw new ArgumentException("A server cannot be both voter and learner.", nameof(learners));
        }
        if (Voters.Concat(Learners).Any(id => string.IsNullOrWhiteSpace(id) || id.Contains(',', StringComparison.Ordinal) || id.Contains(';', StringComparison.Ordinal)))
        {
            throw new ArgumentException("Server ids must be non-empty and contain no ',' or ';'.", nameof(voters));
        }
    }

    public IReadOnlySet<string> Voters { get; }
    public IReadOnlySet<string> Learners { get; }
    public IEnumerable<string> Members => Voters.Concat(Learners);

    public int QuorumSize => (Voters.Count / 2) + 1;

    public bool IsVoter(string id) => Voters.Contains(id);

    public bool IsLearner(string id) => Learners.Contains(id);

    public bool IsMember(string id) => Voters.Contains(id) || Learners.Contains(id);

    /// <summary>Whether the voters in <paramref name="yes"/> form a majority.</summary>
    public bool IsQuorum(IEnumerable<string> yes) => Voters.Count > 0 && yes.Count(Voters.Contains) >= QuorumSize;

    /// <summary>The highest index that a majority of voters has reached, given each voter's match index.</summary>
    public long QuorumIndex(Func<string, long> matchOf)
    {
        if (Voters.Count == 0)
        {
            return 0;
        }
        long[] matches = Voters.Select(matchOf).OrderDescending().ToArray();
        return matches[QuorumSize - 1];
    }

    public ClusterConfiguration WithLearner(string id) => new(Voters, Learners.Append(id));

    public ClusterConfiguration WithVoter(string id) => new(Voters.Append(id), Learners.Where(l => l != id));

    public ClusterConfiguration Without(string id) => new(Voters.Where(v => v != id), Learners.Where(l => l != id));

    /// <summary>The bytes of a configuration log entry.</summary>
    public byte[] Encode() => Encoding.UTF8.GetBytes($"{string.Join(',', Voters)};{string.Join(',', Learners)}");

    public static ClusterConfiguration Decode(byte[] data)
    {
        string text = Encoding.UTF8.GetString(data);
        int split = text.IndexOf(';', StringComparison.Ordinal);
        if (split < 0)
        {
            throw new FormatException("not a configuration");
        }
        static string[] Ids(string list) => list.Length == 0 ? [] : list.Split(',');
        return new ClusterConfiguration(Ids(text[..split]), Ids(text[(split + 1)..]));
    }

    public bool Equals(ClusterConfiguration? other) =>
        other != null && Voters.SetEquals(other.Voters) && Learners.SetEquals(other.Learners);

    public override bool Equals(object? obj) => Equals(obj as ClusterConfiguration);

    public override int GetHashCode() => HashCode.Combine(string.Join(',', Voters), string.Join(',', Learners));

    public override string ToString() =>
        Learners.Count == 0 ? $"voters [{string.Join(",", Voters)}]" : $"voters [{string.Join(",", Voters)}] learners [{string.Join(",", Learners)}]";
}
