namespace Raft.Engine.Quorum;

/// <summary>
/// The majority arithmetic of a single configuration, in one place: how many voters decide, whether a set of them does,
/// and the highest index a majority holds. Everything that counts (votes, commitment, CheckQuorum, read confirmation,
/// the lease) asks here.
/// </summary>
public static class Majority
{
    /// <summary>The number of voters that decide among <paramref name="voterCount"/>: more than half.</summary>
    public static int Size(int voterCount) => (voterCount / 2) + 1;

    /// <summary>Whether the servers in <paramref name="yes"/> include a majority of <paramref name="voters"/> (non-voters do not count).</summary>
    public static bool IsReached(IReadOnlySet<string> voters, IEnumerable<string> yes) =>
        voters.Count > 0 && yes.Count(voters.Contains) >= Size(voters.Count);

    /// <summary>The highest value that a majority of <paramref name="voters"/> has reached, given each voter's value (e.g. match index).</summary>
    public static long IndexOf(IReadOnlySet<string> voters, Func<string, long> valueOf)
    {
        if (voters.Count == 0)
        {
            return 0;
        }
        long[] values = voters.Select(valueOf).OrderDescending().ToArray();
        return values[Size(voters.Count) - 1];
    }

    /// <summary>
    /// Whether an election can still be won: the voters who have not refused could still form a majority.
    /// <paramref name="refusals"/> counts the refusals recorded.
    /// </summary>
    public static bool IsStillPossible(int voterCount, int refusals) => voterCount - refusals >= Size(voterCount);
}
