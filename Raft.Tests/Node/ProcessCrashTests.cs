using Grpc.Core;
using Raft.Client;
using Raft.Protocol;
using Xunit.Abstractions;

namespace Raft.Tests.Node;

/// <summary>Three node processes; the leader is killed with SIGKILL under a steady write load and later restarted.</summary>
[Trait("Speed", "Slow")]
public sealed class ProcessCrashTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Killing_the_leader_under_load_loses_no_acknowledged_write_and_duplicates_none()
    {
        string folder = Directory.CreateTempSubdirectory("raft-procs-").FullName;
        var specs = Enumerable.Range(1, 3).Select(i => MemberSpec.Create($"n{i}", folder)).ToList();
        string members = string.Join(",", specs.Select(s => $"{s.Id}={s.GrpcUrl}"));
        var processes = specs.ToDictionary(s => s.Id, s => NodeProcess.Start(s, members));
        using var client = new RaftClient(specs.Select(s => s.GrpcUrl)) { Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            // Each write increments a counter by compare-and-swap and records a key: a lost write breaks the chain,
            // a write applied twice would make its retry fail (the counter moved on), and the final counter counts both.
            const int Writes = 300;
            string? leader = null;
            var acknowledged = new List<string>();
            for (int i = 0; i < Writes; i++)
            {
                CompareAndSwapReply swap = await client.CompareAndSwapAsync("counter", i == 0 ? null : $"{i}", $"{i + 1}");
                Assert.True(swap.Swapped, $"write {i + 1}: the counter was {swap.Current}");
                await client.PutAsync($"k{i}", $"v{i}");
                acknowledged.Add($"k{i}");
                if (i == 100)
                {
                    leader = (await client.StatusOfAllAsync()).First(s => s.Status?.Role == "Leader").Status!.Id;
                    output.WriteLine($"killing leader {leader} after {acknowledged.Count} acknowledged writes");
                    processes[leader].Kill();
                }
            }
            Assert.NotNull(leader);

            // Restart the killed process from its data folder; it must catch up with everything.
            await processes[leader!].DisposeAsync();
            processes[leader!] = NodeProcess.Start(specs.Single(s => s.Id == leader), members);
            var restarted = new RaftClient([specs.Single(s => s.Id == leader).GrpcUrl]);
            await NodeTestCluster.WaitUntilAsync(async () =>
            {
                try
                {
                    GetReply reply = await restarted.GetAsync("counter", stale: true);
                    return reply.Value == $"{Writes}";
                }
                catch (RpcException)
                {
                    return false;
                }
            }, seconds: 30, what: "the restarted node to catch up");

            foreach (MemberSpec spec in specs)
            {
                using var one = new RaftClient([spec.GrpcUrl]);
                Assert.Equal($"{Writes}", (await one.GetAsync("counter", stale: true)).Value);
                foreach (string key in acknowledged)
                {
                    Assert.True((await one.GetAsync(key, stale: true)).Found, $"{spec.Id} lost acknowledged {key}");
                }
            }
            restarted.Dispose();
        }
        finally
        {
            foreach (NodeProcess process in processes.Values)
            {
                await process.DisposeAsync();
            }
            Directory.Delete(folder, recursive: true);
        }
    }
}
