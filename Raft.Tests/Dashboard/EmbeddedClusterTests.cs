using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
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

    [Fact]
    public async Task A_restart_after_a_membership_change_recovers_quietly_on_the_ports_asked_for()
    {
        string folder = Directory.CreateTempSubdirectory("raft-embedded-restart-").FullName;
        int basePort = FreeRun(8);
        var options = new DashboardOptions { DataDir = folder, Fresh = true, NodePorts = basePort };
        await using (WebApplication app = DashboardApp.Build(options, $"http://127.0.0.1:{Ports.Free()}"))
        {
            await app.StartAsync();
            await WaitForLeaderAsync(app);
            Assert.Equal(
                [$"n1 http://127.0.0.1:{basePort}|http://127.0.0.1:{basePort + 1}", $"n2 http://127.0.0.1:{basePort + 2}|http://127.0.0.1:{basePort + 3}", $"n3 http://127.0.0.1:{basePort + 4}|http://127.0.0.1:{basePort + 5}"],
                app.Services.GetRequiredService<INodeDirectory>().Nodes.Select(n => $"{n.Id} {n.GrpcUrl}|{n.HttpUrl}"));
            CommandOutcome added = await app.Services.GetRequiredService<ClusterCommands>().AddServerAsync();
            Assert.True(added.Ok, added.Text);
            Assert.Equal($"http://127.0.0.1:{basePort + 6}", app.Services.GetRequiredService<INodeDirectory>().Nodes.Single(n => n.Id == "n4").GrpcUrl);
            await app.StopAsync();
        }

        // Before, each of n1-n3 warned "holds state: ignoring --members" on every start after n4 joined: the dashboard
        // handed them the first members again although their stores know the cluster.
        var warnings = new CapturedLogs();
        await using (WebApplication app = DashboardApp.Build(new DashboardOptions { DataDir = folder }, $"http://127.0.0.1:{Ports.Free()}", logs => logs.AddProvider(warnings)))
        {
            await app.StartAsync();
            await WaitForLeaderAsync(app);
            Assert.Equal(4, app.Services.GetRequiredService<ClusterMonitor>().Current.Nodes.Count);
            await app.StopAsync();
        }
        Assert.DoesNotContain(warnings.Lines, line => line.Contains("ignoring --members", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Heal_on_one_node_heals_its_links_and_leaves_the_other_cuts_alone()
    {
        string folder = Directory.CreateTempSubdirectory("raft-embedded-heal-").FullName;
        await using WebApplication app = DashboardApp.Build(new DashboardOptions { DataDir = folder, Fresh = true }, $"http://127.0.0.1:{Ports.Free()}");
        await app.StartAsync();
        await WaitForLeaderAsync(app);
        var commands = app.Services.GetRequiredService<ClusterCommands>();
        var monitor = app.Services.GetRequiredService<ClusterMonitor>();
        Assert.True((await commands.IsolateAsync("n1")).Ok);
        Assert.True((await commands.CutLinkAsync("n2", "n3")).Ok);
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.IsCut("n1", "n2") && monitor.Current.IsCut("n2", "n3")), what: "n1 isolated and n2 - n3 cut");

        // The node's Heal button: before, it healed every link of the cluster (n2 - n3 too).
        CommandOutcome healed = await commands.HealNodeAsync("n1");

        Assert.True(healed.Ok, healed.Text);
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(!monitor.Current.IsCut("n1", "n2") && !monitor.Current.IsCut("n1", "n3")), what: "n1's links healed");
        Assert.True(monitor.Current.IsCut("n2", "n3"));
        await app.StopAsync();
    }

    [Theory]
    [InlineData(80, "--node-ports: 80 is not a base port")]
    [InlineData(65534, "--node-ports: 65534 is not a base port")]
    public void Node_ports_that_cannot_hold_the_cluster_are_refused_by_name(int basePort, string expected)
    {
        var e = Assert.Throws<FormatException>(() => DashboardApp.Build(["--node-ports", basePort.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The first of <paramref name="count"/> consecutive free loopback ports, below the range other tests take theirs
    /// from one by one (which would hand out the ports right after this one).
    /// </summary>
    private static int FreeRun(int count)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int first = Random.Shared.Next(10_000, 19_000);
            if (Enumerable.Range(first, count).All(IsFree))
            {
                return first;
            }
        }
        throw new InvalidOperationException($"no {count} consecutive free ports");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    private sealed class CapturedLogs : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLogs logs, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                logs.Lines.Enqueue($"{category}: {formatter(state, exception)}");
        }
    }

    private static Task WaitForLeaderAsync(WebApplication app)
    {
        var monitor = app.Services.GetRequiredService<ClusterMonitor>();
        return NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.Leader != null && monitor.Current.Nodes.All(n => n.Connected)), what: "a leader in the embedded cluster");
    }
}
