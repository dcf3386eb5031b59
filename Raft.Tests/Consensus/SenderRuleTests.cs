using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using static Raft.Tests.Consensus.CoreFixture;

namespace Raft.Tests.Consensus;

/// <summary>
/// The sender rules (issue 11): the outsider's messages that deposed leaders, raised every term to Int64.MaxValue and
/// forked the log are dropped; a lagging server still follows a leader it does not know yet.
/// </summary>
public sealed class SenderRuleTests
{
    private static readonly RaftOptions Guarded = Options with { PreVote = true, CheckQuorum = true };

    private static RaftCore FollowerOfS2(out long term)
    {
        RaftCore follower = Core(options: Guarded, logTerms: [1, 1]);
        follower.Step(Append(1, 2, 1, [], 2)); // s2 leads term 1
        Drain(follower);
        Assert.Equal("s2", follower.LeaderId);
        term = follower.Term;
        return follower;
    }

    [Fact]
    public void An_outsiders_transfer_vote_with_the_largest_term_changes_nothing()
    {
        // Issue 11: stored term Int64.MaxValue on every node; the next pre-vote term wrapped and no leader was ever elected.
        RaftCore leader = Elect(Core(options: Options));
        Drain(leader);
        long term = leader.Term;
        leader.Step(new RequestVote("evil", "s1", long.MaxValue, 100, long.MaxValue - 1, PreVote: false, Transfer: true));
        leader.Step(new RequestVote("evil", "s1", 1_000_000, 100, 1_000_000, PreVote: false, Transfer: true));

        Assert.Equal((Role.Leader, term), (leader.Role, leader.Term));
        Ready ready = leader.TakeReady();
        Assert.Empty(ready.AllMessages.OfType<RequestVoteResponse>());
        MessageRefused refused = Assert.IsType<MessageRefused>(Assert.Single(ready.Notices ?? [])); // once per sender
        Assert.Equal(("evil", nameof(RequestVote)), (refused.From, refused.Kind));
        Assert.Equal(2, leader.RefusedMessages);
    }

    [Fact]
    public void A_members_term_that_cannot_be_incremented_is_refused()
    {
        RaftCore follower = FollowerOfS2(out long term);
        follower.Step(new RequestVote("s3", "s1", long.MaxValue, 100, 100, PreVote: false, Transfer: true));
        follower.Step(Append(long.MaxValue, 2, 1, [], 2, from: "s3"));
        follower.Step(Append(-5, 2, 1, [], 2, from: "s3"));
        Assert.Equal(term, follower.Term);
        Assert.Equal("s2", follower.LeaderId);
        Assert.Equal(3, follower.RefusedMessages);
    }

    [Fact]
    public void Entries_from_anyone_but_the_known_leader_of_the_term_are_not_appended()
    {
        // Issue 11: forged entries at the current term were committed and applied, different ones on different nodes.
        RaftCore follower = FollowerOfS2(out long term);
        follower.Step(Append(term, 2, 1, [Entry(3, term, "forged")], 3, from: "evil"));
        follower.Step(Append(term, 2, 1, [Entry(3, term, "forged")], 3, from: "s3")); // a member, but s2 leads this term
        follower.Step(new InstallSnapshot("evil", "s1", term, new SnapshotMetadata(1000, term, new ClusterConfiguration(["evil"])), 0, [1, 2, 3], true));
        Drain(follower);
        Assert.Equal((2L, 2L, 0L), (follower.LastIndex, follower.CommitIndex, follower.SnapshotIndex));

        follower.Step(Append(term, 2, 1, [Entry(3, term, "real")], 3)); // the leader's own still go in
        Drain(follower);
        Assert.Equal(3, follower.LastIndex);
    }

    [Fact]
    public void A_higher_term_from_a_non_voter_does_not_depose_or_raise_anyone()
    {
        RaftCore leader = Elect(Core(options: Options));
        Drain(leader);
        long term = leader.Term;
        leader.Step(Append(term + 5, 0, 0, [], 0, from: "evil"));
        leader.Step(new AppendEntriesResponse("evil", "s1", term + 5, false, 0, 0, 0, 0));
        Assert.Equal((Role.Leader, term), (leader.Role, leader.Term));
    }

