using Raft.Engine.StateMachines;

namespace Raft.Tests.Simulation;

/// <summary>The linearizability checker must accept what a single copy of the store could have answered, and nothing else.</summary>
public sealed class LinearizabilityTests
{
    private const long Unknown = long.MaxValue;

    private static HistoryOp Op(int client, long call, long ret, KvCommand command, KvStatus? status = null, string? value = null) =>
        new(client, call, ret, command, ret == Unknown ? null : new KvResult(status ?? KvStatus.Ok, value));

    private static bool Check(params HistoryOp[] history) => Linearizability.Check(history, out _);

    [Fact]
    public void A_sequential_history_that_a_register_explains_is_accepted()
    {
        Assert.True(Check(
            Op(0, 1, 2, KvCommand.Put("x", "1")),
            Op(1, 3, 4, KvCommand.Get("x"), KvStatus.Ok, "1"),
            Op(0, 5, 6, KvCommand.CompareAndSwap("x", "1", "2"), KvStatus.Ok, "1"),
            Op(1, 7, 8, KvCommand.CompareAndSwap("x", "1", "3"), KvStatus.CompareFailed, "2"),
            Op(0, 9, 10, KvCommand.Delete("x"), KvStatus.Ok, "2"),
            Op(1, 11, 12, KvCommand.Get("x"), KvStatus.NotFound)));
    }

    [Fact]
    public void A_read_that_misses_a_write_completed_before_it_began_is_rejected()
    {
        Assert.False(Linearizability.Check(
            [
                Op(0, 1, 2, KvCommand.Put("x", "1")),
                Op(0, 3, 4, KvCommand.Put("x", "2"), KvStatus.Ok, "1"),
                Op(1, 5, 6, KvCommand.Get("x"), KvStatus.Ok, "1"), // stale: "2" was acknowledged before this read began
            ],
            out string explanation));
        Assert.Contains("key 'x'", explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void A_read_concurrent_with_a_write_may_see_either_value()
    {
        HistoryOp write = Op(0, 2, 5, KvCommand.Put("x", "new"), KvStatus.Ok, "old");
        HistoryOp setup = Op(0, 0, 1, KvCommand.Put("x", "old"));
        Assert.True(Check(setup, write, Op(1, 3, 4, KvCommand.Get("x"), KvStatus.Ok, "old")));
        Assert.True(Check(setup, write, Op(1, 3, 4, KvCommand.Get("x"), KvStatus.Ok, "new")));
        Assert.False(Check(setup, write, Op(1, 3, 4, KvCommand.Get("x"), KvStatus.Ok, "other")));
    }

    [Fact]
    public void A_write_with_an_unknown_outcome_may_take_effect_late_or_never()
    {
        HistoryOp lost = Op(0, 1, Unknown, KvCommand.Put("x", "1"));
        Assert.True(Check(lost, Op(1, 10, 11, KvCommand.Get("x"), KvStatus.NotFound)));
        Assert.True(Check(lost, Op(1, 10, 11, KvCommand.Get("x"), KvStatus.Ok, "1")));
        // But not before it was called.
        Assert.False(Check(Op(1, 1, 2, KvCommand.Get("x"), KvStatus.Ok, "1"), Op(0, 3, Unknown, KvCommand.Put("x", "1"))));
    }

    [Fact]
    public void Keys_are_checked_independently_and_a_violation_on_one_is_found()
    {
        Assert.False(Check(
            Op(0, 1, 2, KvCommand.Put("a", "1")),
            Op(1, 1, 2, KvCommand.Put("b", "1")),
            Op(0, 3, 4, KvCommand.Get("a"), KvStatus.Ok, "1"),
            Op(1, 3, 4, KvCommand.Get("b"), KvStatus.NotFound)));
    }
}
