using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Raft.Dashboard;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.ServiceClient;
using Raft.Tests.Node;

namespace Raft.Tests.Dashboard;

/// <summary>The dashboard's own cluster: servers it adds and removes, with real nodes on loopback.</summary>
public sealed class EmbeddedClusterTests
{
    [Fact]
    public async Task A_removed_servers_id_is_never_given_to_a_new_server_not_even_after_a_restart()
    {
        string folder = Directory.CreateTempSubdirectory("raft-embedded-ids-").FullName;
        var options = new DashboardOptions { DataDir = folder, Fresh = true };
        await using (WebApplication app = DashboardApp.Build(options, $"http://127.0.0.1:{Ports.Free()}"))
        {
            await app.StartAsync();
            var commands = app.Services.GetRequiredService<ClusterCommands>();
            await WaitForLeaderAsync(app);
            CommandOutcome added = await commands.AddServerAsync();
            Assert.True(added.Ok, added.Text);
            Assert.Equal("n4", added.ServedBy);
            CommandOutcome removed = await commands.RemoveServerAsync("n4");
            Assert.True(removed.Ok, removed.Text);

            // Before the fix the next server was "n4" again: a new, empty server under the id of one that may still
            // be in a configuration, and with the old one's data folder.
            CommandOutcome next = await commands.AddServerAsync();
            Assert.True(next.Ok, next.Text);
            Assert.Equal("n5", next.ServedBy);
            Assert.Equal(["n1", "n2", "n3", "n5"], app.Services.GetRequiredService<INodeDirectory>().Nodes.Select(n => n.Id).Order());
            Assert.True((await commands.RemoveServerAsync("n5")).Ok);
            await app.StopAsync();
        }

        // The same data folder again: the cluster comes back, and the count goes on from where it was.
        await using (WebApplication app = DashboardApp.Build(new DashboardOptions { DataDir = folder }, $"http://127.0.0.1:{Ports.Free()}"))
        {
            await app.StartAsync();
            await WaitForLeaderAsync(app);
            CommandOutcome added = await app.Services.GetRequiredService<ClusterCommands>().AddServerAsync();
            Assert.True(added.Ok, added.Text);
            Assert.Equal("n6", added.ServedBy);
            await app.StopAsync();
        }
    }

    private static Task WaitForLeaderAsync(WebApplication app)
    {
        var monitor = app.Services.GetRequiredService<ClusterMonitor>();
        return NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.Leader != null && monitor.Current.Nodes.All(n => n.Connected)), what: "a leader in the embedded cluster");
    }
}