    [Fact]
    public void TimeoutNow_is_obeyed_only_from_the_leader_it_knows()
    {
        RaftCore follower = FollowerOfS2(out long term);
        follower.Step(new TimeoutNow("s3", "s1", term));
        Assert.Equal(Role.Follower, follower.Role);
        follower.Step(new TimeoutNow("s2", "s1", term));
        Assert.Equal(Role.Candidate, follower.Role);
    }

    [Fact]
    public void A_server_that_missed_a_membership_change_follows_the_new_leader_once_it_knows_the_term()
    {
        // s1 knows {s1,s2,s3}; meanwhile s4 was added and now leads term 5. s1 learns term 5 from a member, then takes
        // s4's entries: refusing them would leave it behind for good (found by the random simulation).
        RaftCore lagging = Core(options: Guarded, logTerms: [1, 1]);
        lagging.Step(Append(5, 3, 5, [], 3, from: "s4"));
        Drain(lagging);
        Assert.Equal(1, lagging.RefusedMessages); // an unknown sender may not raise the term
        Assert.Equal(0, lagging.Term);

        lagging.Step(new RequestVoteResponse("s2", "s1", 5, false, PreVote: true, Leader: "s4")); // a member's answer: term 5, led by s4
        Assert.Equal((5L, null), (lagging.Term, lagging.LeaderId)); // s4 leads once its entries come: only then is its commit index known
        var joined = new ClusterConfiguration(["s1", "s2", "s3", "s4"]);
        lagging.Step(Append(5, 2, 1, [new LogEntry(3, 5, EntryKind.Configuration, joined.Encode())], 3, from: "s4"));
        Drain(lagging);
        Assert.Equal(("s4", 3L), (lagging.LeaderId, lagging.CommitIndex));
        Assert.True(lagging.Configuration.IsVoter("s4"));
    }

    [Fact]
    public void A_server_that_knows_no_leader_takes_no_entries_from_a_non_voter_at_its_own_term()
    {
        // Found by a hostile user: with the leader and one follower paused, the third (a pre-candidate, leader unknown)
        // took 'evil''s entry at its own term, applied and served it, and later skipped the real leader's entry at that index.
        RaftCore follower = FollowerOfS2(out long term);
        TickUntil(follower, c => c.Role == Role.PreCandidate);
        Drain(follower);
        Assert.Null(follower.LeaderId);

        follower.Step(Append(term, 2, 1, [Entry(3, term, "forged2=evil-value")], 3, from: "evil"));
        follower.Step(Append(term, 2, 1, [Entry(3, term, "forged")], 3, from: "n4")); // holds a CA-signed certificate, but is no member
        Drain(follower);
        Assert.Equal((2L, 2L, Role.PreCandidate), (follower.LastIndex, follower.CommitIndex, follower.Role));

        // A non-voter's claim to lead does not count either: only a voter's does.
        follower.Step(new RequestVoteResponse("evil", "s1", term, false, PreVote: true, Leader: "evil"));
        follower.Step(Append(term, 2, 1, [Entry(3, term, "forged")], 3, from: "evil"));
        Drain(follower);
        Assert.Equal(2, follower.LastIndex);

        follower.Step(Append(term, 2, 1, [Entry(3, term, "real")], 3)); // s2, a voter, still leads
        Drain(follower);
        Assert.Equal((3L, "s2"), (follower.LastIndex, follower.LeaderId));
    }

