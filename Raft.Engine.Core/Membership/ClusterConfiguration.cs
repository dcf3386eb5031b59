using System.Text;
using Raft.Engine.Quorum;

namespace Raft.Engine.Membership;

/// <summary>
/// Who is in the cluster: voters decide elections and commitment; learners only receive the log. The counting itself is
/// <see cref="Majority"/>'s.
/// A server that joins an existing cluster starts with the empty configuration and learns the real one from the leader.
/// </summary>
public sealed class ClusterConfiguration : IEquatable<ClusterConfiguration>
{
    public static ClusterConfiguration Empty { get; } = new([]);

    /// <param name="voters">The servers that vote and count toward a majority.</param>
    /// <param name="learners">Servers that receive the log but do not vote (a new server catching up).</param>
    /// <param name="addresses">Where members can be reached (id to address), for hosts whose transport needs it; the core ignores it.</param>
    public ClusterConfiguration(IEnumerable<string> voters, IEnumerable<string>? learners = null, IReadOnlyDictionary<string, string>? addresses = null)
    {
        Voters = new SortedSet<string>(voters, StringComparer.Ordinal);
        Learners = new SortedSet<string>(learners ?? [], StringComparer.Ordinal);
        Addresses = new SortedDictionary<string, string>(
            (addresses ?? new Dictionary<string, string>()).Where(a => Voters.Contains(a.Key) || Learners.Contains(a.Key)).ToDictionary(a => a.Key, a => a.Value),
            StringComparer.Ordinal);
        if (Addresses.Values.Any(a => a.Contains(',', StringComparison.Ordinal) || a.Contains(';', StringComparison.Ordinal) || a.Contains('=', StringComparison.Ordinal)))
        {
            throw new ArgumentException("Addresses must contain no ',', ';' or '='.", nameof(addresses));
        }
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
    public IReadOnlyDictionary<string, string> Addresses { get; }
    public IEnumerable<string> Members => Voters.Concat(Learners);

    /// <summary>How many voters decide (see <see cref="Majority"/>).</summary>
    public int QuorumSize => Majority.Size(Voters.Count);

    public bool IsVoter(string id) => Voters.Contains(id);

    public bool IsLearner(string id) => Learners.Contains(id);

    public bool IsMember(string id) => Voters.Contains(id) || Learners.Contains(id);

    /// <summary>Whether the voters in <paramref name="yes"/> form a majority.</summary>
    public bool IsQuorum(IEnumerable<string> yes) => Majority.IsReached(Voters, yes);

    /// <summary>The highest index that a majority of voters has reached, given each voter's match index.</summary>
    public long QuorumIndex(Func<string, long> matchOf) => Majority.IndexOf(Voters, matchOf);

    public ClusterConfiguration WithLearner(string id, string? address = null) =>
        new(Voters, Learners.Append(id), address is null ? Addresses : new Dictionary<string, string>(Addresses) { [id] = address });

    public ClusterConfiguration WithVoter(string id) => new(Voters.Append(id), Learners.Where(l => l != id), Addresses);

    public ClusterConfiguration Without(string id) => new(Voters.Where(v => v != id), Learners.Where(l => l != id), Addresses);

    /// <summary>The bytes of a configuration log entry: "voters;learners;id=address,...".</summary>
    public byte[] Encode() =>
        Encoding.UTF8.GetBytes($"{string.Join(',', Voters)};{string.Join(',', Learners)};{string.Join(',', Addresses.Select(a => $"{a.Key}={a.Value}"))}");

    public static ClusterConfiguration Decode(byte[] data)
    {
        string[] parts = Encoding.UTF8.GetString(data).Split(';');
        if (parts.Length is < 2 or > 3)
        {
            throw new FormatException("not a configuration");
        }
        static string[] Items(string list) => list.Length == 0 ? [] : list.Split(',');
        var addresses = parts.Length == 3
            ? Items(parts[2]).Select(item => item.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv.Length == 2 ? kv[1] : throw new FormatException($"bad address '{kv[0]}'"))
            : null;
        return new ClusterConfiguration(Items(parts[0]), Items(parts[1]), addresses);
    }

    public bool Equals(ClusterConfiguration? other) =>
        other != null && Voters.SetEquals(other.Voters) && Learners.SetEquals(other.Learners)
        && Addresses.Count == other.Addresses.Count && Addresses.All(a => other.Addresses.TryGetValue(a.Key, out string? b) && a.Value == b);

    public override bool Equals(object? obj) => Equals(obj as ClusterConfiguration);

    public override int GetHashCode() => HashCode.Combine(string.Join(',', Voters), string.Join(',', Learners));

    public override string ToString() =>
        Learners.Count == 0 ? $"voters [{string.Join(",", Voters)}]" : $"voters [{string.Join(",", Voters)}] learners [{string.Join(",", Learners)}]";
}
