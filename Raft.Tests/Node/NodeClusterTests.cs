using Grpc.Core;
using Raft.Client;
using Raft.Protocol;
using Raft.Node.Services;

namespace Raft.Tests.Node;

/// <summary>Real nodes on loopback: Kestrel, gRPC between them, SQLite files, in this process.</summary>
public sealed class NodeClusterTests
{
    [Fact]
    public async Task An_outsider_on_the_peer_port_can_neither_depose_the_leader_nor_write_entries()
    {
        // Issue 11, the repros: a transfer vote with term Int64.MaxValue left the cluster without a leader for good, and
        // forged entries at the current term were committed and applied (different ones on different nodes).
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using var client = cluster.Client(cluster[leader].GrpcUrl);
        await client.PutAsync("before", "1");
        NodeStatus status = await cluster.StatusAsync(leader);

        foreach (long term in new[] { long.MaxValue, 1_000_000 })
        {
            await cluster.Peer(leader).RequestVoteAsync(new RequestVoteRequest
            {
                Envelope = new Envelope { From = "evil", To = leader, Term = term },
                LastLogIndex = status.LastIndex + 100, LastLogTerm = term, Transfer = true,
            });
        }
        foreach (MemberSpec target in cluster.Specs)
        {
            NodeStatus seen = await cluster.StatusAsync(target.Id);
            var forged = new AppendEntriesRequest
            {
                Envelope = new Envelope { From = "evil", To = target.Id, Term = seen.Term },
                PrevLogIndex = seen.LastIndex, PrevLogTerm = seen.LastTerm, LeaderCommit = seen.LastIndex + 1,
            };
            forged.Entries.Add(new Entry
            {
                Index = seen.LastIndex + 1, Term = seen.Term, Kind = EntryKind.Command,
                Data = Google.Protobuf.ByteString.CopyFrom(Raft.Engine.StateMachines.KvCommand.Put("forged", target.Id).Encode()),
            });
            await cluster.Peer(target.Id).AppendEntriesAsync(forged);
        }

        // The outsider's terms were taken by no one. (A loaded machine may still hold an election of its own meanwhile:
        // that moves the term by one or two, never to the outsider's.)
        await cluster.WaitForLeaderAsync();
        NodeStatus after = await cluster.StatusAsync(leader);
        Assert.True(after.RefusedMessages >= 3, $"{after.RefusedMessages} refused messages counted");
        await client.PutAsync("after", "2"); // the cluster still serves writes
        foreach (MemberSpec node in cluster.Specs)
        {
            using var reader = cluster.Client(node.GrpcUrl);
            Assert.False((await reader.GetAsync("forged")).Found, $"{node.Id} applied a forged entry");
            long term = (await cluster.StatusAsync(node.Id)).Term;
            Assert.True(term >= status.Term && term < status.Term + 10, $"{node.Id} is in term {term}, the outsider sent 1000000 and Int64.MaxValue");
        }
    }

