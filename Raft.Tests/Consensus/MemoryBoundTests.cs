using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using static Raft.Tests.Consensus.CoreFixture;

namespace Raft.Tests.Consensus;

/// <summary>What a slow majority or a hostile sender could otherwise make a core hold without limit (issue 9).</summary>
public sealed class MemoryBoundTests
{
    [Fact]
    public void A_leader_without_a_majority_refuses_proposals_once_its_uncommitted_entries_reach_the_byte_limit()
    {
        RaftCore leader = Elect(Core(options: Options with { MaxUncommittedBytes = 1000 }));
        Drain(leader);
        var accepted = new List<long>();
        ProposeResult result;
        while ((result = leader.Propose(new byte[100])).Accepted)
        {
            accepted.Add(result.Index);
            Assert.True(accepted.Count < 100, "never refused");
        }
        Assert.Equal(ProposeRefusal.Overloaded, result.Refusal);
        // The no-op (24 bytes) and 7 commands of 124 bytes fit in 1,000; the 8th would not.
        Assert.Equal(7, accepted.Count);
        Assert.Equal(accepted[^1], leader.LastIndex);

        // A follower stores them all: a majority, so they commit and the leader takes proposals again.
        Drain(leader);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, leader.LastIndex, 0, 0, 0));
        Assert.Equal(leader.LastIndex, leader.CommitIndex);
        Assert.True(leader.Propose(new byte[100]).Accepted);
    }

    [Fact]
    public void One_entry_larger_than_the_uncommitted_limit_is_still_accepted_when_nothing_else_waits()
    {
        RaftCore leader = Elect(Core(options: Options with { MaxUncommittedBytes = 1000 }));
        Drain(leader);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, leader.LastIndex, 0, 0, 0)); // the no-op commits
        Assert.True(leader.Propose(new byte[5000]).Accepted);
        Assert.Equal(ProposeRefusal.Overloaded, leader.Propose([1]).Refusal);
    }

    [Fact]
    public void A_new_leader_counts_the_uncommitted_entries_it_inherited()
    {
        // s1 holds 10 entries of 1,000 bytes that were never committed; elected, it may not add more past the limit.
        var state = new Raft.Engine.Storage.PersistentState(new HardState(1, null),
            [.. Enumerable.Range(1, 10).Select(i => new LogEntry(i, 1, EntryKind.Command, new byte[1000]))]);
        var core = new RaftCore("s1", new ClusterConfiguration(Three), Options with { MaxUncommittedBytes = 5000 }, state, new Random(1), RuleSwitches.Safe);
        Elect(core);
        Assert.Equal(ProposeRefusal.Overloaded, core.Propose([1]).Refusal);
    }

    [Fact]
    public void A_snapshot_sent_in_chunks_past_the_size_limit_is_refused_and_its_buffer_dropped()
    {
        RaftCore follower = Core(options: Options with { MaxSnapshotBytes = 100 });
        var metadata = new SnapshotMetadata(50, 1, new ClusterConfiguration(Three));
        follower.Step(new InstallSnapshot("s2", "s1", 1, metadata, 0, new byte[60], false));
        InstallSnapshotResponse more = Single<InstallSnapshotResponse>(Drain(follower));
        Assert.Equal(60, more.NextOffset);

        follower.Step(new InstallSnapshot("s2", "s1", 1, metadata, 60, new byte[60], true));
        Ready ready = follower.TakeReady();
        SnapshotRefused refused = Assert.IsType<SnapshotRefused>(Assert.Single(ready.Notices ?? []));
        Assert.Contains("larger than the limit of 100 bytes", refused.Reason, StringComparison.Ordinal);
        Assert.Null(ready.SnapshotToInstall);
        InstallSnapshotResponse startOver = Single<InstallSnapshotResponse>(ready.AllMessages);
        Assert.Equal((0L, false), (startOver.NextOffset, startOver.Done));
        follower.Advance(ready);
        Assert.Equal(0, follower.SnapshotIndex);

        // The buffer is gone: a chunk that continues where the refused one left off is not appended to anything.
        follower.Step(new InstallSnapshot("s2", "s1", 1, metadata, 120, new byte[10], true));
        Assert.Equal(0, Single<InstallSnapshotResponse>(Drain(follower)).NextOffset);
    }

    [Fact]
    public void A_snapshot_is_due_after_the_byte_limit_of_log_even_with_fewer_entries_than_the_threshold()
    {
        // Issue 9: the log was bounded by entry count only; 1,000 entries of 1 MB are a gigabyte of log.
        RaftCore leader = Core(members: ["s1"], options: Options with { SnapshotThreshold = 1000, SnapshotLogBytes = 10_000, SnapshotLogRatio = 0 });
        TickUntil(leader, c => c.Role == Role.Leader); // alone, it wins its own vote
        int proposed = 0;
        while (!leader.IsSnapshotDue && proposed < 100)
        {
            leader.Propose(new byte[1000]);
            proposed++;
            Drain(leader);
        }
        Assert.True(leader.IsSnapshotDue, "no snapshot due after 100 KB of log");
        Assert.InRange(proposed, 9, 11); // about 10 KB of entries, far fewer than 1,000
    }
}
