using Microsoft.AspNetCore.SignalR.Client;
using Raft.Client.Events;

namespace Raft.Tests.Node;

/// <summary>The SignalR event stream: a full state first, then sequence-numbered changes in batches.</summary>
public sealed class EventHubTests
{
    [Fact]
    public async Task A_subscriber_gets_the_full_state_then_ordered_changes_and_a_burst_arrives_in_batches()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();

        await using HubConnection hub = new HubConnectionBuilder().WithUrl(cluster[leader].HttpUrl + HubContract.Path).WithAutomaticReconnect().Build();
        var batches = new System.Collections.Concurrent.ConcurrentQueue<ChangeBatch>();
        hub.On<ChangeBatch>("Changes", batches.Enqueue);
        await hub.StartAsync();
        FullState state = await hub.InvokeAsync<FullState>("GetState");
        Assert.Equal(leader, state.Status.Id);
        Assert.Equal("Leader", state.Status.Role);
        Assert.Equal(3, state.Status.Members.Count);
        Assert.Contains(state.LogTail, e => e.Kind == "NoOp");

        using var client = cluster.Client(cluster[leader].GrpcUrl);
        const int Writes = 5000;
        await Task.WhenAll(Enumerable.Range(0, 50).Select(async worker =>
        {
            for (int i = worker; i < Writes; i += 50)
            {
                await client.PutAsync($"k{i}", $"v{i}");
            }
        }));
        long last = (await cluster.StatusAsync(leader)).LastIndex;
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(batches.Any(b => b.Status.CommitIndex >= last)), what: "the last commit to be streamed");

        ChangeBatch[] received = [.. batches];
        var changes = received.SelectMany(b => b.Changes).Where(c => c.Seq > state.Seq).ToList();
        // In order and without gaps after the full state.
        Assert.Equal(Enumerable.Range(0, changes.Count).Select(i => state.Seq + 1 + i), changes.Select(c => c.Seq));
        // Coalesced: far fewer messages than writes, and every appended index is covered.
        Assert.True(received.Length < Writes / 10, $"{received.Length} batches for {Writes} writes");
        var appended = changes.Where(c => c.Kind == "appended").ToList();
        Assert.True(appended.Count < Writes / 10, $"{appended.Count} appended changes for {Writes} writes");
        long covered = appended.Max(c => c.Index!.Value);
        Assert.Equal(last, covered);
        Assert.Contains(appended.SelectMany(c => c.Entries!), e => e.Summary == "put k4999=v4999");
        Assert.Equal(last, changes.Last(c => c.Kind == "commit").Index);
    }

    [Fact]
    public async Task Faults_and_leadership_changes_appear_on_the_stream()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;

        await using HubConnection hub = new HubConnectionBuilder().WithUrl(cluster[follower].HttpUrl + HubContract.Path).Build();
        var changes = new System.Collections.Concurrent.ConcurrentQueue<Change>();
        hub.On<ChangeBatch>("Changes", b => { foreach (Change c in b.Changes) { changes.Enqueue(c); } });
        await hub.StartAsync();
        // As the hub's contract says: GetState first. It runs after the server has registered the subscriber, which
        // StartAsync alone does not wait for (changes raised before that are not streamed to anyone).
        await hub.InvokeAsync<FullState>("GetState");

        await cluster.Admin(follower).SetFaultsAsync(new Raft.Protocol.FaultSpec { Isolate = true });
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(changes.Any(c => c.Kind == "faults" && c.Text.Contains("isolated", StringComparison.Ordinal))), what: "the faults change");
        await cluster.Admin(follower).HealAsync(new Raft.Protocol.HealRequest());
        // A transfer that does not finish within one election timeout (150 ms here) is abandoned and answered Aborted, which
        // a loaded machine can cause; this test is about the stream, so it asks again.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await cluster.Admin(leader).TransferLeadershipAsync(new Raft.Protocol.TransferLeadershipRequest { Id = follower });
                break;
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode is Grpc.Core.StatusCode.Aborted or Grpc.Core.StatusCode.FailedPrecondition && attempt < 5)
            {
            }
        }
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(changes.Any(c => c.Kind == "role" && c.Role == "Leader")), what: "the follower to report it leads");
        Assert.Contains(changes, c => c.Kind == "term");
        Assert.Contains(changes, c => c.Kind == "faults" && c.Text == "healed");
        Assert.DoesNotContain(changes, c => c.Kind.StartsWith("message", StringComparison.Ordinal)); // off by default

        await hub.InvokeAsync("TraceMessages", true);
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(
            changes.Any(c => c.Kind == "message-sent" && c.Text.StartsWith("heartbeat to", StringComparison.Ordinal))
            && changes.Any(c => c.Kind == "message-received" && c.Text.Contains("append_entries_response from", StringComparison.Ordinal))), what: "traced messages");
        Assert.Contains(changes, c => c.Kind == "message-sent" && c.Text.Contains("commit", StringComparison.Ordinal));
    }
}
