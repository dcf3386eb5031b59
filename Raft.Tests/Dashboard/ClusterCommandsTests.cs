using Raft.Dashboard.Cluster;
using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;
using Raft.Tests.Node;

namespace Raft.Tests.Dashboard;

/// <summary>How the dashboard's commands answer when the page already knows the cluster cannot do what is asked.</summary>
public sealed class ClusterCommandsTests
{
    [Fact]
    public async Task A_write_with_two_of_three_voters_down_is_refused_at_once_naming_them()
    {
        // Before, the put waited for the client's 8 s and said "No node answers: they are all down" while n1 was up.
        ClusterSnapshot three = FakeMonitor.ThreeNodes();
        var cluster = three with
        {
            Nodes =
            [
                FakeMonitor.Node(FakeMonitor.Status("n1", "PreCandidate", 2, null, 2, 3, ["n1", "n2", "n3"])),
                three.Nodes[1] with { Stopped = true, Connected = false },
                three.Nodes[2] with { Connected = false },
            ],
        };
        var monitor = new FakeMonitor { Current = cluster };
        // Endpoints where nothing listens: the answer must come from what the page knows, not from the network.
        var directory = new StaticNodeDirectory([.. new[] { "n1", "n2", "n3" }.Select(id => new NodeEndpoint(id, $"http://127.0.0.1:{Ports.Free()}", $"http://127.0.0.1:{Ports.Free()}"))]);
        using var commands = new ClusterCommands(directory, monitor);

        CommandOutcome put = await commands.PutAsync("k", "v").WaitAsync(TimeSpan.FromSeconds(2));

        Assert.False(put.Ok);
        Assert.Equal("No majority: n2, n3 are down or unreachable, so 1 of 3 voters answer and a write needs 2. Restart or heal one to write again.", put.Text);
        Assert.Equal(put.Text, (await commands.DeleteAsync("k")).Text);
        Assert.Null(ClusterCommands.NoMajority(three with { Nodes = [cluster.Nodes[0], three.Nodes[1], cluster.Nodes[2]] })); // two of three: a write can commit
    }
}
