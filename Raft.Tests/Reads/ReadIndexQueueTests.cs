using Raft.Engine.Consensus;
using Raft.Engine.Membership;
using Raft.Engine.Reads;

namespace Raft.Tests.Reads;

public sealed class ReadIndexQueueTests
{
    private static readonly ClusterConfiguration Three = new(["a", "b", "c"], ["l"]);

    [Fact]
    public void A_read_is_confirmed_by_a_majority_answering_its_round_or_a_later_one()
    {
        var queue = new ReadIndexQueue(new RaftOptions());
        queue.Add(new PendingRead(1, "a", 10), ["a"]);
        long first = queue.Round;
        queue.Add(new PendingRead(2, "a", 11), ["a"]);
        Assert.True(queue.HeartbeatWanted);

        queue.Acknowledge("l", queue.Round); // a learner confirms nothing
        Assert.Empty(queue.TakeConfirmed(Three));
        queue.Acknowledge("b", first - 1); // an answer to an older round confirms neither
        Assert.Empty(queue.TakeConfirmed(Three));
        queue.Acknowledge("b", first);
        Assert.Equal([new PendingRead(1, "a", 10)], queue.TakeConfirmed(Three));
        queue.Acknowledge("c", queue.Round);
        Assert.Equal([new PendingRead(2, "a", 11)], queue.TakeConfirmed(Three));
    }

    [Fact]
    public void Reads_waiting_for_confirmation_or_for_the_first_commit_are_all_handed_back_when_leadership_ends()
    {
        var queue = new ReadIndexQueue(new RaftOptions());
        queue.Add(new PendingRead(1, "a", 10), ["a"]);
        queue.AwaitCommit(2, "b");
        Assert.Equal([(1L, "a"), (2L, "b")], queue.TakeAllAndReset());
        Assert.False(queue.HasAwaitingCommit);
        queue.Acknowledge("b", queue.Round);
        queue.Acknowledge("c", queue.Round);
        Assert.Empty(queue.TakeConfirmed(Three));
    }

    [Fact]
    public void The_lease_holds_only_after_a_majority_answered_a_recent_round()
    {
        var queue = new ReadIndexQueue(new RaftOptions { LeaseReads = true, ElectionTicks = 10, LeaseDriftMarginTicks = 2 });
        queue.OnHeartbeatRound(now: 100);
        Assert.False(queue.LeaseHolds(Three, "a", 100));
        queue.Acknowledge("b", queue.Round);
        Assert.True(queue.LeaseHolds(Three, "a", 107)); // 100 + 10 - 2
        Assert.False(queue.LeaseHolds(Three, "a", 108));
        queue.TakeAllAndReset();
        Assert.False(queue.LeaseHolds(Three, "a", 101));
    }
}
