using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Raft.Client;
using Raft.Protocol;

namespace Raft.Tests.Node;

/// <summary>
/// Lease reads on real processes whose leader is paused (SIGSTOP) long enough for another to be elected. Found by an
/// operator: after SIGCONT the old leader answered 44 of 57 reads, stale, from a lease it believed still held.
/// </summary>
[Trait("Speed", "Slow")]
public sealed class LeaseReadPauseTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-lease-pause-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_leader_resumed_after_a_pause_serves_no_read_that_misses_a_write_acknowledged_before_it()
    {
        MemberSpec[] specs = [.. new[] { "n1", "n2", "n3" }.Select(id => MemberSpec.Create(id, _folder))];
        string members = string.Join(",", specs.Select(s => $"{s.Id}={s.GrpcUrl}"));
        var nodes = specs.ToDictionary(s => s.Id, s => NodeProcess.Start(s, members, "Warning", "--lease-reads", "true", "--enable-fault-injection", "true"));
        var channels = specs.ToDictionary(s => s.Id, s => GrpcChannel.ForAddress(s.GrpcUrl));
        try
        {
            string leader = await LeaderAsync(specs.Select(s => s.Id), channels);
            using (var client = new RaftClient(specs.Select(s => s.GrpcUrl)))
            {
                await client.PutAsync("x", "before-pause");
            }
            var oldLeader = new KeyValue.KeyValueClient(channels[leader]);
            for (int i = 0; i < 20; i++)
            {
                await oldLeader.GetAsync(new GetRequest { Key = "x" }); // the lease is in use before the pause
            }

            // Its peers' messages reach it late after a long pause (its streams broke meanwhile): modelled by isolating it
            // just before the pause, so that nothing but its own clock can tell it that its lease has run out.
            await new Admin.AdminClient(channels[leader]).SetFaultsAsync(new FaultSpec { Isolate = true });
            Signal("STOP", nodes[leader].Process);
            try
            {
                string[] others = [.. specs.Select(s => s.Id).Where(id => id != leader)];
                await LeaderAsync(others, channels);
                using var client = new RaftClient(specs.Where(s => s.Id != leader).Select(s => s.GrpcUrl));
                await client.PutAsync("x", "after-pause"); // acknowledged before any of the reads below is sent
            }
            finally
            {
                Signal("CONT", nodes[leader].Process);
            }

            // Right after resuming, as fast as it answers: every read it serves must see the acknowledged write.
            var stale = new List<string>();
            int served = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(2))
            {
                try
                {
                    GetReply reply = await oldLeader.GetAsync(new GetRequest { Key = "x" }, deadline: DateTime.UtcNow.AddSeconds(2));
                    served++;
                    if (reply.Value != "after-pause")
                    {
                        stale.Add($"{clock.ElapsedMilliseconds} ms after resuming: '{reply.Value}'");
                    }
                }
                catch (RpcException)
                {
                    // refused (no longer the leader, no leader known yet): no answer is never a wrong one
                }
            }
            Assert.True(stale.Count == 0, $"{stale.Count} of {served} reads served by the resumed leader {leader} were stale: {string.Join("; ", stale.Take(5))}");
        }
        finally
        {
            foreach (GrpcChannel channel in channels.Values)
            {
                channel.Dispose();
            }
            foreach (NodeProcess node in nodes.Values)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static void Signal(string signal, Process process)
    {
        using var kill = Process.Start("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    private static async Task<string> LeaderAsync(IEnumerable<string> among, Dictionary<string, GrpcChannel> channels)
    {
        string? found = null;
        await NodeTestCluster.WaitUntilAsync(async () =>
        {
            var statuses = new List<NodeStatus>();
            foreach (string id in among)
            {
                try
                {
                    statuses.Add(await new Admin.AdminClient(channels[id]).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(1)));
                }
                catch (RpcException)
                {
                    // not up yet
                }
            }
            var leaders = statuses.Where(s => s.Role == "Leader").ToList();
            found = leaders.Count == 1 && statuses.Count == among.Count() && statuses.All(s => s.LeaderId == leaders[0].Id) ? leaders[0].Id : null;
            return found != null;
        }, seconds: 30, what: $"one leader among {string.Join(",", among)}");
        return found!;
    }
}
