using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Tests.Hosting;

/// <summary>The async host: real loops, real timers (or a fake clock), nodes connected in process.</summary>
public sealed class RaftNodeTests : IAsyncLifetime
{
    private static readonly string[] Members = ["n1", "n2", "n3"];
    private readonly InMemoryNetwork _network = new();
    private readonly List<RaftNode> _nodes = [];
    private readonly Dictionary<string, KeyValueStateMachine> _machines = [];
    private readonly Dictionary<string, ILogStore> _stores = [];
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-node-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (RaftNode node in _nodes)
        {
            await node.DisposeAsync();
        }
        foreach (ILogStore store in _stores.Values)
        {
            await store.DisposeAsync();
        }
        Directory.Delete(_folder, recursive: true);
    }

    private async Task<RaftNode> StartAsync(string id, ILogStore? store = null, TimeProvider? time = null, string[]? members = null, RaftOptions? raft = null,
        Func<RaftNodeOptions, RaftNodeOptions>? tweak = null)
    {
        var machine = new KeyValueStateMachine();
        _machines[id] = machine;
        var options = new RaftNodeOptions { Id = id, Members = members ?? Members, Raft = raft ?? new RaftOptions() };
        options = tweak?.Invoke(options) ?? options;
        store ??= new MemoryLogStore();
        _stores[id] = store;
        var node = new RaftNode(options, store, machine, _network.TransportFor(id), time);
        _network.Attach(node);
        await node.StartAsync();
        _nodes.Add(node);
        return node;
    }

    private async Task<RaftNode> WaitForLeaderAsync(Func<RaftNode, bool>? among = null, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var leaders = _nodes.Where(n => (among ?? (_ => true))(n) && n.Status.Role == Role.Leader).ToList();
            // A leader that every other candidate node agrees on.
            if (leaders.Count == 1 && _nodes.Where(among ?? (_ => true)).All(n => n.Status.LeaderId == leaders[0].Id))
            {
                return leaders[0];
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("no leader: " + string.Join("; ", _nodes.Select(n => $"{n.Id} {n.Status.Role} t{n.Status.Term}")));
    }

    private static async Task WaitUntilAsync(Func<bool> condition, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting");
            await Task.Delay(10);
        }
    }

    /// <summary>A put as a client makes it: to whoever leads, again if leadership moved before the entry was appended.</summary>
    private async Task<KvResult> PutToLeaderAsync(string key, string value)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await PutAsync(await WaitForLeaderAsync(), key, value);
            }
            catch (NotLeaderException) when (attempt < 5)
            {
            }
        }
    }

    private static async Task<KvResult> PutAsync(RaftNode node, string key, string value) =>
        KvResult.Decode(await node.ProposeAsync(KvCommand.Put(key, value).Encode()));

    /// <summary>
    /// A store whose entry writes wait while the gate is closed: a slow disk. Like SQLite's, a write that has started
    /// finishes even when its caller gives up waiting, if <see cref="IgnoresCancellation"/>.
    /// </summary>
    private sealed class GatedStore : ILogStore
    {
        public bool IgnoresCancellation { get; init; }

        private readonly MemoryLogStore _inner = new();
        private volatile TaskCompletionSource _gate = Open();

        private static TaskCompletionSource Open()
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            gate.SetResult();
            return gate;
        }

        public volatile int Waiting;

        public void Close() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) => _inner.LoadAsync(cancellationToken);

        public async ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
        {
            if (entries.Count > 0 && !_gate.Task.IsCompleted)
            {
                Interlocked.Increment(ref Waiting);
                await _gate.Task.WaitAsync(IgnoresCancellation ? CancellationToken.None : cancellationToken);
            }
            await _inner.SaveAsync(hardState, entries, cancellationToken);
        }

        public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default) => _inner.SaveSnapshotAsync(snapshot, keepLaterEntries, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task The_leader_sends_new_entries_to_followers_while_its_own_write_of_them_is_in_flight()
    {
        var stores = Members.ToDictionary(id => id, _ => new GatedStore());
        foreach (string id in Members)
        {
            await StartAsync(id, stores[id]);
        }
        RaftNode leader = await WaitForLeaderAsync();
        await PutAsync(leader, "warm", "up");
        GatedStore slowDisk = stores[leader.Id];
        slowDisk.Close();

        Task<KvResult> put = PutAsync(leader, "color", "blue");
        long index = leader.Status.LastIndex + 1;
        RaftNode[] followers = [.. _nodes.Where(n => n != leader)];
        // The followers receive and persist the entry while the leader's own write of it is still waiting (10.2.1).
        await WaitUntilAsync(() => slowDisk.Waiting > 0 && followers.All(f => f.Status.LastIndex >= index));

        slowDisk.Release();
        Assert.Equal(KvStatus.Ok, (await put).Status);
        await WaitUntilAsync(() => _machines.Values.All(m => m.GetLocal("color") == "blue"));
    }

    [Fact]
    public async Task A_write_to_a_server_that_knows_no_leader_waits_for_the_election_and_then_names_the_winner()
    {
        // Before, it was refused at once naming no one: during a failover a client could only go round the members
        // and knock again, competing with the election it waits for.
        RaftNode first = await StartAsync("n1", tweak: o => o with { LeaderWait = TimeSpan.FromSeconds(30) });
        Assert.Null(first.Status.LeaderId);
        Task<byte[]> write = first.ProposeAsync(KvCommand.Put("k", "v").Encode());
        await StartAsync("n2");
        await StartAsync("n3");
        RaftNode leader = await WaitForLeaderAsync();

        try
        {
            KvResult taken = KvResult.Decode(await write.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(first.Id, leader.Id); // taken only by the winner
            Assert.Equal(KvStatus.Ok, taken.Status);
        }
        catch (NotLeaderException refused)
        {
            Assert.Equal(leader.Id, refused.LeaderHint);
        }
    }

    [Fact]
    public async Task A_write_to_a_server_that_knows_no_leader_is_refused_once_its_patience_runs_out()
    {
        var clock = new FakeTimeProvider();
        RaftNode alone = await StartAsync("n1", time: clock, tweak: o => o with { LeaderWait = TimeSpan.FromMilliseconds(200) });
        Task<byte[]> write = alone.ProposeAsync(KvCommand.Put("k", "v").Encode());
        clock.Advance(TimeSpan.FromMilliseconds(199));
        Assert.False(write.IsCompleted);

        clock.Advance(TimeSpan.FromMilliseconds(1));
        var refused = await Assert.ThrowsAsync<NotLeaderException>(() => write.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Null(refused.LeaderHint);
        Assert.Contains("none was elected within 200 ms", refused.Message);
    }

    [Fact]
    public async Task Writes_a_deposed_leader_accepted_are_answered_as_dropped_even_when_it_leads_again_and_reuses_their_indexes()
    {
        foreach (string id in Members)
        {
            await StartAsync(id);
        }
        RaftNode old = await WaitForLeaderAsync();
        await PutAsync(old, "before", "1");

        // Cut off, it still takes writes until CheckQuorum deposes it; none can commit.
        _network.Isolate(old.Id);
        Task<byte[]>[] stale = [.. Enumerable.Range(0, 10).Select(i => old.ProposeAsync(KvCommand.Put($"stale{i}", "x").Encode()))];
        RaftNode other = await WaitForLeaderAsync(n => n != old);
        await WaitUntilAsync(() => old.Status.Role != Role.Leader);

        // Back in, its log is cut back to the new leader's (only a no-op past "before"); then it leads again and its new
        // writes take indexes the stale ones had.
        _network.HealAll();
        await WaitUntilAsync(() => old.Status.LastIndex == other.Status.LastIndex && old.Status.LeaderId == other.Id);
        await other.TransferLeadershipAsync(old.Id);
        for (int i = 0; i < 10; i++)
        {
            await PutAsync(await WaitForLeaderAsync(), $"fresh{i}", "y");
        }

        foreach (Task<byte[]> write in stale)
        {
            // Each gets an answer: not applied (before the fix, those whose index was reused waited forever).
            await Assert.ThrowsAsync<ProposalDroppedException>(() => write.WaitAsync(TimeSpan.FromSeconds(10)));
        }
        Assert.All(_machines.Values, machine => Assert.Null(machine.GetLocal("stale0")));
    }

    [Fact]
    public async Task A_node_whose_loop_is_behind_refuses_requests_past_its_queue_limit_and_drops_peer_messages()
    {
        // Issue 9: the input channel was unbounded, so a flood (or a slow disk) grew the node's memory without limit.
        var disk = new GatedStore();
        RaftNode node = await StartAsync("n1", disk, members: ["n1"], tweak: o => o with { MaxQueuedRequests = 5, MaxQueuedMessages = 3 });
        await WaitUntilAsync(() => node.Status.Role == Role.Leader);
        await PutAsync(node, "warm", "up");
        disk.Close();
        try
        {
            Task<KvResult> stuck = PutAsync(node, "first", "1"); // its write holds the loop
            await WaitUntilAsync(() => disk.Waiting > 0);
            Task<KvResult>[] queued = [.. Enumerable.Range(0, 5).Select(i => PutAsync(node, $"q{i}", "v"))];
            var refused = await Assert.ThrowsAsync<NodeOverloadedException>(() => PutAsync(node, "one-too-many", "v"));
            Assert.Contains("5 requests waiting", refused.Message, StringComparison.Ordinal);
            await Assert.ThrowsAsync<NodeOverloadedException>(() => node.LinearizableReadAsync());
            for (int i = 0; i < 10; i++)
            {
                node.Receive(new AppendEntriesResponse("n9", "n1", 1, true, 0, 0, 0, 0));
            }
            Assert.Equal(7, node.DroppedMessages);

            disk.Release();
            Assert.Equal(KvStatus.Ok, (await stuck.WaitAsync(TimeSpan.FromSeconds(10))).Status);
            foreach (Task<KvResult> put in queued)
            {
                Assert.Equal(KvStatus.Ok, (await put.WaitAsync(TimeSpan.FromSeconds(10))).Status);
            }
            // Once the loop has caught up, requests are taken again; the refused one was never applied.
            Assert.Equal(KvStatus.Ok, (await PutAsync(node, "after", "v").WaitAsync(TimeSpan.FromSeconds(10))).Status);
            Assert.Null(_machines["n1"].GetLocal("one-too-many"));
        }
        finally
        {
            disk.Release();
        }
    }

    [Fact]
    public async Task A_read_on_a_follower_whose_read_index_answer_is_lost_fails_after_the_timeout()
    {
        // Issue 9: the follower kept the waiter for a forwarded read whose answer never came, forever.
        RaftNode node = await StartAsync("n2", tweak: o => o with { ReadIndexTimeout = TimeSpan.FromMilliseconds(300) },
            raft: new RaftOptions { ElectionTicks = 1000, HeartbeatTicks = 10 });
        node.Receive(new AppendEntries("n1", "n2", 1, 0, 0, [new LogEntry(1, 1, EntryKind.NoOp, [])], 1)); // n1 leads; it is not on the network
        await WaitUntilAsync(() => node.Status.LeaderId == "n1" && node.Status.CommitIndex == 1);

        var failed = await Assert.ThrowsAsync<NotLeaderException>(() => node.LinearizableReadAsync().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("no read index from n1 within 300 ms", failed.Message, StringComparison.Ordinal);
        Assert.Equal("n1", failed.LeaderHint);
    }

    /// <summary>Stands in for a leader that is not on the network: drops the first read-index request, answers the others.</summary>
    private sealed class LossyLeader(Func<RaftNode> follower) : ITransport
    {
        public int Asked;

        public void Send(RaftMessage message)
        {
            if (message is ReadIndexRequest request && Interlocked.Increment(ref Asked) > 1)
            {
                follower().Receive(new ReadIndexResponse("n1", "n2", request.Term, request.RequestId, 1, true));
            }
        }
    }

    [Fact]
    public async Task A_follower_asks_again_when_its_read_index_request_is_lost_and_the_read_succeeds()
    {
        // Messages may be lost: a follower's read whose request was lost used to fail after the timeout (3 s), and a
        // client saw "got no read index" from a healthy cluster.
        RaftNode? node = null;
        var leader = new LossyLeader(() => node!);
        node = new RaftNode(new RaftNodeOptions
        {
            Id = "n2",
            Members = Members,
            Raft = new RaftOptions { ElectionTicks = 1000, HeartbeatTicks = 10 },
            ReadIndexTimeout = TimeSpan.FromSeconds(3),
        }, new MemoryLogStore(), new KeyValueStateMachine(), leader);
        await node.StartAsync();
        _nodes.Add(node);
        node.Receive(new AppendEntries("n1", "n2", 1, 0, 0, [new LogEntry(1, 1, EntryKind.NoOp, [])], 1));
        await WaitUntilAsync(() => node.Status.LeaderId == "n1" && node.Status.CommitIndex == 1);

        await node.LinearizableReadAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(leader.Asked >= 2, $"asked {leader.Asked} times");
    }

    /// <summary>A disk that fails: every save after the first <paramref name="goodSaves"/> throws.</summary>
    private sealed class FailingStore(int goodSaves) : ILogStore
    {
        private readonly MemoryLogStore _inner = new();
        private int _saves;

        public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) => _inner.LoadAsync(cancellationToken);

        public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default) =>
            Interlocked.Increment(ref _saves) > goodSaves ? throw new IOException("disk I/O error") : _inner.SaveAsync(hardState, entries, cancellationToken);

        public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default) => _inner.SaveSnapshotAsync(snapshot, keepLaterEntries, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task A_node_whose_loop_fails_fails_its_waiters_and_refuses_further_requests_at_once()
    {
        var store = new FailingStore(goodSaves: 3);
        RaftNode node = await StartAsync("n1", store, members: ["n1"]);
        await WaitUntilAsync(() => node.Status.Role == Role.Leader);
        Exception? first = null;
        for (int i = 0; i < 10 && first is null; i++)
        {
            try
            {
                await PutAsync(node, $"k{i}", "v").WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (IOException e)
            {
                first = e; // the write that hit the failing disk is failed with the cause, not left hanging
            }
        }
        Assert.NotNull(first);
        await Assert.ThrowsAsync<IOException>(() => node.Completion.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.IsType<IOException>(node.Failure);
        // A failed node does not queue what it will never read: the next request is refused at once, naming the cause.
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => PutAsync(node, "late", "v").WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("disk I/O error", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_garbage_snapshot_from_the_leader_is_refused_and_the_node_keeps_its_log_and_state()
    {
        // Issue 9: one InstallSnapshot chunk, done, 1,000 arbitrary bytes at index 1000 in the current term was saved
        // (and the log deleted) before anyone looked at it; the loop died and every restart failed.
        string path = Path.Combine(_folder, "n2.db");
        var store = SqliteLogStore.Open(path);
        var problems = new ConcurrentQueue<ProblemDetected>();
        RaftNode node = await StartAsync("n2", store);
        node.EventRaised += e =>
        {
            if (e is ProblemDetected p)
            {
                problems.Enqueue(p);
            }
        };
        LogEntry[] entries = [.. Enumerable.Range(1, 5).Select(i => new LogEntry(i, 1, EntryKind.Command, KvCommand.Put($"k{i}", $"v{i}").Encode()))];
        node.Receive(new AppendEntries("n1", "n2", 1, 0, 0, entries, 5));
        await WaitUntilAsync(() => _machines["n2"].GetLocal("k5") == "v5");

        var garbage = new byte[1000];
        new Random(9).NextBytes(garbage);
        var metadata = new SnapshotMetadata(1000, 1, new Raft.Engine.Membership.ClusterConfiguration(Members));
        node.Receive(new InstallSnapshot("n1", "n2", 1, metadata, 0, garbage, true));
        await WaitUntilAsync(() => !problems.IsEmpty);

        SnapshotRefused refused = Assert.IsType<SnapshotRefused>(Assert.Single(problems).Notice);
        Assert.Equal(("n1", 1000L), (refused.From, refused.Index));
        Assert.Contains("not a key-value snapshot", refused.Reason, StringComparison.Ordinal);
        Assert.Null(node.Failure);
        Assert.Equal((5L, 5L, 0L), (node.Status.LastIndex, node.Status.CommitIndex, node.Status.SnapshotIndex));
        Assert.Equal("v5", _machines["n2"].GetLocal("k5"));

        // And what is on disk is the log, not the garbage: a restart comes back with the same state.
        await node.DisposeAsync();
        _nodes.Remove(node);
        _network.Detach("n2");
        await store.DisposeAsync();
        RaftNode again = await StartAsync("n2", SqliteLogStore.Open(path));
        Assert.Equal((5L, 0L), (again.Status.LastIndex, again.Status.SnapshotIndex));
    }

    [Fact]
    public async Task The_initial_members_are_recorded_in_the_store_and_a_restart_with_another_list_keeps_them()
    {
        string path = Path.Combine(_folder, "bootstrap.db");
        RaftNode node = await StartAsync("n1", SqliteLogStore.Open(path), members: ["n1"]);
        await WaitUntilAsync(() => node.Status.Role == Role.Leader);
        await PutAsync(node, "k", "v");
        await node.DisposeAsync();
        _nodes.Remove(node);
        _network.Detach("n1");
        await _stores["n1"].DisposeAsync();

        await using (SqliteLogStore store = SqliteLogStore.Open(path))
        {
            // The one record of the membership: a snapshot at index 0 that holds it, and the log after it.
            Snapshot bootstrap = (await store.LoadAsync()).Snapshot!;
            Assert.Equal((0L, 0L), (bootstrap.Metadata.Index, bootstrap.Metadata.Term));
            Assert.Equal(["n1"], bootstrap.Metadata.Configuration.Voters);
        }
        // Given three members now, it still is the one-member cluster it was, and leads it alone.
        RaftNode again = await StartAsync("n1", SqliteLogStore.Open(path), members: ["n1", "n2", "n3"]);
        Assert.Equal(["n1"], again.Status.Configuration.Voters);
        await WaitUntilAsync(() => again.Status.Role == Role.Leader);
        Assert.Equal("v", _machines["n1"].GetLocal("k"));
    }

    /// <summary>Counts what a node sends, then passes it on.</summary>
    private sealed class CountingTransport(ITransport inner) : ITransport
    {
        public int Sent;

        public void Send(Raft.Engine.Consensus.RaftMessage message)
        {
            Interlocked.Increment(ref Sent);
            inner.Send(message);
        }
    }

    [Fact]
    public async Task A_crash_stops_the_node_where_it_is_and_it_sends_nothing_more()
    {
        // Issue 9: "crash" was a clean stop: the batch in hand was finished, so a follower still acknowledged entries
        // (after its write) on its way down. A kill sends nothing more.
        var stores = Members.ToDictionary(id => id, _ => new GatedStore { IgnoresCancellation = true });
        foreach (string id in Members)
        {
            await StartAsync(id, stores[id]);
        }
        RaftNode leader = await WaitForLeaderAsync();
        await PutAsync(leader, "warm", "up");
        RaftNode follower = _nodes.First(n => n != leader);
        var counting = new CountingTransport(_network.TransportFor(follower.Id));
        // Restart the follower on a counting transport, with its disk slowed down.
        await follower.DisposeAsync();
        _nodes.Remove(follower);
        _network.Detach(follower.Id);
        var machine = new KeyValueStateMachine();
        var restarted = new RaftNode(new RaftNodeOptions { Id = follower.Id, Members = Members, Raft = new RaftOptions() }, stores[follower.Id], machine, counting);
        _network.Attach(restarted);
        await restarted.StartAsync();
        await WaitUntilAsync(() => restarted.Status.CommitIndex >= leader.Status.CommitIndex);

        stores[follower.Id].Close();
        _ = PutAsync(leader, "during", "crash");
        await WaitUntilAsync(() => stores[follower.Id].Waiting > 0); // its write of the new entry is in flight
        int sentAtCrash = counting.Sent;
        Task crash = restarted.CrashAsync().AsTask(); // it returns once the write in flight is over, as a kill would not wait
        stores[follower.Id].Release();
        await crash.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(300);
        Assert.Equal(sentAtCrash, counting.Sent); // no acknowledgement of the entry, no heartbeat answer: nothing
        Assert.Null(machine.GetLocal("during"));
    }

    [Fact]
    public async Task Three_nodes_elect_one_leader_and_a_write_is_applied_everywhere()
    {
        foreach (string id in Members)
        {
            await StartAsync(id);
        }
        RaftNode leader = await WaitForLeaderAsync();
        Assert.Equal(new KvResult(KvStatus.Ok, null), await PutAsync(leader, "color", "blue"));
        Assert.Equal(new KvResult(KvStatus.Ok, "blue"), await PutAsync(leader, "color", "green"));
        await WaitUntilAsync(() => _machines.Values.All(m => m.GetLocal("color") == "green"));
    }

    [Fact]
    public async Task A_proposal_to_a_follower_is_refused_with_the_leader()
    {
        foreach (string id in Members)
        {
            await StartAsync(id);
        }
        RaftNode leader = await WaitForLeaderAsync();
        RaftNode follower = _nodes.First(n => n != leader);
        var refusal = await Assert.ThrowsAsync<NotLeaderException>(() => PutAsync(follower, "k", "v"));
        Assert.Equal(leader.Id, refusal.LeaderHint);
    }

    [Fact]
    public async Task Proposals_that_arrive_together_are_persisted_together()
    {
        var stores = Members.ToDictionary(id => id, _ => new CountingStore());
        foreach (string id in Members)
        {
            await StartAsync(id, stores[id]);
        }
        RaftNode leader = await WaitForLeaderAsync();
        int savesBefore = stores[leader.Id].Saves;
        Task<KvResult>[] writes = Enumerable.Range(0, 500).Select(i => PutAsync(leader, $"k{i}", $"v{i}")).ToArray();
        await Task.WhenAll(writes);
        int saves = stores[leader.Id].Saves - savesBefore;
        Assert.All(writes, w => Assert.Equal(KvStatus.Ok, w.Result.Status));
        Assert.True(saves < 100, $"500 proposals took {saves} saves on the leader: they were not batched");
        Assert.True(stores[leader.Id].LargestBatch > 10);
    }

    [Fact]
    public async Task A_cluster_on_SQLite_restarts_from_its_files_with_everything_it_acknowledged()
    {
        string PathOf(string id) => Path.Combine(_folder, $"{id}.db");
        foreach (string id in Members)
        {
            await StartAsync(id, SqliteLogStore.Open(PathOf(id)));
        }
        for (int i = 0; i < 20; i++)
        {
            await PutToLeaderAsync($"k{i}", $"v{i}"); // a loaded machine may see an election meanwhile
        }
        long term = (await WaitForLeaderAsync()).Status.Term;
        foreach (RaftNode node in _nodes)
        {
            await node.DisposeAsync();
            await _stores[node.Id].DisposeAsync(); // what a stopped process leaves: closed files
            _network.Detach(node.Id);
        }
        _nodes.Clear();

        foreach (string id in Members)
        {
            await StartAsync(id, SqliteLogStore.Open(PathOf(id)));
        }
        Assert.True((await WaitForLeaderAsync()).Status.Term > term);
        await PutToLeaderAsync("after", "restart"); // commits the new term, and with it everything before
        await WaitUntilAsync(() => _machines.Values.All(m => m.GetLocal("k19") == "v19" && m.GetLocal("after") == "restart"));
        Assert.All(_machines.Values, m => Assert.Equal(21, m.Count));
    }

    [Fact]
    public async Task An_isolated_leader_is_replaced_and_after_healing_every_node_agrees()
    {
        foreach (string id in Members)
        {
            await StartAsync(id);
        }
        RaftNode old = await WaitForLeaderAsync();
        await PutAsync(old, "before", "1");
        _network.Isolate(old.Id);

        RaftNode replacement = await WaitForLeaderAsync(n => n != old);
        Assert.NotEqual(old.Id, replacement.Id);
        await PutAsync(replacement, "during", "2");
        await WaitUntilAsync(() => old.Status.Role != Role.Leader); // CheckQuorum

        _network.HealAll();
        await WaitUntilAsync(() => _machines[old.Id].GetLocal("during") == "2");
        Assert.Equal(replacement.Id, old.Status.LeaderId);
    }

    [Fact]
    public async Task Time_comes_from_the_TimeProvider()
    {
        var clock = new FakeTimeProvider();
        foreach (string id in Members)
        {
            await StartAsync(id, time: clock);
        }
        await Task.Delay(500); // real time passes, logical time does not
        Assert.All(_nodes, n => Assert.Equal(0, n.Status.Term));

        for (int i = 0; i < 200 && !_nodes.Any(n => n.Status.Role == Role.Leader); i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            await Task.Delay(2);
        }
        Assert.Single(_nodes, n => n.Status.Role == Role.Leader);
    }

    [Fact]
    public async Task An_idle_cluster_wakes_for_its_heartbeats_not_for_every_tick()
    {
        // Each member's loop used to wake every tick (100 times a second at 10 ms), most of an idle member's CPU.
        // It now sleeps until its core's next deadline: the leader's heartbeats; a follower hears them first.
        var clock = new CountingTime();
        foreach (string id in Members)
        {
            await StartAsync(id, time: clock);
        }
        for (int i = 0; i < 300 && !(_nodes.Count(n => n.Status.Role == Role.Leader) == 1 && _nodes.All(n => n.Status.LeaderId != null)); i++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            await Task.Delay(2);
        }
        RaftNode leader = Assert.Single(_nodes, n => n.Status.Role == Role.Leader);
        long term = leader.Status.Term;

        long before = clock.Fired;
        for (int i = 0; i < 100; i++) // one second of cluster time
        {
            clock.Advance(TimeSpan.FromMilliseconds(10));
            await Task.Delay(2);
        }
        long wakes = clock.Fired - before;

        Assert.All(_nodes, n => Assert.Equal((term, leader.Id), (n.Status.Term, n.Status.LeaderId))); // and nothing was lost
        int heartbeats = 1000 / (new RaftOptions().HeartbeatTicks * 10);
        Assert.InRange(wakes, heartbeats / 2, 2 * heartbeats); // before: 300, a wake per tick per member
    }

    /// <summary>A fake clock that counts the timer callbacks it makes.</summary>
    private sealed class CountingTime : TimeProvider
    {
        private readonly FakeTimeProvider _inner = new();
        private long _fired;

        public long Fired => Interlocked.Read(ref _fired);

        public void Advance(TimeSpan by) => _inner.Advance(by);

        public override long GetTimestamp() => _inner.GetTimestamp();

        public override long TimestampFrequency => _inner.TimestampFrequency;

        public override DateTimeOffset GetUtcNow() => _inner.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            _inner.CreateTimer(s => { Interlocked.Increment(ref _fired); callback(s); }, state, dueTime, period);
    }

    [Fact]
    public async Task Events_report_the_election_and_each_write_in_order()
    {
        var events = new ConcurrentQueue<RaftEvent>();
        foreach (string id in Members)
        {
            RaftNode node = await StartAsync(id);
            node.EventRaised += events.Enqueue;
        }
        RaftNode leader = await WaitForLeaderAsync();
        await PutAsync(leader, "a", "1");
        RaftEvent[] mine = events.Where(e => e.NodeId == leader.Id).ToArray();

        Assert.Contains(mine, e => e is RoleChanged { Role: Role.Leader });
        Assert.Contains(mine, e => e is TermChanged);
        EntryApplied[] applied = mine.OfType<EntryApplied>().ToArray();
        Assert.Equal(Enumerable.Range(1, applied.Length).Select(i => (long)i), applied.Select(a => a.Index)); // in order, no gaps
        Assert.Contains(applied, a => a.Kind == EntryKind.NoOp);
        Assert.Contains(applied, a => a.Kind == EntryKind.Command);
        long[] commits = mine.OfType<CommitAdvanced>().Select(c => c.CommitIndex).ToArray();
        Assert.Equal(commits.Order(), commits);
    }

    [Fact]
    public async Task A_linearizable_read_on_a_follower_sees_a_write_acknowledged_before_it()
    {
        foreach (string id in Members)
        {
            await StartAsync(id);
        }
        RaftNode leader = await WaitForLeaderAsync();
        RaftNode follower = _nodes.First(n => n != leader);
        for (int i = 0; i < 20; i++)
        {
            await PutAsync(leader, "x", $"{i}");
            await follower.LinearizableReadAsync();
            Assert.Equal($"{i}", _machines[follower.Id].GetLocal("x"));
        }
    }

    [Fact]
    public async Task Servers_are_added_and_removed_and_leadership_is_transferred()
    {
        foreach (string id in Members)
        {
            await StartAsync(id);
        }
        RaftNode leader = await WaitForLeaderAsync();
        await PutAsync(leader, "before", "join");
        RaftNode joining = await StartAsync("n4", members: []); // a new, empty server: it waits to be added

        await leader.AddServerAsync("n4");
        Assert.True(leader.Status.CommittedConfiguration.IsVoter("n4"));
        await WaitUntilAsync(() => _machines["n4"].GetLocal("before") == "join");

        await leader.TransferLeadershipAsync("n4");
        await WaitUntilAsync(() => joining.Status.Role == Role.Leader);
        Assert.Equal("n4", leader.Status.LeaderId);

        await joining.RemoveServerAsync(leader.Id); // right after the transfer: the node waits until it may change the configuration
        Assert.False(joining.Status.CommittedConfiguration.IsMember(leader.Id));
        Assert.Equal(3, joining.Status.Configuration.Voters.Count);

        var refusal = await Assert.ThrowsAsync<RaftAdminException>(() => joining.RemoveServerAsync("nobody"));
        Assert.Equal(AdminStatus.UnknownServer, refusal.Status);
        var notLeader = await Assert.ThrowsAsync<RaftAdminException>(() => _nodes.First(n => n.Id == "n2" || n.Id == "n3").AddServerAsync("n5"));
        Assert.Equal(AdminStatus.NotLeader, notLeader.Status);
    }

    [Fact]
    public async Task A_snapshot_survives_a_restart_and_a_new_server_catches_up_through_InstallSnapshot()
    {
        var raft = new RaftOptions { SnapshotThreshold = 50, EntriesKeptAfterSnapshot = 0, SnapshotChunkSize = 32 };
        string PathOf(string id) => Path.Combine(_folder, $"{id}.db");
        foreach (string id in Members)
        {
            await StartAsync(id, SqliteLogStore.Open(PathOf(id)), raft: raft);
        }
        for (int i = 0; i < 120; i++)
        {
            await PutToLeaderAsync($"k{i % 10}", $"v{i}");
        }
        RaftNode leader = await WaitForLeaderAsync();
        await leader.TakeSnapshotAsync();
        Assert.True(leader.Status.SnapshotIndex >= 120);
        Assert.True(leader.Status.FirstIndex > 100); // compacted

        var installed = new TaskCompletionSource<SnapshotInstalled>(TaskCreationOptions.RunContinuationsAsynchronously);
        RaftNode joining = await StartAsync("n4", SqliteLogStore.Open(PathOf("n4")), members: [], raft: raft);
        joining.EventRaised += e =>
        {
            if (e is SnapshotInstalled s)
            {
                installed.TrySetResult(s);
            }
        };
        await leader.AddServerAsync("n4");
        SnapshotInstalled install = await installed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(install.Bytes > raft.SnapshotChunkSize, "the snapshot should have taken several chunks");
        await WaitUntilAsync(() => _machines["n4"].GetLocal("k9") == "v119");

        // Restart the new server from its files: snapshot plus log, nothing missing.
        await joining.DisposeAsync();
        await _stores["n4"].DisposeAsync();
        _nodes.Remove(joining);
        _network.Detach("n4");
        RaftNode again = await StartAsync("n4", SqliteLogStore.Open(PathOf("n4")), members: [], raft: raft);
        Assert.True(again.Status.SnapshotIndex > 0);
        Assert.Equal("v119", _machines["n4"].GetLocal("k9")); // restored from the snapshot before any message arrived
    }

    /// <summary>A store that counts its saves and is slow enough (2 ms a save) for proposals to pile up, like a disk.</summary>
    private sealed class CountingStore : ILogStore
    {
        private readonly MemoryLogStore _inner = new();
        public int Saves;
        public int LargestBatch;

        public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) => _inner.LoadAsync(cancellationToken);

        public async ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Saves);
            LargestBatch = Math.Max(LargestBatch, entries.Count);
            await Task.Delay(2, cancellationToken);
            await _inner.SaveAsync(hardState, entries, cancellationToken);
        }

        public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default) => _inner.SaveSnapshotAsync(snapshot, keepLaterEntries, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
