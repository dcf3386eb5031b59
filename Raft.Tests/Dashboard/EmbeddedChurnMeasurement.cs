using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Raft.Dashboard;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;
using Raft.Client;
using Raft.Tests.Node;
using Xunit.Abstractions;

namespace Raft.Tests.Dashboard;

/// <summary>
/// How steady leadership is in the dashboard's own cluster while the machine is loaded: 32 clients write as fast as
/// they can for RAFT_MEASURE_SECONDS (default 60) beside RAFT_MEASURE_BURN threads that only spin (default 2: the other
/// programs of a loaded machine), a server is added half way, and every term and leader change the
/// monitor saw is printed. A measurement (RAFT_MEASURE=1), not a test: a loaded machine should run elections slower,
/// not more often, and a new member should not lead before it has caught up.
/// </summary>
public sealed class EmbeddedChurnMeasurement(ITestOutputHelper output)
{
    [MeasurementFact]
    public async Task Leadership_under_a_write_load_with_a_server_added()
    {
        TimeSpan length = TimeSpan.FromSeconds(TestSettings.Int("RAFT_MEASURE_SECONDS", 60));
        string folder = Directory.CreateTempSubdirectory("raft-churn-").FullName;
        await using WebApplication app = DashboardApp.Build(new DashboardOptions { DataDir = folder, Fresh = true }, $"http://127.0.0.1:{Ports.Free()}");
        await app.StartAsync();
        var monitor = app.Services.GetRequiredService<ClusterMonitor>();
        var commands = app.Services.GetRequiredService<ClusterCommands>();
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.Leader != null), what: "a leader");
        var clock = Stopwatch.StartNew();
        var changes = new List<string>();
        (string? Leader, long Term) last = (monitor.Current.Leader?.Id, monitor.Current.Leader?.Status?.Term ?? 0);
        changes.Add($"{clock.Elapsed.TotalSeconds,6:F1} s  term {last.Term} leader {last.Leader}");
        using var stop = new CancellationTokenSource(length);
        Task watch = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                ClusterSnapshot now = monitor.Current;
                long term = now.Nodes.Max(n => n.Status?.Term ?? 0);
                string? leader = now.Leader?.Id;
                if (term != last.Term || (leader != null && leader != last.Leader))
                {
                    lock (changes)
                    {
                        changes.Add($"{clock.Elapsed.TotalSeconds,6:F1} s  term {term} leader {leader ?? "-"}");
                    }
                    last = (leader ?? last.Leader, term);
                }
                await Task.Delay(20);
            }
        });
        Thread[] burners = [.. Enumerable.Range(0, TestSettings.Int("RAFT_MEASURE_BURN", 2)).Select(_ => new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Thread.SpinWait(1000);
            }
        }) { IsBackground = true })];
        foreach (Thread burner in burners)
        {
            burner.Start();
        }
        using var client = new RaftClient(app.Services.GetRequiredService<INodeDirectory>().Nodes.Select(n => n.GrpcUrl));
        long writes = 0;
        Task load = Task.WhenAll(Enumerable.Range(0, 32).Select(async worker =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await client.PutAsync($"load-{worker}", $"{Interlocked.Increment(ref writes)}");
                }
                catch (Grpc.Core.RpcException)
                {
                }
            }
        }));
        await Task.Delay(length / 2);
        CommandOutcome added = await commands.AddServerAsync();
        lock (changes)
        {
            changes.Add($"{clock.Elapsed.TotalSeconds,6:F1} s  add server: {added.Text}");
        }
        await load;
        await watch;
        output.WriteLine($"{burners.Length} spinning threads beside it; {writes} writes in {clock.Elapsed.TotalSeconds:F0} s ({writes / clock.Elapsed.TotalSeconds:F0}/s)");
        foreach (string line in changes)
        {
            output.WriteLine(line);
        }
        await app.StopAsync();
    }
}
