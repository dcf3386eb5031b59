using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Raft.Client;
using Raft.Protocol;
using Raft.Node.Services;
using Raft.Tests.Node;

namespace Raft.Tests.Client;

/// <summary>
/// RaftClient's way to the leader, against stand-in members (real gRPC servers on loopback whose answers the test
/// chooses), so that the moments of a failover can be held still: a member naming a leader that is gone, a new leader.
/// </summary>
public sealed class RaftClientTests : IAsyncLifetime
{
    private readonly List<WebApplication> _servers = [];

    /// <summary>How a stand-in answers a put: null serves it; otherwise the exception it throws.</summary>
    private sealed class StandIn(string name, Func<RpcException?> answer, ConcurrentQueue<string> calls) : KeyValue.KeyValueBase
    {
        public override Task<PutReply> Put(PutRequest request, ServerCallContext context)
        {
            calls.Enqueue(name);
            return answer() is { } refusal ? throw refusal : Task.FromResult(new PutReply { ServedBy = name, Index = 1 });
        }
    }

    private async Task<string> StartAsync(string name, Func<RpcException?> answer, ConcurrentQueue<string> calls)
    {
        int port = Ports.Free();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(port, o => o.Protocols = HttpProtocols.Http2));
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new StandIn(name, answer, calls));
        WebApplication server = builder.Build();
        server.MapGrpcService<StandIn>();
        await server.StartAsync();
        _servers.Add(server);
        return $"http://127.0.0.1:{port}";
    }

    private static RpcException Redirect(string leaderAddress) =>
        new(new Status(StatusCode.FailedPrecondition, "not the leader"), new Metadata
        {
            { RaftTrailers.LeaderId, "n1" },
            { RaftTrailers.LeaderAddress, leaderAddress },
        });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (WebApplication server in _servers)
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_member_naming_a_leader_that_is_gone_does_not_keep_the_client_from_the_new_leader()
    {
        // n1 was the leader and is down; n2 has not noticed and still names it; n3 leads now. Before, the client went
        // n2 -> n1 (refused) -> the member after n1, n2 again, and so on: it never asked n3 and failed at its timeout.
        var calls = new ConcurrentQueue<string>();
        string dead = $"http://127.0.0.1:{Ports.Free()}";
        string stale = await StartAsync("n2", () => Redirect(dead), calls);
        string leader = await StartAsync("n3", () => null, calls);
        using var client = new RaftClient([dead, stale, leader]) { Timeout = TimeSpan.FromSeconds(5) };

        PutReply reply = await client.PutAsync("k", "v");

        Assert.Equal("n3", reply.ServedBy);
        Assert.Equal(leader, client.LastServedBy);
    }

    [Fact]
    public async Task While_no_member_can_name_a_reachable_leader_calls_wait_between_rounds_and_all_go_to_the_leader_once_one_finds_it()
    {
        // The moments of a failover before the election ends: both survivors still name the dead leader. Twenty calls
        // knock; then n3 wins. Each round asks the two survivors once, and the rounds grow apart (10 ms doubling to
        // 100 ms), so the survivors, busy electing, are not flooded.
        var calls = new ConcurrentQueue<string>();
        string dead = $"http://127.0.0.1:{Ports.Free()}";
        var elected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string n3 = "";
        string n2 = await StartAsync("n2", () => Redirect(elected.Task.IsCompleted ? n3 : dead), calls);
        n3 = await StartAsync("n3", () => elected.Task.IsCompleted ? null : Redirect(dead), calls);
        using var client = new RaftClient([dead, n2, n3]) { Timeout = TimeSpan.FromSeconds(10) };

        Task<PutReply>[] puts = [.. Enumerable.Range(0, 20).Select(i => client.PutAsync($"k{i}", "v"))];
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(calls.Count >= 20), what: "every call to reach a survivor"); // past the first calls' warm-up
        int before = calls.Count;
        await Task.Delay(400);
        int knocksWhileElecting = calls.Count - before;
        elected.SetResult();
        PutReply[] replies = await Task.WhenAll(puts);

        Assert.All(replies, reply => Assert.Equal("n3", reply.ServedBy));
        // In 400 ms a call waits at least 7.5, 15, 30, 60 ms and then 75 ms between rounds (the pauses less their
        // jitter): at most nine rounds, two survivors asked in each. A client that knocked without pausing would ask hundreds of times.
        Assert.InRange(knocksWhileElecting, 1, 20 * 2 * 10);
    }
}
