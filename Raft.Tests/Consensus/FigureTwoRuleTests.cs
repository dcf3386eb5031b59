using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Replication;
using static Raft.Tests.Consensus.CoreFixture;

namespace Raft.Tests.Consensus;

/// <summary>One test per rule of Figure 2 of the Raft paper ("In Search of an Understandable Consensus Algorithm"), named after it.</summary>
public sealed class FigureTwoRuleTests
{
    // ---- RequestVote RPC, receiver implementation ---------------------------------------------

    [Fact]
    public void RequestVote_1_reply_false_if_term_is_less_than_currentTerm()
    {
        RaftCore voter = Core(term: 5);
        voter.Step(new RequestVote("s2", "s1", 4, 10, 4, false));
        var reply = Single<RequestVoteResponse>(Drain(voter));
        Assert.False(reply.Granted);
        Assert.Equal(5, voter.Term);
        Assert.Null(voter.VotedFor);
    }

    [Fact]
    public void RequestVote_2_grant_if_votedFor_is_null_and_candidate_log_is_at_least_as_up_to_date()
    {
        RaftCore voter = Core(term: 2, logTerms: [1, 2]);
        voter.Step(new RequestVote("s2", "s1", 3, 2, 2, false));
        var reply = Single<RequestVoteResponse>(Drain(voter));
        Assert.True(reply.Granted);
        Assert.Equal(3, reply.Term);
        Assert.Equal("s2", voter.VotedFor);
    }

    [Fact]
    public void RequestVote_2_grant_again_to_the_candidate_already_voted_for()
    {
        RaftCore voter = Core(term: 3, votedFor: "s2");
        voter.Step(new RequestVote("s2", "s1", 3, 0, 0, false));
        Assert.True(Single<RequestVoteResponse>(Drain(voter)).Granted);
    }

    [Fact]
    public void RequestVote_2_refuse_when_already_voted_for_another_candidate_in_this_term()
    {
        RaftCore voter = Core(term: 3, votedFor: "s3");
        voter.Step(new RequestVote("s2", "s1", 3, 10, 3, false));
        Assert.False(Single<RequestVoteResponse>(Drain(voter)).Granted);
        Assert.Equal("s3", voter.VotedFor);
    }

    [Fact]
    public void RequestVote_2_refuse_a_candidate_whose_last_entry_has_an_older_term()
    {
        RaftCore voter = Core(term: 3, logTerms: [1, 3]);
        voter.Step(new RequestVote("s2", "s1", 4, 5, 2, false)); // longer log, but older last term
        Assert.False(Single<RequestVoteResponse>(Drain(voter)).Granted);
        Assert.Equal(4, voter.Term); // the higher term is still adopted
        Assert.Null(voter.VotedFor);
    }

    [Fact]
    public void RequestVote_2_refuse_a_candidate_with_the_same_last_term_and_a_shorter_log()
    {
        RaftCore voter = Core(term: 3, logTerms: [1, 3, 3]);
        voter.Step(new RequestVote("s2", "s1", 4, 2, 3, false));
        Assert.False(Single<RequestVoteResponse>(Drain(voter)).Granted);
    }

    [Fact]
    public void RequestVote_the_vote_is_persisted_before_the_grant_is_sent()
    {
        RaftCore voter = Core(term: 1);
        voter.Step(new RequestVote("s2", "s1", 2, 0, 0, false));
        Ready ready = voter.TakeReady();
        // The grant and the hard state that records it leave in the same batch: the host persists before sending.
        Assert.Equal(new HardState(2, "s2"), ready.HardState);
        Assert.True(Assert.Single(ready.Messages.OfType<RequestVoteResponse>()).Granted);
    }

    // ---- AppendEntries RPC, receiver implementation -------------------------------------------

    [Fact]
    public void AppendEntries_1_reply_false_if_term_is_less_than_currentTerm()
    {
        RaftCore follower = Core(term: 5, logTerms: [1]);
        follower.Step(Append(4, 1, 1, [Entry(2, 4)], 2));
        var reply = Single<AppendEntriesResponse>(Drain(follower));
        Assert.False(reply.Success);
        Assert.Equal(5, reply.Term); // tells the stale leader the current term
        Assert.Equal(1, follower.LastIndex);
    }