    [Fact]
    public async Task An_outsider_cannot_write_to_a_node_that_knows_no_leader_nor_replace_its_data_by_a_snapshot()
    {
        // Found by a hostile user: with the leader and one follower paused, the third (leader unknown) took evil's entry
        // at its own term, applied it and served it; the real leader's next write then got the same index and term, so
        // the third skipped it and that acknowledged write was missing there for good. A snapshot from evil whose
        // configuration was [evil, n3] replaced all its data.
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using (var client = cluster.Client(cluster[leader].GrpcUrl))
        {
            await client.PutAsync("before", "1");
        }
        string lone = cluster.Specs.Select(s => s.Id).First(id => id != leader);
        await NodeTestCluster.WaitUntilAsync(async () => (await cluster.StatusAsync(lone)).AppliedIndex >= (await cluster.StatusAsync(leader)).CommitIndex, what: $"{lone} applied 'before'");
        foreach (string other in cluster.Specs.Select(s => s.Id).Where(id => id != lone))
        {
            await cluster.StopAsync(other);
        }
        await NodeTestCluster.WaitUntilAsync(async () => (await cluster.StatusAsync(lone)).LeaderId.Length == 0, what: $"{lone} knows no leader");

        NodeStatus seen = await cluster.StatusAsync(lone);
        foreach (string sender in new[] { "evil", "n4" })
        {
            var forged = new AppendEntriesRequest
            {
                Envelope = new Envelope { From = sender, To = lone, Term = seen.Term },
                PrevLogIndex = seen.LastIndex, PrevLogTerm = seen.LastTerm, LeaderCommit = seen.LastIndex + 1,
            };
            forged.Entries.Add(new Entry
            {
                Index = seen.LastIndex + 1, Term = seen.Term, Kind = EntryKind.Command,
                Data = Google.Protobuf.ByteString.CopyFrom(Raft.Engine.StateMachines.KvCommand.Put("forged2", "evil-value").Encode()),
            });
            AppendEntriesReply reply = await cluster.Peer(lone).AppendEntriesAsync(forged);
            Assert.False(reply.Response?.Success ?? false, $"{lone} took {sender}'s entry");
        }
        using var snapshotOfEvil = new MemoryStream();
        await new Raft.Engine.StateMachines.KeyValueStateMachine().WriteSnapshotAsync(snapshotOfEvil);
        var chunk = new InstallSnapshotChunk
        {
            Envelope = new Envelope { From = "evil", To = lone, Term = seen.Term },
            Metadata = new SnapshotMetadata
            {
                Index = seen.LastIndex + 10, Term = seen.Term,
                Configuration = Google.Protobuf.ByteString.CopyFrom(new Raft.Engine.Membership.ClusterConfiguration(["evil", lone]).Encode()),
            },
            Offset = 0, Done = true, Data = Google.Protobuf.ByteString.CopyFrom(snapshotOfEvil.ToArray()),
        };
        using (var stream = cluster.Peer(lone).InstallSnapshot())
        {
            await stream.RequestStream.WriteAsync(chunk);
            await stream.RequestStream.CompleteAsync();
            await stream.ResponseAsync;
        }

        NodeStatus after = await cluster.StatusAsync(lone);
        Assert.Equal((seen.LastIndex, seen.CommitIndex, seen.SnapshotIndex), (after.LastIndex, after.CommitIndex, after.SnapshotIndex));
        using (var reader = cluster.Client(cluster[lone].GrpcUrl))
        {
            Assert.True((await reader.GetAsync("before", stale: true)).Found, "the snapshot replaced the data");
            Assert.False((await reader.GetAsync("forged2", stale: true)).Found, "a forged entry was applied");
        }

        // The cluster comes back and the next acknowledged write is on every node.
        foreach (string other in cluster.Specs.Select(s => s.Id).Where(id => id != lone))
        {
            await cluster.StartAsync(other);
        }
        string newLeader = await cluster.WaitForLeaderAsync();
        using var writer = cluster.Client(cluster[newLeader].GrpcUrl);
        await writer.PutAsync("after", "2");
        foreach (MemberSpec node in cluster.Specs)
        {
            await NodeTestCluster.WaitUntilAsync(async () =>
            {
                using var reader = cluster.Client(node.GrpcUrl);
                return (await reader.GetAsync("after", stale: true)).Found;
            }, what: $"'after' applied on {node.Id}");
        }
    }

    [Fact]
    public async Task Three_nodes_elect_one_leader_and_a_put_through_a_follower_is_redirected()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;

        using var client = cluster.Client(cluster[follower].GrpcUrl);
        PutReply put = await client.PutAsync("color", "blue");
        Assert.Equal(leader, put.ServedBy);
        Assert.Contains(client.LastRedirects, r => r.EndsWith(cluster[leader].GrpcUrl, StringComparison.Ordinal));

        GetReply get = await client.GetAsync("color");
        Assert.True(get.Found);
        Assert.Equal("blue", get.Value);

