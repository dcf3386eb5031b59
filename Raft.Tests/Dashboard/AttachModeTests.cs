using Microsoft.Extensions.DependencyInjection;
using Raft.Dashboard;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.ServiceClient;
using Raft.Tests.Node;

namespace Raft.Tests.Dashboard;

/// <summary>Configured with node addresses (as docker compose runs it), the dashboard attaches to a cluster it does not run.</summary>
public sealed class AttachModeTests
{
    [Fact]
    public async Task The_dashboard_attaches_to_running_nodes_and_refuses_what_only_an_embedded_cluster_can_do()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        var options = new DashboardOptions { Nodes = string.Join(",", cluster.Specs.Select(s => $"{s.Id}={s.GrpcUrl}|{s.HttpUrl}")) };
        await using var app = DashboardApp.Build(options, $"http://127.0.0.1:{Ports.Free()}");
        await app.StartAsync();
        try
        {
            var monitor = app.Services.GetRequiredService<IClusterMonitor>();
            var commands = app.Services.GetRequiredService<ClusterCommands>();
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.Leader?.Id == leader && monitor.Current.Nodes.All(n => n.Connected)), what: "the dashboard to see the cluster");
            Assert.False(monitor.Current.CanManageNodes);

            CommandOutcome put = await commands.PutAsync("attached", "yes");
            Assert.True(put.Ok, put.Text);
            Assert.Equal(leader, put.ServedBy);

            CommandOutcome crash = await commands.CrashAsync("n1");
            Assert.False(crash.Ok);
            Assert.Contains("does not run", crash.Text, StringComparison.Ordinal);
            Assert.False((await commands.AddServerAsync()).Ok);
        }
        finally
        {
            await app.StopAsync();
        }
    }
}