    [Fact]
    public void AppendEntries_2_reply_false_if_log_has_no_entry_at_prevLogIndex()
    {
        RaftCore follower = Core(term: 2, logTerms: [1, 1]);
        follower.Step(Append(2, 5, 2, [Entry(6, 2)], 0));
        var reply = Single<AppendEntriesResponse>(Drain(follower));
        Assert.False(reply.Success);
        Assert.Equal(0, reply.ConflictTerm);
        Assert.Equal(3, reply.ConflictIndex); // "my log ends at 2"
        Assert.Equal(2, follower.LastIndex);
    }

    [Fact]
    public void AppendEntries_2_reply_false_if_the_entry_at_prevLogIndex_has_another_term()
    {
        RaftCore follower = Core(term: 4, logTerms: [1, 2, 2, 2]);
        follower.Step(Append(4, 4, 3, [Entry(5, 4)], 0));
        var reply = Single<AppendEntriesResponse>(Drain(follower));
        Assert.False(reply.Success);
        Assert.Equal(2, reply.ConflictTerm);
        Assert.Equal(2, reply.ConflictIndex); // first index of term 2: the leader can skip the whole term
        Assert.Equal(new long[] { 1, 2, 2, 2 }, LogTerms(follower));
    }

    [Fact]
    public void AppendEntries_3_delete_a_conflicting_entry_and_all_that_follow_it()
    {
        RaftCore follower = Core(term: 3, logTerms: [1, 2, 2, 2]);
        follower.Step(Append(3, 1, 1, [Entry(2, 3)], 0));
        Assert.True(Single<AppendEntriesResponse>(Drain(follower)).Success);
        Assert.Equal(new long[] { 1, 3 }, LogTerms(follower));
    }

    [Fact]
    public void AppendEntries_4_append_new_entries_not_already_in_the_log()
    {
        RaftCore follower = Core(term: 2, logTerms: [1, 2]);
        follower.Step(Append(2, 1, 1, [Entry(2, 2), Entry(3, 2)], 0));
        Ready ready = follower.TakeReady();
        Assert.Equal(new long[] { 1, 2, 2 }, LogTerms(follower));
        Assert.Equal(3, Assert.Single(ready.EntriesToPersist).Index); // only the new entry is written
        follower.Advance(ready);
    }

    [Fact]
    public void AppendEntries_4_an_old_duplicate_message_does_not_truncate_later_entries()
    {
        RaftCore follower = Core(term: 2, logTerms: [1, 2, 2]);
        follower.Step(Append(2, 0, 0, [Entry(1, 1)], 0));
        var reply = Single<AppendEntriesResponse>(Drain(follower));
        Assert.True(reply.Success);
        Assert.Equal(1, reply.MatchIndex);
        Assert.Equal(3, follower.LastIndex);
    }

    [Fact]
    public void AppendEntries_5_if_leaderCommit_exceeds_commitIndex_set_it_to_min_of_leaderCommit_and_last_new_entry()
    {
        RaftCore follower = Core(term: 2, logTerms: [1, 1, 1, 1]);
        follower.Step(Append(2, 1, 1, [Entry(2, 1)], 10));
        Assert.Equal(2, follower.CommitIndex); // not 4: entries 3 and 4 were not in this message
        follower.Step(Append(2, 4, 1, [], 3));
        Assert.Equal(3, follower.CommitIndex);
    }

    [Fact]
    public void AppendEntries_entries_are_persisted_before_success_is_sent()
    {
        RaftCore follower = Core(term: 2);
        follower.Step(Append(2, 0, 0, [Entry(1, 2)], 0));
        Ready ready = follower.TakeReady();
        Assert.Single(ready.EntriesToPersist);
        Assert.True(Assert.Single(ready.Messages.OfType<AppendEntriesResponse>()).Success);
    }

    // ---- Rules for all servers -----------------------------------------------------------------

    [Fact]
    public void AllServers_if_commitIndex_exceeds_lastApplied_apply_entries_in_log_order()
    {
        RaftCore follower = Core(term: 2, logTerms: [1, 1, 2]);
        follower.Step(Append(2, 3, 2, [], 3));
        Ready ready = Flush(follower);
        Assert.Equal(new long[] { 1, 2, 3 }, ready.CommittedEntries.Select(e => e.Index));
        Assert.Equal(3, follower.AppliedIndex);
        Assert.Empty(Flush(follower).CommittedEntries); // each entry is handed out once
    }

