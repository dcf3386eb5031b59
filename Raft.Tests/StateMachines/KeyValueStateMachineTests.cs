using Raft.Engine.StateMachines;

namespace Raft.Tests.StateMachines;

public sealed class KeyValueStateMachineTests
{
    private static KvResult Apply(KeyValueStateMachine machine, long index, KvCommand command) => KvResult.Decode(machine.Apply(index, command.Encode()));

    [Fact]
    public void Put_get_delete_and_compare_and_swap_return_their_results()
    {
        var kv = new KeyValueStateMachine();
        Assert.Equal(new KvResult(KvStatus.Ok, null), Apply(kv, 1, KvCommand.Put("a", "1")));
        Assert.Equal(new KvResult(KvStatus.Ok, "1"), Apply(kv, 2, KvCommand.Put("a", "2"))); // previous value
        Assert.Equal(new KvResult(KvStatus.Ok, "2"), Apply(kv, 3, KvCommand.Get("a")));
        Assert.Equal(new KvResult(KvStatus.NotFound), Apply(kv, 4, KvCommand.Get("b")));
        Assert.Equal(new KvResult(KvStatus.CompareFailed, "2"), Apply(kv, 5, KvCommand.CompareAndSwap("a", "1", "3")));
        Assert.Equal(new KvResult(KvStatus.Ok, "2"), Apply(kv, 6, KvCommand.CompareAndSwap("a", "2", "3")));
        Assert.Equal(new KvResult(KvStatus.Ok, null), Apply(kv, 7, KvCommand.CompareAndSwap("new", null, "x"))); // create if absent
        Assert.Equal(new KvResult(KvStatus.Ok, "x"), Apply(kv, 8, KvCommand.CompareAndSwap("new", "x", null))); // delete if equal
        Assert.Equal(new KvResult(KvStatus.Ok, "3"), Apply(kv, 9, KvCommand.Delete("a")));
        Assert.Equal(new KvResult(KvStatus.NotFound), Apply(kv, 10, KvCommand.Delete("a")));
        Assert.Equal(0, kv.Count);
    }

    [Fact]
    public void A_retried_command_is_applied_once_and_an_older_one_is_refused()
    {
        var kv = new KeyValueStateMachine();
        KvCommand put = KvCommand.Put("k", "v1", "client", 1);
        Apply(kv, 1, put);
        Apply(kv, 2, KvCommand.Put("k", "other")); // someone else writes in between
        Assert.Equal(new KvResult(KvStatus.Ok, null), Apply(kv, 3, put)); // the first answer again, not "other"
        Assert.Equal("other", kv.GetLocal("k")); // and not applied again
        Apply(kv, 4, KvCommand.Put("k", "v2", "client", 2));
        Assert.Equal(KvStatus.StaleSequence, Apply(kv, 5, put).Status);
        Assert.Equal("v2", kv.GetLocal("k"));
    }

    [Fact]
    public async Task A_sequence_number_reused_for_another_command_is_refused_and_not_answered_with_the_old_result()
    {
        var kv = new KeyValueStateMachine();
        Apply(kv, 1, KvCommand.Put("a", "1", "dashboard", 1));
        // Another client instance under the same id, numbering from 1 again: not the retry it looks like.
        KvResult reused = Apply(kv, 2, KvCommand.Put("g", "1", "dashboard", 1));
        Assert.Equal(KvStatus.SessionReused, reused.Status);
        Assert.Null(kv.GetLocal("g")); // nothing applied, and no false "ok"
        Assert.Equal(new KvResult(KvStatus.Ok, null), Apply(kv, 3, KvCommand.Put("a", "1", "dashboard", 1))); // the real retry still is one

        // The digests travel in snapshots: after a restore the same distinction holds.
        using var stream = new MemoryStream();
        await kv.WriteSnapshotAsync(stream);
        var restored = new KeyValueStateMachine();
        stream.Position = 0;
        await restored.RestoreSnapshotAsync(stream);
        Assert.Equal(KvStatus.SessionReused, Apply(restored, 4, KvCommand.Put("g", "1", "dashboard", 1)).Status);
        Assert.Equal(new KvResult(KvStatus.Ok, null), Apply(restored, 5, KvCommand.Put("a", "1", "dashboard", 1)));
    }

