using System.Text.RegularExpressions;
using Raft.Engine.Consensus;
using Raft.Engine.Storage;
using Raft.Node.Hosting;
using Raft.Protocol;

namespace Raft.Tests.Node;

/// <summary>
/// The way back for a cluster whose terms were driven to the limit (a forged vote request did it before the sender
/// rules bounded a term's step): <c>Raft.Node reset-term</c> on every stopped member.
/// </summary>
public sealed partial class TermRecoveryTests
{
    [Fact]
    public async Task A_cluster_stuck_at_the_largest_term_elects_again_after_reset_term_and_keeps_its_data()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        using (var client = cluster.Client())
        {
            await client.PutAsync("kept", "1");
        }
        string[] ids = [.. cluster.Specs.Select(s => s.Id)];
        foreach (string id in ids)
        {
            await cluster.StopAsync(id);
        }

        // What the forged vote left: every member at the largest term, having voted for the forger's claimed id.
        foreach (MemberSpec spec in cluster.Specs)
        {
            await using SqliteLogStore store = SqliteLogStore.Open(Path.Combine(spec.DataDir, "raft.db"));
            await store.SaveAsync(new HardState(RaftCore.MaxTerm, "n3"), []);
        }
        foreach (string id in ids)
        {
            await cluster.StartAsync(id);
        }
        await Task.Delay(1500); // five election timeouts: a member at the limit never campaigns
        NodeStatus[] stuck = await Task.WhenAll(ids.Select(cluster.StatusAsync));
        Assert.All(stuck, s => Assert.Equal(("", RaftCore.MaxTerm), (s.LeaderId, s.Term)));
        foreach (string id in ids)
        {
            await cluster.StopAsync(id);
        }

        // The recovery as the help says: ask every member its highest term, then give all the same one above them.
        var highestOf = new Dictionary<string, long>();
        foreach (MemberSpec spec in cluster.Specs)
        {
            (int code, string output) = await RunAsync("reset-term", "--data-dir", spec.DataDir);
            Assert.Equal(0, code);
            highestOf[spec.Id] = long.Parse(HighestTerm().Match(output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        }
        long highest = highestOf.Values.Max();
        Assert.InRange(highest, 1, 100);
        MemberSpec first = cluster.Specs[0];
        (int tooLow, _) = await RunAsync("reset-term", "--data-dir", first.DataDir, "--term", highestOf[first.Id].ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(2, tooLow); // not above every term in the log: refused, nothing written
        foreach (MemberSpec spec in cluster.Specs)
        {
            (int code, string output) = await RunAsync("reset-term", "--data-dir", spec.DataDir, "--term", (highest + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(code == 0, output);
        }

        foreach (string id in ids)
        {
            await cluster.StartAsync(id);
        }
        string leader = await cluster.WaitForLeaderAsync();
        Assert.InRange((await cluster.StatusAsync(leader)).Term, highest + 2, highest + 20);
        using var after = cluster.Client();
        Assert.Equal("1", (await after.GetAsync("kept")).Value);
        await after.PutAsync("after", "2");
    }

    private static async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        int code = await TermRecovery.RunAsync(args, output, output);
        return (code, output.ToString());
    }

    [GeneratedRegex(@"highest term in its log and snapshot (\d+)")]
    private static partial Regex HighestTerm();
}
