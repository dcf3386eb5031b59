using Raft.Node.Client;

namespace Raft.Tests.Node;

/// <summary>The command line's verbs against a running cluster, as an operator's script (or a preStop hook) runs them.</summary>
public sealed class CommandLineTests
{
    [Fact]
    public async Task Handoff_moves_leadership_off_the_node_if_it_leads_and_does_nothing_otherwise()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        var output = new StringWriter();
        var error = new StringWriter();

        Assert.Equal(0, await Cli.RunAsync(["handoff", "--node", cluster[follower].GrpcUrl], output, error));
        Assert.Contains($"{follower} does not lead: nothing to hand off", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(leader, await cluster.WaitForLeaderAsync());

        Assert.True(await Cli.RunAsync(["handoff", "--node", cluster[leader].GrpcUrl, "--json"], output, error) == 0, error.ToString());
        Assert.Contains("\"handedOff\": true", output.ToString(), StringComparison.Ordinal);
        string successor = await cluster.WaitForLeaderAsync();
        Assert.NotEqual(leader, successor);
    }
}