    [Fact]
    public void Two_clients_with_the_same_name_never_share_a_session_id()
    {
        using var first = new Raft.Client.RaftClient(["http://127.0.0.1:1"], "dashboard");
        using var second = new Raft.Client.RaftClient(["http://127.0.0.1:1"], "dashboard");
        Assert.StartsWith("dashboard-", first.ClientId, StringComparison.Ordinal);
        Assert.NotEqual(first.ClientId, second.ClientId);
    }

    [Fact]
    public async Task A_snapshot_restores_data_and_sessions_exactly()
    {
        var kv = new KeyValueStateMachine();
        Apply(kv, 1, KvCommand.Put("a", "1", "c1", 1));
        Apply(kv, 2, KvCommand.Put("b", "ü", "c2", 1));
        using var stream = new MemoryStream();
        await kv.WriteSnapshotAsync(stream);

        var restored = new KeyValueStateMachine();
        Apply(restored, 1, KvCommand.Put("junk", "x"));
        stream.Position = 0;
        await restored.RestoreSnapshotAsync(stream);
        Assert.Equal(kv.Snapshot(), restored.Snapshot());
        Assert.Equal(2, restored.AppliedIndex);
        // The sessions came along: a retry after restore is still deduplicated, and a reuse still refused.
        Assert.Equal(new KvResult(KvStatus.Ok, null), Apply(restored, 3, KvCommand.Put("b", "ü", "c2", 1)));
        Assert.Equal(KvStatus.SessionReused, Apply(restored, 4, KvCommand.Put("b", "again", "c2", 1)).Status);
        Assert.Equal("ü", restored.GetLocal("b"));
    }

    [Fact]
    public async Task A_corrupt_snapshot_is_refused_and_leaves_the_state_intact()
    {
        var kv = new KeyValueStateMachine();
        Apply(kv, 1, KvCommand.Put("a", "1"));
        await Assert.ThrowsAsync<InvalidDataException>(async () => await kv.RestoreSnapshotAsync(new MemoryStream([1, 2, 3, 4, 5])));
        using var truncated = new MemoryStream();
        await kv.WriteSnapshotAsync(truncated);
        await Assert.ThrowsAsync<EndOfStreamException>(async () => await new KeyValueStateMachine().RestoreSnapshotAsync(new MemoryStream(truncated.ToArray()[..^3])));
        Assert.Equal("1", kv.GetLocal("a"));
    }

    [Fact]
    public void Bytes_that_are_not_a_command_get_an_Invalid_answer_and_change_nothing()
    {
        var kv = new KeyValueStateMachine();
        Assert.Equal(KvStatus.Invalid, KvResult.Decode(kv.Apply(1, [9, 9, 9])).Status);
        Assert.Equal(KvStatus.Invalid, KvResult.Decode(kv.Apply(2, [])).Status);
        Assert.Equal(0, kv.Count);
    }

    [Fact]
    public void Sessions_beyond_the_limit_evict_the_least_recently_used()
    {
        var kv = new KeyValueStateMachine(maxSessions: 2);
        Apply(kv, 1, KvCommand.Put("a", "1", "old", 1));
        Apply(kv, 2, KvCommand.Put("b", "1", "mid", 1));
        Apply(kv, 3, KvCommand.Put("c", "1", "new", 1));
        Assert.Equal(2, kv.SessionCount);
        // "old" was evicted: its retry is applied again (the documented cost of a bounded session table).
        Apply(kv, 4, KvCommand.Put("a", "changed"));
        Apply(kv, 5, KvCommand.Put("a", "1", "old", 1));
        Assert.Equal("1", kv.GetLocal("a"));
    }

