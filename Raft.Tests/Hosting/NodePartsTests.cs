using Microsoft.Extensions.Time.Testing;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.Log;
using Raft.Engine.Membership;

namespace Raft.Tests.Hosting;

/// <summary>
/// The parts a <see cref="RaftNode"/> keeps its callers in, each on its own and on a fake clock: what a caller is told,
/// and when. The node tests show them together over real loops.
/// </summary>
public sealed class NodePartsTests
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan AskAgainEvery = TimeSpan.FromMilliseconds(500);

    private readonly FakeTimeProvider _time = new();
    private readonly DeferredAnswers _answers = new();

    // ---- reads ------------------------------------------------------------------------------

    private ReadWaiters Reads() => new("n2", _time, ReadTimeout, AskAgainEvery, _answers);

    [Fact]
    public void A_read_without_an_index_asks_again_each_interval_and_fails_at_its_deadline_naming_the_leader()
    {
        ReadWaiters reads = Reads();
        var read = new TaskCompletionSource();
        long id = reads.Begin(read);

        _time.Advance(AskAgainEvery - TimeSpan.FromMilliseconds(1));
        Assert.Empty(reads.DueToAskAgain());
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([id], reads.DueToAskAgain());
        Assert.Empty(reads.DueToAskAgain()); // asked now: the next ask is an interval away

        _time.Advance(ReadTimeout - AskAgainEvery - TimeSpan.FromMilliseconds(1));
        reads.FailOverdue("n1");
        Assert.False(read.Task.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        reads.FailOverdue("n1");
        var refused = Assert.IsType<NotLeaderException>(read.Task.Exception?.InnerException);
        Assert.Equal("n1", refused.LeaderHint);
        Assert.Contains("no read index from n1 within 3000 ms", refused.Message);
        Assert.Empty(reads.DueToAskAgain()); // a failed read is not asked for again
    }

    [Fact]
    public void A_read_with_its_index_waits_for_the_apply_and_is_answered_only_when_answers_are_released()
    {
        ReadWaiters reads = Reads();
        var read = new TaskCompletionSource();
        long id = reads.Begin(read);
        reads.OnReadState(new ReadState(id, Index: 7, Ok: true, LeaderHint: "n1"));

        _time.Advance(ReadTimeout * 2);
        reads.FailOverdue("n1"); // its index came: the deadline was for the index, not the apply
        reads.CompleteUpTo(6);
        _answers.Release();
        Assert.False(read.Task.IsCompleted);

        reads.CompleteUpTo(7);
        Assert.False(read.Task.IsCompleted); // decided, not yet given: the node's status must show it first
        _answers.Release();
        Assert.True(read.Task.IsCompletedSuccessfully);
    }

    [Fact]
    public void A_read_no_leader_could_confirm_fails_at_once_with_the_hint_and_a_late_answer_changes_nothing()
    {
        ReadWaiters reads = Reads();
        var read = new TaskCompletionSource();
        long id = reads.Begin(read);
        reads.OnReadState(new ReadState(id, 0, Ok: false, LeaderHint: "n3"));
        Assert.Equal("n3", Assert.IsType<NotLeaderException>(read.Task.Exception?.InnerException).LeaderHint);

        reads.OnReadState(new ReadState(id, 5, Ok: true, LeaderHint: null)); // the answer to an earlier ask
        reads.CompleteUpTo(10);
        _answers.Release();
        Assert.Equal(0, reads.AwaitingApply);
    }

    [Fact]
    public void Stopping_fails_reads_in_both_waits()
    {
        ReadWaiters reads = Reads();
        var noIndex = new TaskCompletionSource();
        var notApplied = new TaskCompletionSource();
        reads.Begin(noIndex);
        reads.OnReadState(new ReadState(reads.Begin(notApplied), 9, true, null));
        reads.FailAll(new ObjectDisposedException("node"));
        Assert.IsType<ObjectDisposedException>(noIndex.Task.Exception?.InnerException);
        Assert.IsType<ObjectDisposedException>(notApplied.Task.Exception?.InnerException);
        Assert.Empty(reads.DueToAskAgain());
    }

    // ---- admin requests ---------------------------------------------------------------------

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    private AdminRequests Admin() => new("n1", _time, Patience, _answers);

    private static AdminResult Refused(AdminStatus status) => new(status, 0, null, $"refused: {status}");

    private static readonly AdminResult Accepted = new(AdminStatus.Accepted, 5, null, "");

    [Fact]
    public void A_change_a_new_leader_is_not_ready_for_is_handed_over_again_until_patience_runs_out()
    {
        AdminRequests admin = Admin();
        var add = new AdminInput(AdminKind.AddServer, "n4");
        admin.Answered(add, Refused(AdminStatus.LeaderNotReady), term: 2);

        _time.Advance(Patience - TimeSpan.FromMilliseconds(1));
        AdminInput again = Assert.Single(admin.TakeNotReady());
        Assert.Same(add, again);
        Assert.Empty(admin.TakeNotReady()); // taken: it waits no more until the core refuses it again
        admin.Answered(again, Refused(AdminStatus.LeaderNotReady), term: 2);
        Assert.False(add.Completion.Task.IsCompleted);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        admin.Answered(Assert.Single(admin.TakeNotReady()), Refused(AdminStatus.LeaderNotReady), term: 2);
        var failed = Assert.IsType<RaftAdminException>(add.Completion.Task.Exception?.InnerException);
        Assert.Equal(AdminStatus.LeaderNotReady, failed.Status);
        Assert.Empty(admin.TakeNotReady());
    }

    [Fact]
    public void Any_other_refusal_fails_at_once()
    {
        AdminRequests admin = Admin();
        var remove = new AdminInput(AdminKind.RemoveServer, "n9");
        admin.Answered(remove, Refused(AdminStatus.UnknownServer), term: 1);
        Assert.Equal(AdminStatus.UnknownServer, Assert.IsType<RaftAdminException>(remove.Completion.Task.Exception?.InnerException).Status);
        Assert.Equal(0, admin.Waiting);
    }

    [Fact]
    public void An_added_server_is_answered_when_it_is_a_committed_voter_and_fails_if_a_new_term_comes_first()
    {
        AdminRequests admin = Admin();
        var add = new AdminInput(AdminKind.AddServer, "n4");
        var addLater = new AdminInput(AdminKind.AddServer, "n5");
        admin.Answered(add, Accepted, term: 3);
        admin.Answered(addLater, Accepted, term: 3);

        admin.CompleteDecided(new ClusterConfiguration(["n1", "n2", "n3"], ["n4"]), term: 3, leaderId: "n1");
        _answers.Release();
        Assert.False(add.Completion.Task.IsCompleted); // a learner still catching up

        admin.CompleteDecided(new ClusterConfiguration(["n1", "n2", "n3", "n4"]), term: 3, leaderId: "n1");
        _answers.Release();
        Assert.True(add.Completion.Task.IsCompletedSuccessfully);

        admin.CompleteDecided(new ClusterConfiguration(["n1", "n2", "n3", "n4"]), term: 4, leaderId: "n2");
        var overtaken = Assert.IsType<RaftAdminException>(addLater.Completion.Task.Exception?.InnerException);
        Assert.Equal(AdminStatus.NotLeader, overtaken.Status);
        Assert.Equal("n2", overtaken.LeaderHint);
    }

    [Fact]
    public void A_transfer_is_answered_when_its_target_leads_and_fails_when_the_core_abandons_it()
    {
        AdminRequests admin = Admin();
        var transfer = new AdminInput(AdminKind.TransferLeadership, "n2");
        admin.Answered(transfer, Accepted, term: 3);
        admin.CompleteDecided(ClusterConfiguration.Empty, term: 4, leaderId: null); // an election under way: still waiting
        _answers.Release();
        Assert.False(transfer.Completion.Task.IsCompleted);
        admin.CompleteDecided(ClusterConfiguration.Empty, term: 4, leaderId: "n2");
        _answers.Release();
        Assert.True(transfer.Completion.Task.IsCompletedSuccessfully);

        var abandoned = new AdminInput(AdminKind.TransferLeadership, "n3");
        admin.Answered(abandoned, Accepted, term: 4);
        admin.Abandoned(new TransferAbandoned("n3"));
        var failed = Assert.IsType<RaftAdminException>(abandoned.Completion.Task.Exception?.InnerException);
        Assert.Equal(AdminStatus.Abandoned, failed.Status);
        Assert.Contains("n3 did not take over", failed.Message);
    }

    // ---- proposals --------------------------------------------------------------------------

    private ProposalWaiters Proposals() => new("n1", new WriteTracer("n1"), _answers);

    private static LogEntry Entry(long index, long term) => new(index, term, EntryKind.Command, []);

    [Fact]
    public async Task A_proposal_gets_the_state_machines_answer_only_if_its_own_entry_is_applied()
    {
        ProposalWaiters proposals = Proposals();
        var mine = new TaskCompletionSource<byte[]>();
        var overwritten = new TaskCompletionSource<byte[]>();
        proposals.Accepted(4, term: 2, mine);
        proposals.Accepted(5, term: 2, overwritten);

        proposals.Applied(Entry(4, 2), [42]);
        Assert.False(mine.Task.IsCompleted);
        _answers.Release();
        Assert.True(mine.Task.IsCompletedSuccessfully);
        Assert.Equal([42], await mine.Task);

        proposals.Applied(Entry(5, 3), [1]); // another leader's entry at index 5
        var dropped = Assert.IsType<ProposalDroppedException>(overwritten.Task.Exception?.InnerException);
        Assert.Equal((5, 2), (dropped.Index, dropped.Term));
    }

    [Fact]
    public void A_reused_index_and_a_snapshot_from_the_leader_drop_the_proposals_they_replace()
    {
        ProposalWaiters proposals = Proposals();
        var earlierTerm = new TaskCompletionSource<byte[]>();
        var reused = new TaskCompletionSource<byte[]>();
        var covered = new TaskCompletionSource<byte[]>();
        var beyond = new TaskCompletionSource<byte[]>();
        proposals.Accepted(6, term: 2, earlierTerm);
        proposals.Accepted(6, term: 4, reused); // led again in term 4 and appended at the same index
        Assert.IsType<ProposalDroppedException>(earlierTerm.Task.Exception?.InnerException);
        proposals.Accepted(7, term: 4, covered);
        proposals.Accepted(9, term: 4, beyond);

        proposals.DropUpTo(7);
        Assert.IsType<ProposalDroppedException>(reused.Task.Exception?.InnerException);
        Assert.IsType<ProposalDroppedException>(covered.Task.Exception?.InnerException);
        Assert.False(beyond.Task.IsCompleted);
        Assert.Equal(1, proposals.Count);
    }

    // ---- the inbox ---------------------------------------------------------------------------

    [Fact]
    public void The_inbox_refuses_requests_past_its_bound_drops_messages_past_theirs_and_makes_room_as_the_loop_takes()
    {
        var inbox = new NodeInbox("n1", maxRequests: 2, maxMessages: 1);
        inbox.Enqueue(new ReadInput());
        inbox.Enqueue(new ReadInput());
        var overloaded = Assert.Throws<NodeOverloadedException>(() => inbox.Enqueue(new ReadInput()));
        Assert.Contains("n1 already has 2 requests waiting", overloaded.Message);

        inbox.Receive(new RequestVote("n2", "n1", 1, 0, 0, false, false));
        inbox.Receive(new RequestVote("n3", "n1", 1, 0, 0, false, false));
        Assert.Equal(1, inbox.DroppedMessages);
        inbox.Tick(); // ticks are never bounded

        Assert.True(inbox.TryTake(out NodeInput? first));
        Assert.IsType<ReadInput>(first);
        inbox.Enqueue(new ReadInput()); // the taken one made room
        Assert.Throws<NodeOverloadedException>(() => inbox.Enqueue(new ReadInput()));
    }

    [Fact]
    public void A_closed_inbox_refuses_requests_and_fails_those_still_waiting()
    {
        var inbox = new NodeInbox("n1", maxRequests: 10, maxMessages: 10);
        var waiting = new AdminInput(AdminKind.TakeSnapshot, "");
        inbox.Enqueue(waiting);
        inbox.Close();
        Assert.Throws<ObjectDisposedException>(() => inbox.Enqueue(new ReadInput()));
        inbox.FailWaiting(new ObjectDisposedException("node"));
        Assert.IsType<ObjectDisposedException>(waiting.Completion.Task.Exception?.InnerException);
    }

    // ---- events ------------------------------------------------------------------------------

    [Fact]
    public void A_won_election_is_told_as_term_vote_role_and_leader_in_that_order()
    {
        RaftNodeStatus before = Status(Role.Follower, term: 1, votedFor: null, leader: "n2");
        RaftNodeStatus after = Status(Role.Leader, term: 2, votedFor: "n1", leader: "n1");
        DateTimeOffset now = _time.GetUtcNow();
        Assert.Equal<RaftEvent>(
            [new TermChanged("n1", now, 2), new VoteCast("n1", now, 2, "n1"), new RoleChanged("n1", now, Role.Leader, 2), new LeaderChanged("n1", now, "n1", 2)],
            Changes(before, after, now));
        Assert.Empty(Changes(after, after, now));
    }

    [Fact]
    public void A_campaign_is_told_with_when_the_node_last_heard_from_its_leader_before_its_term_moves()
    {
        DateTimeOffset heard = _time.GetUtcNow();
        RaftNodeStatus follower = Status(Role.Follower, term: 3, votedFor: null, leader: "n2") with { LastHeardFromLeader = heard };
        _time.Advance(TimeSpan.FromMilliseconds(190));
        DateTimeOffset now = _time.GetUtcNow();
        RaftNodeStatus preCandidate = Status(Role.PreCandidate, term: 3, votedFor: null, leader: null) with { PreVotesStarted = 1, LastHeardFromLeader = heard };
        RaftNodeStatus candidate = preCandidate with { Role = Role.Candidate, Term = 4, VotedFor = "n1", ElectionsStarted = 1 };

        List<RaftEvent> preVote = Changes(follower, preCandidate, now);
        Assert.Equal(new CampaignStarted("n1", now, 4, PreVote: true, heard), preVote[0]);
        Assert.DoesNotContain(preVote, e => e is TermChanged); // a pre-vote does not raise the term

        // Won in the same batch: both rounds are told, the pre-vote first, each naming the term it was for.
        List<CampaignStarted> both = [.. Changes(follower, candidate, now).OfType<CampaignStarted>()];
        Assert.Equal([(4L, true), (4L, false)], both.Select(c => (c.Term, c.PreVote)));
    }

    private static List<RaftEvent> Changes(RaftNodeStatus before, RaftNodeStatus after, DateTimeOffset now)
    {
        var raised = new List<RaftEvent>();
        StateChangeEvents.Raise(before, after, now, raised.Add);
        return raised;
    }

    private static RaftNodeStatus Status(Role role, long term, string? votedFor, string? leader) =>
        new("n1", role, term, votedFor, leader, 0, 0, 1, 0, 0, 0, 10, [], 0, 0, 0, ClusterConfiguration.Empty, ClusterConfiguration.Empty, null, null);
}