        // A linearizable read served by a follower sees it too.
        GetReply fromFollower = await cluster.KeyValue(follower).GetAsync(new GetRequest { Key = "color" });
        Assert.Equal(("blue", follower), (fromFollower.Value, fromFollower.ServedBy));
    }

    [Fact]
    public async Task A_put_reports_the_index_of_its_own_entry_and_a_retry_in_its_session_the_same_one()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        KeyValue.KeyValueClient kv = cluster.KeyValue(leader);
        var session = new Session { ClientId = "index-test", Sequence = 1 };
        PutReply first = await kv.PutAsync(new PutRequest { Key = "k", Value = "v1", Session = session });
        // Unrelated writes move the applied index on.
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => kv.PutAsync(new PutRequest { Key = $"other{i}", Value = "x" }).ResponseAsync));
        PutReply retry = await kv.PutAsync(new PutRequest { Key = "k", Value = "v1", Session = session });
        Assert.Equal(first.Index, retry.Index);

        Raft.Engine.Hosting.RaftNode node = cluster.Member(leader).Node;
        Assert.True(first.Index > 0 && first.Index < node.Status.AppliedIndex);
        var command = Raft.Engine.StateMachines.KvCommand.Decode((await node.ReadLogAsync(first.Index, 1)).Single().Data);
        Assert.Equal(("k", "v1", "index-test"), (command.Key, command.Value, command.ClientId));
    }

    [Fact]
    public async Task A_transfer_to_an_unreachable_follower_is_given_up_once_and_not_retried_by_the_client()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        await cluster.Admin(follower).SetFaultsAsync(new FaultSpec { Isolate = true });

        using var client = cluster.Client(cluster[leader].GrpcUrl);
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.LeaderAdminAsync(async (admin, token) =>
            await admin.TransferLeadershipAsync(new TransferLeadershipRequest { Id = follower }, cancellationToken: token)));
        // Abandoned is final: not Aborted (which clients retry until their deadline, abandoning it over and over).
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains($"{follower} did not take over", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(leader, (await cluster.StatusAsync(leader)).LeaderId);
    }

    [Fact]
    public async Task Readiness_needs_a_known_leader_and_healthz_stays_up_without_one()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using var http = new HttpClient();
        async Task<System.Net.HttpStatusCode> Get(string id, string path) => (await http.GetAsync($"{cluster[id].HttpUrl}{path}")).StatusCode;
        foreach (string id in cluster.Specs.Select(s => s.Id))
        {
            await NodeTestCluster.WaitUntilAsync(async () => await Get(id, "/readyz") == System.Net.HttpStatusCode.OK, what: $"{id} ready");
        }
        // Cut off, a follower soon knows no leader: not ready (no client should be sent there), but alive.
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        await cluster.Admin(follower).SetFaultsAsync(new FaultSpec { Isolate = true });
        await NodeTestCluster.WaitUntilAsync(async () => await Get(follower, "/readyz") == System.Net.HttpStatusCode.ServiceUnavailable, what: "the isolated follower not ready");
        using HttpResponseMessage notReady = await http.GetAsync($"{cluster[follower].HttpUrl}/readyz");
        Assert.Contains("no leader is known", await notReady.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.OK, await Get(follower, "/healthz"));
        await cluster.Admin(follower).HealAsync(new HealRequest());
        await NodeTestCluster.WaitUntilAsync(async () => await Get(follower, "/readyz") == System.Net.HttpStatusCode.OK, what: "ready again after healing");
    }

    [Fact]
    public async Task An_isolated_leader_is_replaced_its_writes_fail_and_after_healing_all_logs_agree()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string old = await cluster.WaitForLeaderAsync();
        using var client = cluster.Client();
        await client.PutAsync("before", "1");

        await cluster.Admin(old).SetFaultsAsync(new FaultSpec { Isolate = true });
        string[] majority = cluster.Specs.Select(s => s.Id).Where(id => id != old).ToArray();
        string replacement = await cluster.WaitForLeaderAsync(majority);
        Assert.NotEqual(old, replacement);

        using var majorityClient = new Raft.Client.RaftClient(majority.Select(id => cluster[id].GrpcUrl));
        for (int i = 0; i < 10; i++)
        {
            await majorityClient.PutAsync($"during{i}", "2");
        }
        // The isolated node cannot commit anything: a write sent to it fails (it times out, or it already stepped down).
        var refused = await Assert.ThrowsAsync<RpcException>(async () =>
            await cluster.KeyValue(old).PutAsync(new PutRequest { Key = "lost", Value = "x" }, deadline: DateTime.UtcNow.AddSeconds(8)));
        Assert.Contains(refused.StatusCode, new[] { StatusCode.DeadlineExceeded, StatusCode.Unavailable, StatusCode.FailedPrecondition });
        Assert.Equal("isolated", (await cluster.StatusAsync(old)).Faults.Isolate ? "isolated" : "not isolated");

        await cluster.Admin(old).HealAsync(new HealRequest());
        await NodeTestCluster.WaitUntilAsync(async () =>
        {
            NodeStatus[] all = await Task.WhenAll(cluster.Specs.Select(s => cluster.StatusAsync(s.Id)));
            return all.Select(s => (s.LastIndex, s.LastTerm, s.CommitIndex)).Distinct().Count() == 1 && all[0].LeaderId == replacement;
        }, what: "the healed node to converge on the majority's log");
        GetReply onOld = await cluster.KeyValue(old).GetAsync(new GetRequest { Key = "during9", Stale = true });
        Assert.Equal("2", onOld.Value);
        GetReply lost = await cluster.KeyValue(old).GetAsync(new GetRequest { Key = "lost" });
        Assert.False(lost.Found);
    }

    [Fact]
    public async Task Servers_are_added_removed_and_handed_leadership_and_a_new_server_catches_up_by_snapshot()
    {
        await using var cluster = new NodeTestCluster(3, options => options.SnapshotThreshold = 100);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using var client = cluster.Client();
        await Task.WhenAll(Enumerable.Range(0, 400).Select(i => client.PutAsync($"k{i % 50}", $"v{i}")));

        // n4 joins: a learner first, a voter once caught up.
        var n4 = cluster.AddSpec("n4");
        await cluster.StartAsync("n4", members: "");
        AdminReply added = await client.LeaderAdminAsync(async (admin, token) => await admin.AddServerAsync(new AddServerRequest { Id = "n4", Address = n4.GrpcUrl }, cancellationToken: token));
        Assert.Contains("voter", added.Message, StringComparison.Ordinal);
        NodeStatus status = await cluster.StatusAsync(leader);
        Assert.Equal(4, status.Members.Count(m => m.Voter));
        NodeStatus n4Status = await cluster.StatusAsync("n4");
        Assert.True(n4Status.SnapshotIndex > 0, "n4 started empty after the leader compacted: it must have received a snapshot");
        // The same request again is what a client sends when the answer was lost or leadership moved ("check and
        // retry", which RaftClient follows by itself): it succeeds and changes nothing. The dashboard once took the
        // AlreadyExists it used to get for "did not join" and stopped the new voter.
        AdminReply retried = await client.LeaderAdminAsync(async (admin, token) => await admin.AddServerAsync(new AddServerRequest { Id = "n4", Address = n4.GrpcUrl }, cancellationToken: token));
        Assert.Contains("is a voter", retried.Message, StringComparison.Ordinal);
        Assert.Equal(4, (await cluster.StatusAsync(leader)).Members.Count(m => m.Voter));
        var conflict = await Assert.ThrowsAsync<RpcException>(() => client.LeaderAdminAsync(async (admin, token) =>
            await admin.AddServerAsync(new AddServerRequest { Id = "n4", Address = "http://127.0.0.1:1" }, cancellationToken: token)));
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);

        // Leadership to n4, then the old leader leaves.
        await client.LeaderAdminAsync(async (admin, token) => await admin.TransferLeadershipAsync(new TransferLeadershipRequest { Id = "n4" }, cancellationToken: token));
        Assert.Equal("n4", await cluster.WaitForLeaderAsync());
        await client.PutAsync("after-transfer", "yes");
        await client.LeaderAdminAsync(async (admin, token) => await admin.RemoveServerAsync(new RemoveServerRequest { Id = leader }, cancellationToken: token));
        status = await cluster.StatusAsync("n4");
        Assert.DoesNotContain(status.Members, m => m.Id == leader);
        Assert.Equal(3, status.Members.Count(m => m.Voter));

        // A snapshot on demand moves the snapshot index to the applied index.
        AdminReply snapshot = await cluster.Admin("n4").TakeSnapshotAsync(new TakeSnapshotRequest());
        Assert.Equal((await cluster.StatusAsync("n4")).AppliedIndex, (await cluster.StatusAsync("n4")).SnapshotIndex);
        Assert.Contains("snapshot at index", snapshot.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_started_again_under_the_same_name_has_its_writes_applied()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        string[] endpoints = [.. cluster.Specs.Select(s => s.GrpcUrl)];
        using (var before = new Raft.Client.RaftClient(endpoints, "dashboard"))
        {
            for (int i = 0; i < 3; i++)
            {
                await before.PutAsync($"k{i}", "old");
            }
        }
        // The dashboard restarted (or rebuilt its client after Add server): its numbering starts again at 1.
        using var after = new Raft.Client.RaftClient(endpoints, "dashboard");
        await after.PutAsync("g", "1");
        GetReply read = await after.GetAsync("g");
        Assert.True(read.Found, "the write was answered OK but not applied");
        Assert.Equal("1", read.Value);
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_status_and_changes_nothing()
    {
        await using var cluster = new NodeTestCluster(3, options => options.MaxCommandBytes = 1000);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        KeyValue.KeyValueClient kv = cluster.KeyValue(leader);

        async Task<RpcException> Fails(Func<Task> call) => await Assert.ThrowsAsync<RpcException>(call);

        Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await kv.PutAsync(new PutRequest { Key = "", Value = "x" }))).StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, (await Fails(async () => await kv.PutAsync(new PutRequest { Key = "big", Value = new string('x', 5000) }))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await kv.PutAsync(new PutRequest { Key = "k", Value = "x", Session = new Session { ClientId = "c", Sequence = 0 } }))).StatusCode);

        RpcException redirect = await Fails(async () => await cluster.KeyValue(follower).PutAsync(new PutRequest { Key = "k", Value = "x" }));
        Assert.Equal(StatusCode.FailedPrecondition, redirect.StatusCode);
        Assert.Equal(leader, redirect.Trailers.GetValue(RaftTrailers.LeaderId));
        Assert.Equal(cluster[leader].GrpcUrl, redirect.Trailers.GetValue(RaftTrailers.LeaderAddress));

        Admin.AdminClient admin = cluster.Admin(leader);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await admin.AddServerAsync(new AddServerRequest { Id = "n9", Address = "not a url" }))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await admin.AddServerAsync(new AddServerRequest { Id = "bad id!", Address = "http://127.0.0.1:1" }))).StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Fails(async () => await admin.RemoveServerAsync(new RemoveServerRequest { Id = "nobody" }))).StatusCode);
        // A member at another address is a conflict; at its own address it is a retry, which succeeds.
        Assert.Equal(StatusCode.AlreadyExists, (await Fails(async () => await admin.AddServerAsync(new AddServerRequest { Id = follower, Address = "http://127.0.0.1:1" }))).StatusCode);
        await admin.AddServerAsync(new AddServerRequest { Id = follower, Address = cluster[follower].GrpcUrl });
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await admin.SetFaultsAsync(new FaultSpec { DropRate = 2 }))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await admin.SetFaultsAsync(new FaultSpec { DropRate = double.NaN }))).StatusCode);
        // A transfer to the leader itself is done at once (it waited 5 s and then said DeadlineExceeded).
        var toItself = System.Diagnostics.Stopwatch.StartNew();
        await admin.TransferLeadershipAsync(new TransferLeadershipRequest { Id = leader });
        Assert.True(toItself.Elapsed < TimeSpan.FromSeconds(3), $"transfer to itself took {toItself.Elapsed}");

        // A change is in progress while an unreachable server "catches up": a second change is aborted.
        Task pending = admin.AddServerAsync(new AddServerRequest { Id = "ghost", Address = "http://127.0.0.1:9" }).ResponseAsync;
        await NodeTestCluster.WaitUntilAsync(async () => (await cluster.StatusAsync(leader)).CatchingUp == "ghost", what: "the catch-up to start");
        Assert.Equal(StatusCode.Aborted, (await Fails(async () => await admin.RemoveServerAsync(new RemoveServerRequest { Id = follower }))).StatusCode);
        // It never catches up: the AddServer fails, and the learner does not stay in the configuration.
        await Assert.ThrowsAsync<RpcException>(() => pending);
        await NodeTestCluster.WaitUntilAsync(async () => (await cluster.StatusAsync(leader)).Members.All(m => m.Id != "ghost"), what: "the ghost learner to be taken out again");

        // A malformed peer message is refused and not applied.
        RpcException malformed = await Fails(async () => await cluster.Peer(follower).AppendEntriesAsync(new AppendEntriesRequest { PrevLogIndex = 1 }));
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        RpcException wrongTarget = await Fails(async () => await cluster.Peer(follower).AppendEntriesAsync(new AppendEntriesRequest
        {
            Envelope = new Envelope { From = leader, To = "someone-else", Term = 99 },
        }));
        Assert.Equal(StatusCode.InvalidArgument, wrongTarget.StatusCode);
        Assert.NotEqual(99, (await cluster.StatusAsync(follower)).Term);

        // The same on the peer stream: a malformed item ends the stream with InvalidArgument, and nothing of it is applied.
        using (AsyncClientStreamingCall<PeerBatch, PeerAck> stream = cluster.Peer(follower).Stream())
        {
            var batch = new PeerBatch();
            batch.Messages.Add(new PeerMessage { RequestVote = new RequestVoteRequest { Envelope = new Envelope { From = leader, To = "someone-else", Term = 98 } } });
            batch.Messages.Add(new PeerMessage());
            await stream.RequestStream.WriteAsync(batch);
            await stream.RequestStream.CompleteAsync();
            Assert.Equal(StatusCode.InvalidArgument, (await Fails(async () => await stream.ResponseAsync)).StatusCode);
        }
        Assert.NotEqual(98, (await cluster.StatusAsync(follower)).Term);

        // No leader reachable: Unavailable or a deadline, never a silent success.
        foreach (string id in cluster.Specs.Select(s => s.Id).Where(id => id != follower))
        {
            await cluster.StopAsync(id);
        }
        RpcException noLeader = await Fails(async () => await cluster.KeyValue(follower).PutAsync(new PutRequest { Key = "k", Value = "x" }, deadline: DateTime.UtcNow.AddSeconds(10)));
        Assert.Contains(noLeader.StatusCode, new[] { StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.FailedPrecondition });
    }

    [Fact]
    public async Task A_node_restarted_on_its_data_recovers_it_and_ignores_a_different_member_list()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using var client = cluster.Client();
        await client.PutAsync("kept", "yes");
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        await cluster.StopAsync(follower);
        await cluster.StartAsync(follower, members: $"{follower}={cluster[follower].GrpcUrl}"); // a one-node list: ignored
        await NodeTestCluster.WaitUntilAsync(async () => (await cluster.StatusAsync(follower)).LeaderId == leader, what: "the follower to rejoin");
        NodeStatus status = await cluster.StatusAsync(follower);
        Assert.Equal(3, status.Members.Count);
        Assert.Equal("yes", (await cluster.KeyValue(follower).GetAsync(new GetRequest { Key = "kept", Stale = true })).Value);
    }

    [Fact]
    public async Task Fault_injection_is_refused_unless_enabled()
    {
        await using var cluster = new NodeTestCluster(1, options => options.EnableFaultInjection = false);
        await cluster.StartAllAsync();
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await cluster.Admin("n1").SetFaultsAsync(new FaultSpec { Isolate = true }));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("--enable-fault-injection", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_idle_session_expires_by_the_log_clock_and_a_client_renews_it_without_losing_its_write()
    {
        await using var cluster = new NodeTestCluster(3, o => o.SessionTimeoutSeconds = 1);
        await cluster.StartAllAsync();
        // Raw calls go to whoever leads at the time: a loaded machine may move leadership during the test.
        async Task<PutReply> PutOnLeaderAsync(PutRequest request)
        {
            for (int attempt = 1; ; attempt++)
            {
                string leader = await cluster.WaitForLeaderAsync();
                try
                {
                    return await cluster.KeyValue(leader).PutAsync(request);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition && attempt < 5
                    && e.Trailers.GetValue(RaftTrailers.LeaderAddress) != null)
                {
                    // refused before anything was proposed: "not the leader; try ..."
                }
            }
        }
        await PutOnLeaderAsync(new PutRequest { Key = "a", Value = "1", Session = new Session { ClientId = "raw-client", Sequence = 1 } });
        using var idle = cluster.Client();
        await idle.PutAsync("b", "1");

        await Task.Delay(1500);
        using var busy = cluster.Client();
        await busy.PutAsync("tick", "moves the clock in the log past both sessions' timeout");

        // The raw session's next number: refused with a clear status and a trailer, nothing applied.
        var expired = await Assert.ThrowsAsync<RpcException>(async () => await PutOnLeaderAsync(
            new PutRequest { Key = "a", Value = "2", Session = new Session { ClientId = "raw-client", Sequence = 2 } }));
        Assert.Equal(StatusCode.FailedPrecondition, expired.StatusCode);
        Assert.Contains("start a new session", expired.Status.Detail, StringComparison.Ordinal);
        Assert.NotNull(expired.Trailers.GetValue(RaftTrailers.SessionExpired));
        Assert.Equal("1", (await busy.GetAsync("a")).Value);

        // RaftClient sees the same answer on its first try and sends the write again under a new session.
        await idle.PutAsync("b", "2");
        Assert.Equal("2", (await busy.GetAsync("b")).Value);

        // A sequence number with no successor is refused up front instead of locking the id out.
        var last = await Assert.ThrowsAsync<RpcException>(async () => await PutOnLeaderAsync(
            new PutRequest { Key = "c", Value = "1", Session = new Session { ClientId = "max", Sequence = long.MaxValue } }));
        Assert.Equal(StatusCode.InvalidArgument, last.StatusCode);
    }

    [Fact]
    public async Task Bytes_that_are_not_a_request_get_InvalidArgument_not_an_unknown_error()
    {
        await using var cluster = new NodeTestCluster(1);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(cluster[leader].GrpcUrl);
        var raw = new Method<byte[], byte[]>(MethodType.Unary, "raft.v1.KeyValue", "Put", Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

        byte[][] garbage =
        [
            [0xFF, 0xFF, 0xFF, 0xFF, 0x0F],             // a varint that never ends
            [0x12, 0x05, 0x6B],                          // key: 5 bytes announced, 1 given
            [0x12, 0x02, 0xC3, 0x28, 0x1A, 0x01, 0x78],  // key: invalid UTF-8
        ];
        foreach (byte[] request in garbage)
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await channel.CreateCallInvoker().AsyncUnaryCall(raw, null, new CallOptions(), request));
            Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
            Assert.Contains("not a valid", refused.Status.Detail, StringComparison.Ordinal);
        }
        using var client = cluster.Client();
        await client.PutAsync("still", "works");
    }
}
