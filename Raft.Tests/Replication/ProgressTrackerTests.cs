using Raft.Engine.Membership;
using Raft.Engine.Replication;

namespace Raft.Tests.Replication;

public sealed class ProgressTrackerTests
{
    private static readonly ClusterConfiguration Three = new(["a", "b", "c"], ["l"]);

    [Fact]
    public void It_tracks_exactly_the_other_members_and_reports_the_newcomers()
    {
        var tracker = new ProgressTracker(maxInflight: 4);
        Assert.Equal(["b", "c", "l"], tracker.TrackMembersOf(Three, "a", nextIndex: 11));
        Assert.Equal(11, tracker["b"].Next);
        Assert.True(tracker["l"].RecentActive); // not yet had a chance to answer
        Assert.Empty(tracker.TrackMembersOf(Three, "a", nextIndex: 20)); // known members keep their progress
        Assert.Equal(11, tracker["c"].Next);

        Assert.Equal(["d"], tracker.TrackMembersOf(new ClusterConfiguration(["a", "b", "d"]), "a", 30));
        Assert.Equal(["b", "d"], tracker.Peers.Order());
    }

    [Fact]
    public void The_quorum_match_counts_the_leader_and_voters_but_not_learners()
    {
        var tracker = new ProgressTracker(4);
        tracker.TrackMembersOf(Three, "a", 1);
        tracker["l"].TryAdvance(50);
        Assert.Equal(0, tracker.QuorumMatch(Three, "a", selfMatch: 10)); // b and c have nothing
        tracker["c"].TryAdvance(7);
        Assert.Equal(7, tracker.QuorumMatch(Three, "a", selfMatch: 10));
        Assert.Equal(5, tracker.QuorumMatch(Three, "a", selfMatch: 5)); // the leader counts only what it has made durable
    }

    [Fact]
    public void CheckQuorum_needs_a_majority_of_voters_heard_from_and_starts_a_new_round()
    {
        var tracker = new ProgressTracker(4);
        tracker.TrackMembersOf(Three, "a", 1);
        Assert.True(tracker.TakeRecentlyActiveQuorum(Three, "a")); // newcomers count as active once
        tracker["l"].RecentActive = true;
        Assert.False(tracker.TakeRecentlyActiveQuorum(Three, "a")); // a learner does not keep a leader in office
        tracker["b"].RecentActive = true;
        Assert.True(tracker.TakeRecentlyActiveQuorum(Three, "a"));
        Assert.All(tracker.Statuses(), s => Assert.False(s.RecentActive));
    }
}