    [Fact]
    public void An_evicted_session_that_goes_on_past_its_first_command_is_told_so()
    {
        var kv = new KeyValueStateMachine(maxSessions: 1);
        Apply(kv, 1, KvCommand.Put("a", "1", "first", 1));
        Apply(kv, 2, KvCommand.Put("b", "1", "second", 1)); // evicts "first"
        KvResult next = Apply(kv, 3, KvCommand.Put("a", "2", "first", 2));
        Assert.Equal(KvStatus.SessionExpired, next.Status);
        Assert.Contains("start a new session", next.Value, StringComparison.Ordinal);
        Assert.Equal("1", kv.GetLocal("a"));
    }

    /// <summary>A command stamped by the leader at <paramref name="atSeconds"/>.</summary>
    private static KvCommand At(int atSeconds, KvCommand command) => command with { IssuedAtMs = 1_700_000_000_000 + (atSeconds * 1000L) };

    [Fact]
    public void Sessions_idle_past_the_timeout_expire_by_the_clock_in_the_log_the_same_way_on_every_replica()
    {
        KvCommand[] log =
        [
            At(0, KvCommand.Put("x", "1", "idle", 1)),
            At(5, KvCommand.Put("y", "1", "busy", 1)),
            At(9, KvCommand.Put("x", "2", "idle", 2)),    // idle 9 s of 10: still alive
            At(15, KvCommand.Put("y", "2", "busy", 2)),
            At(25, KvCommand.Put("y", "3", "busy", 3)),   // the clock passes 9 + 10: "idle" expires here
            At(26, KvCommand.Put("x", "3", "idle", 3)),
        ];
        var replicas = new[] { new KeyValueStateMachine(sessionTimeout: TimeSpan.FromSeconds(10)), new KeyValueStateMachine(sessionTimeout: TimeSpan.FromSeconds(10)) };
        KvResult[][] answers = [.. replicas.Select(kv => log.Select((c, i) => Apply(kv, i + 1, c)).ToArray())];

        Assert.Equal(answers[0], answers[1]);
        Assert.Equal([KvStatus.Ok, KvStatus.Ok, KvStatus.Ok, KvStatus.Ok, KvStatus.Ok, KvStatus.SessionExpired], answers[0].Select(a => a.Status));
        Assert.All(replicas, kv => Assert.Equal("2", kv.GetLocal("x")));
        Assert.All(replicas, kv => Assert.Equal(1, kv.SessionCount));
    }

    [Fact]
    public void A_retry_through_another_leader_carries_another_time_stamp_and_is_still_a_retry()
    {
        var kv = new KeyValueStateMachine();
        Assert.Equal(KvStatus.Ok, Apply(kv, 1, At(0, KvCommand.CompareAndSwap("n", null, "1", "c", 1))).Status);
        Apply(kv, 2, KvCommand.Put("n", "moved"));
        // Had the retry been applied again, the swap would fail (n is no longer absent); it gets the first answer.
        Assert.Equal(KvStatus.Ok, Apply(kv, 3, At(4, KvCommand.CompareAndSwap("n", null, "1", "c", 1))).Status);
        Assert.Equal("moved", kv.GetLocal("n"));
    }

    [Fact]
    public async Task The_session_clock_and_order_survive_a_snapshot()
    {
        var kv = new KeyValueStateMachine(sessionTimeout: TimeSpan.FromSeconds(10));
        Apply(kv, 1, At(0, KvCommand.Put("a", "1", "old", 1)));
        Apply(kv, 2, At(8, KvCommand.Put("b", "1", "new", 1)));
        using var stream = new MemoryStream();
        await kv.WriteSnapshotAsync(stream);
        var restored = new KeyValueStateMachine(sessionTimeout: TimeSpan.FromSeconds(10));
        stream.Position = 0;
        await restored.RestoreSnapshotAsync(stream);

        // At 12 s "old" (idle 12 s) expires and "new" (idle 4 s) lives: as on the machine that wrote the snapshot.
        foreach (KeyValueStateMachine machine in new[] { kv, restored })
        {
            Assert.Equal(KvStatus.SessionExpired, Apply(machine, 3, At(12, KvCommand.Put("a", "2", "old", 2))).Status);
            Assert.Equal(KvStatus.Ok, Apply(machine, 4, At(12, KvCommand.Put("b", "2", "new", 2))).Status);
        }
    }
}