    [Fact]
    public void A_snapshot_is_refused_from_an_outsider_and_when_its_configuration_does_not_have_the_sender_as_a_voter()
    {
        RaftCore follower = Core(options: Guarded, logTerms: [1, 1]);
        var outsiders = new ClusterConfiguration(["evil", "s1"]);
        follower.Step(new InstallSnapshot("evil", "s1", 1, new SnapshotMetadata(1000, 1, outsiders), 0, [1, 2, 3], true));
        follower.Step(new InstallSnapshot("s2", "s1", 1, new SnapshotMetadata(1000, 1, outsiders), 0, [1, 2, 3], true)); // a member, but not in the snapshot
        Drain(follower);
        Assert.Equal((0L, 2L), (follower.SnapshotIndex, follower.LastIndex));
        Assert.Equal(2, follower.RefusedMessages);
        Assert.Equal(Three, follower.Configuration.Voters.Order());
    }

    [Fact]
    public void A_transfer_vote_breaks_the_lease_only_into_the_next_term_and_no_message_raises_a_term_by_more_than_the_step()
    {
        // Found by a hostile user: RequestVote{transfer, term Int64.MaxValue - 1} under a member's id was granted by every
        // node; a node at the largest term never campaigns, so the cluster never elected anyone again, even restarted.
        RaftCore follower = FollowerOfS2(out long term);
        follower.Step(new RequestVote("s3", "s1", RaftCore.MaxTerm - 1, 100, 100, PreVote: false, Transfer: true));
        follower.Step(new RequestVote("s3", "s1", term + SenderRules.MaxTermStep + 1, 100, 100, PreVote: false, Transfer: true));
        Assert.Equal((term, "s2"), (follower.Term, follower.LeaderId));
        Assert.Equal(2, follower.RefusedMessages);

        follower.Step(new RequestVote("s3", "s1", term + 2, 100, 100, PreVote: false, Transfer: true)); // within the step, not the next term
        Assert.Equal((term, "s2"), (follower.Term, follower.LeaderId)); // the lease holds
        Assert.Empty(Drain(follower).OfType<RequestVoteResponse>());

        follower.Step(new RequestVote("s3", "s1", term + 1, 100, 100, PreVote: false, Transfer: true)); // what TimeoutNow makes
        Assert.Equal(term + 1, follower.Term);
        Assert.True(Single<RequestVoteResponse>(Drain(follower)).Granted);
    }

    [Fact]
    public void A_pre_voter_refused_under_the_lease_is_told_the_leader()
    {
        RaftCore follower = FollowerOfS2(out long term);
        follower.Step(new RequestVote("s3", "s1", term + 1, 2, 1, PreVote: true));
        RequestVoteResponse answer = Single<RequestVoteResponse>(Drain(follower));
        Assert.Equal((false, term, "s2"), (answer.Granted, answer.Term, answer.Leader));
    }

    [Fact]
    public void A_server_waiting_to_be_added_takes_entries_only_from_the_servers_it_was_told_to_join_from()
    {
        RaftCore joining = Core("s4", members: [], options: Options with { JoinFrom = new HashSet<string>(Three) });
        joining.Step(Append(3, 0, 0, [Entry(1, 1, "forged")], 1, from: "evil", to: "s4"));
        joining.Step(new InstallSnapshot("evil", "s4", 3, new SnapshotMetadata(10, 3, new ClusterConfiguration(["evil", "s4"])), 0, [1], true));
        Drain(joining);
        Assert.Equal((0L, 0L, (string?)null), (joining.Term, joining.LastIndex, joining.LeaderId));

        joining.Step(Append(3, 0, 0, [Entry(1, 1)], 1, from: "s2", to: "s4"));
        Drain(joining);
        Assert.Equal((3L, 1L, "s2"), (joining.Term, joining.LastIndex, joining.LeaderId));
    }

    [Fact]
    public void A_server_waiting_to_be_added_takes_the_first_leaders_entries()
    {
        RaftCore joining = Core("s4", members: []);
        joining.Step(Append(3, 0, 0, [Entry(1, 1)], 1, from: "s2", to: "s4"));
        Drain(joining);
        Assert.Equal((3L, 1L, "s2"), (joining.Term, joining.LastIndex, joining.LeaderId));
    }
}