    [Fact]
    public void AllServers_a_message_with_a_higher_term_makes_the_server_a_follower_in_that_term()
    {
        RaftCore leader = Elect(Core());
        Drain(leader);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term + 3, false, 0, 0, 0, 0));
        Assert.Equal(Role.Follower, leader.Role);
        Assert.Equal(4, leader.Term);
        Assert.Null(leader.VotedFor);
    }

    // ---- Followers ------------------------------------------------------------------------------

    [Fact]
    public void Followers_become_candidates_when_the_election_timeout_elapses_without_hearing_from_a_leader()
    {
        RaftCore follower = Core(term: 1);
        for (int i = 0; i < Options.ElectionTicks - 1; i++)
        {
            follower.Tick();
        }
        Assert.Equal(Role.Follower, follower.Role); // never before the minimum timeout
        TickUntil(follower, c => c.Role == Role.Candidate, Options.ElectionTicks + 1);
        Assert.Equal(2, follower.Term);
    }

    [Fact]
    public void Followers_do_not_time_out_while_the_leader_keeps_sending()
    {
        RaftCore follower = Core(term: 1);
        for (int i = 0; i < Options.ElectionTicks * 10; i++)
        {
            follower.Tick();
            follower.Step(Append(1, 0, 0, [], 0));
        }
        Assert.Equal(Role.Follower, follower.Role);
        Assert.Equal("s2", follower.LeaderId);
    }

    // ---- Candidates -----------------------------------------------------------------------------

    [Fact]
    public void Candidates_on_conversion_increment_currentTerm_vote_for_self_and_send_RequestVote_to_all_others()
    {
        RaftCore node = Core(term: 4, logTerms: [1, 4]);
        TickUntil(node, c => c.Role == Role.Candidate);
        Assert.Equal(5, node.Term);
        Assert.Equal("s1", node.VotedFor);
        List<RaftMessage> sent = Drain(node);
        Assert.Equal(new[] { "s2", "s3" }, sent.OfType<RequestVote>().Select(r => r.To).Order());
        Assert.All(sent.OfType<RequestVote>(), r => Assert.Equal((5L, 2L, 4L, false), (r.Term, r.LastLogIndex, r.LastLogTerm, r.PreVote)));
    }

    [Fact]
    public void Candidates_become_leader_on_votes_from_a_majority()
    {
        RaftCore node = Core(members: ["s1", "s2", "s3", "s4", "s5"]);
        TickUntil(node, c => c.Role == Role.Candidate);
        node.Step(new RequestVoteResponse("s2", "s1", node.Term, true, false));
        Assert.Equal(Role.Candidate, node.Role); // 2 of 5
        node.Step(new RequestVoteResponse("s2", "s1", node.Term, true, false));
        Assert.Equal(Role.Candidate, node.Role); // the same voter twice is still 2 of 5
        node.Step(new RequestVoteResponse("s4", "s1", node.Term, true, false));
        Assert.Equal(Role.Leader, node.Role);
    }

    [Fact]
    public void Candidates_become_followers_on_AppendEntries_from_a_new_leader()
    {
        RaftCore node = Core();
        TickUntil(node, c => c.Role == Role.Candidate);
        node.Step(Append(node.Term, 0, 0, [], 0, from: "s3"));
        Assert.Equal(Role.Follower, node.Role);
        Assert.Equal("s3", node.LeaderId);
        Assert.Equal(1, node.Term);
    }

    [Fact]
    public void Candidates_start_a_new_election_when_the_election_timeout_elapses()
    {
        RaftCore node = Core();
        TickUntil(node, c => c.Role == Role.Candidate);
        Drain(node);
        TickUntil(node, c => c.Term == 2);
        Assert.Equal(Role.Candidate, node.Role);
        Assert.Equal(2, Drain(node).OfType<RequestVote>().Count(r => r.Term == 2));
    }

    // ---- Leaders --------------------------------------------------------------------------------

    [Fact]
    public void Leaders_upon_election_append_a_noop_and_send_AppendEntries_to_each_server()
    {
        RaftCore leader = Elect(Core(logTerms: [1]));
        Assert.Equal(EntryKind.NoOp, leader.EntryAt(2).Kind);
        Assert.Equal(leader.Term, leader.EntryAt(2).Term);
        Assert.Equal(new[] { "s2", "s3" }, Drain(leader).OfType<AppendEntries>().Select(a => a.To).Order());
    }

    [Fact]
    public void Leaders_repeat_heartbeats_during_idle_periods()
    {
        RaftCore leader = Elect(Core());
        Drain(leader);
        for (int i = 0; i < Options.HeartbeatTicks; i++)
        {
            leader.Tick();
        }
        List<AppendEntries> beats = Drain(leader).OfType<AppendEntries>().ToList();
        Assert.Equal(2, beats.Count);
        Assert.All(beats, b => Assert.Empty(b.Entries));
    }

    [Fact]
    public void Leaders_append_a_client_command_and_send_it_from_nextIndex()
    {
        RaftCore leader = Elect(Core());
        Drain(leader);
        foreach (string follower in new[] { "s2", "s3" })
        {
            leader.Step(new AppendEntriesResponse(follower, "s1", leader.Term, true, 1, 0, 0, 0));
        }
        Drain(leader);
        ProposeResult result = leader.Propose([42]);
        Assert.True(result.Accepted);
        Assert.Equal(2, result.Index);
        List<AppendEntries> appends = Drain(leader).OfType<AppendEntries>().ToList();
        Assert.Equal(2, appends.Count);
        Assert.All(appends, a => Assert.Equal((1L, 2L), (a.PrevLogIndex, Assert.Single(a.Entries).Index)));
    }

    [Fact]
    public void Leaders_on_rejection_move_nextIndex_back_and_retry()
    {
        RaftCore leader = Elect(Core(logTerms: [1, 1, 1]));
        Drain(leader);
        // s2 holds only entry 1: its hint says "my log ends at 1".
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, false, 0, 3, 0, 2));
        AppendEntries retry = Single<AppendEntries>(Drain(leader));
        Assert.Equal(("s2", 1L), (retry.To, retry.PrevLogIndex));
        Assert.Equal(new long[] { 2, 3, 4 }, retry.Entries.Select(e => e.Index));
    }

    [Fact]
    public void Leaders_commit_an_entry_of_the_current_term_once_a_majority_stores_it()
    {
        RaftCore leader = Elect(Core());
        Drain(leader);
        Assert.Equal(0, leader.CommitIndex);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, 1, 0, 0, 0));
        Assert.Equal(1, leader.CommitIndex);
    }

    [Fact]
    public void Leaders_never_commit_an_entry_of_an_earlier_term_by_counting_replicas()
    {
        RaftCore leader = Elect(Core(term: 2, logTerms: [2])); // leader of term 3, entry 1 from term 2, no-op at 2
        Drain(leader);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, 1, 0, 0, 0));
        Assert.Equal(0, leader.CommitIndex); // entry 1 is on a majority, but it is not of term 3
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, 2, 0, 0, 0));
        Assert.Equal(2, leader.CommitIndex); // the no-op commits, and entry 1 with it
    }

    [Fact]
    public void Leaders_count_their_own_entries_only_once_they_are_durable()
    {
        RaftCore leader = Elect(Core());
        Ready ready = leader.TakeReady(); // the no-op, not yet persisted
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, 1, 0, 0, 0));
        leader.Step(new AppendEntriesResponse("s3", "s1", leader.Term, true, 1, 0, 0, 0));
        Assert.Equal(1, leader.CommitIndex); // two followers are a majority without the leader
        RaftCore single = Core(members: ["s1"]);
        TickUntil(single, c => c.Role == Role.Leader);
        Ready own = single.TakeReady();
        Assert.Equal(0, single.CommitIndex); // alone, it must wait for its own write
        single.Advance(own);
        Assert.Equal(1, single.CommitIndex);
        leader.Advance(ready);
    }

    [Fact]
    public void A_proposal_on_a_non_leader_is_refused_with_the_known_leader()
    {
        RaftCore follower = Core(term: 2);
        follower.Step(Append(2, 0, 0, [], 0, from: "s3"));
        ProposeResult result = follower.Propose([1]);
        Assert.False(result.Accepted);
        Assert.Equal("s3", result.LeaderHint);
        Assert.Equal(0, follower.LastIndex);
    }

    // ---- PreVote and CheckQuorum (dissertation 9.6) ---------------------------------------------

    [Fact]
    public void PreVote_a_node_that_cannot_win_does_not_raise_any_term()
    {
        RaftOptions options = Options with { PreVote = true };
        RaftCore candidate = Core(term: 3, options: options);
        TickUntil(candidate, c => c.Role == Role.PreCandidate);
        Assert.Equal(3, candidate.Term);
        RequestVote probe = Drain(candidate).OfType<RequestVote>().First();
        Assert.True(probe.PreVote);
        Assert.Equal(4, probe.Term);

        RaftCore voter = Core(id: "s2", term: 3, logTerms: [3], options: options); // a longer log: refuses
        voter.Step(probe with { To = "s2" });
        var reply = Single<RequestVoteResponse>(Drain(voter));
        Assert.False(reply.Granted);
        Assert.Equal(3, voter.Term);
        Assert.Null(voter.VotedFor);
        candidate.Step(reply with { To = "s1" });
        candidate.Step(reply with { From = "s3", To = "s1" });
        Assert.Equal(Role.Follower, candidate.Role);
        Assert.Equal(3, candidate.Term);
    }

    [Fact]
    public void An_operator_counts_pre_vote_rounds_and_elections_separately_and_a_single_server_counts_its_own()
    {
        // A server cut off from the others keeps asking for pre-votes; it never starts a real election (no new term).
        RaftCore isolated = Core(term: 3, options: Options with { PreVote = true });
        for (int round = 1; round <= 3; round++)
        {
            TickUntil(isolated, c => c.PreVotesStarted == round);
            Drain(isolated);
        }
        Assert.Equal(0, isolated.ElectionsStarted);
        Assert.Equal(3, isolated.Term);

        // Alone in its cluster it wins at once: the pre-vote and the election both happen within one tick.
        RaftCore single = Core(members: ["s1"], options: Options with { PreVote = true });
        TickUntil(single, c => c.Role == Role.Leader);
        Assert.Equal((1, 1), (single.PreVotesStarted, single.ElectionsStarted));
    }

    [Fact]
    public void CheckQuorum_a_follower_that_recently_heard_from_its_leader_ignores_vote_requests()
    {
        RaftCore follower = Core(term: 2, options: Options with { CheckQuorum = true });
        follower.Step(Append(2, 0, 0, [], 0, from: "s2"));
        Drain(follower);
        follower.Step(new RequestVote("s3", "s1", 3, 10, 2, false));
        Assert.Empty(Drain(follower));
        Assert.Equal(2, follower.Term);
    }

    [Fact]
    public void CheckQuorum_a_leader_that_hears_from_no_majority_for_an_election_timeout_steps_down()
    {
        RaftCore leader = Elect(Core(options: Options with { CheckQuorum = true }));
        for (int i = 0; i < Options.ElectionTicks * 2; i++)
        {
            leader.Tick();
        }
        Assert.Equal(Role.Follower, leader.Role);
        Assert.Null(leader.LeaderId);
    }

    [Fact]
    public void Replication_streams_to_an_in_step_follower_up_to_the_inflight_limit()
    {
        RaftCore leader = Elect(Core(options: Options with { MaxEntriesPerMessage = 2, MaxInflightMessages = 3 }));
        Drain(leader);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, 1, 0, 0, 0));
        Drain(leader);
        for (int i = 0; i < 20; i++)
        {
            leader.Propose([(byte)i]);
        }
        List<AppendEntries> toS2 = Drain(leader).OfType<AppendEntries>().Where(a => a.To == "s2").ToList();
        Assert.Equal(3, toS2.Count); // the window is full: three batches of two
        Assert.All(toS2, a => Assert.Equal(2, a.Entries.Count));
        Assert.Equal(ReplicationState.Replicate, leader.Followers.Single(f => f.Id == "s2").State);
        leader.Step(new AppendEntriesResponse("s2", "s1", leader.Term, true, 3, 0, 0, 0));
        Assert.Single(Drain(leader).OfType<AppendEntries>(), a => a.To == "s2"); // one slot freed, one batch more
    }

    [Fact]
    public void A_long_backlog_of_committed_entries_is_handed_out_in_bounded_batches_and_a_vote_is_not_held_behind_it()
    {
        RaftCore follower = Core(term: 1, logTerms: [.. Enumerable.Repeat(1L, 50)], options: Options with { MaxCommittedEntriesPerReady = 10 });
        follower.Step(Append(1, 50, 1, [], commit: 50)); // a restarted follower learns that all 50 are committed
        Ready first = Flush(follower);
        Assert.Equal(10, first.CommittedEntries.Count);
        Assert.True(follower.HasOnlyApplyWork); // 40 to go: the host may take new inputs first

        follower.Step(new RequestVote("s3", "s1", 2, 50, 1, false, false));
        Assert.False(follower.HasOnlyApplyWork);
        Ready next = Flush(follower);
        Assert.True(Single<RequestVoteResponse>(next.AllMessages).Granted); // answered now, not after the backlog
        int applied = first.CommittedEntries.Count + next.CommittedEntries.Count;
        while (follower.HasReady)
        {
            Ready ready = Flush(follower);
            Assert.InRange(ready.CommittedEntries.Count, 0, 10);
            applied += ready.CommittedEntries.Count;
        }
        Assert.Equal(50, applied);
        Assert.Equal(50, follower.AppliedIndex);
    }
}
