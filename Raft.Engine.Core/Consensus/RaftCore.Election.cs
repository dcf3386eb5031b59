using Raft.Engine.Log;
using Raft.Engine.Quorum;

namespace Raft.Engine.Consensus;

/// <summary>Leader election: timers, PreVote, votes, CheckQuorum and becoming leader.</summary>
public sealed partial class RaftCore
{
    private void ResetElectionTimer()
    {
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        // Randomized in [min, 2 * min) so that split votes resolve (section 5.2).
        _randomizedElectionTimeout = _options.ElectionTicks + _random.Next(_options.ElectionTicks);
    }

    /// <summary>Followers and candidates: an election timeout without hearing from a leader starts an election.</summary>
    private void TickElectionTimer()
    {
        _electionElapsed++;
        if (_electionElapsed >= _randomizedElectionTimeout && Configuration.IsVoter(Id))
        {
            StartElection(preVote: _options.PreVote);
        }
    }

    private void TickLeader()
    {
        _heartbeatElapsed++;
        _electionElapsed++;
        TickTransfer();
        AdvanceCatchUp();
        if (Role != Role.Leader)
        {
            return;
        }
        if (_electionElapsed >= _options.ElectionTicks)
        {
            _electionElapsed = 0;
            if (_options.CheckQuorum && !_progress.TakeRecentlyActiveQuorum(Configuration, Id))
            {
                BecomeFollower(Term, null);
                return;
            }
        }
        if (_heartbeatElapsed >= _options.HeartbeatTicks)
        {
            _heartbeatElapsed = 0;
            BroadcastHeartbeat();
        }
    }

    /// <summary>
    /// Leadership transfer: the leader of this term sent TimeoutNow to the candidate, which then campaigns in the very
    /// next term. Only such a request may break the vote lease; one claiming a transfer into any other term is an
    /// ordinary vote request (a forged one could otherwise lift every term to the limit).
    /// </summary>
    private bool IsTransferOfThisTerm(RequestVote request) => request.Transfer && request.Term == Term + 1;

    /// <summary>
    /// CheckQuorum's rule: within the minimum election timeout of hearing from a leader, vote requests are ignored (a
    /// server cut off and back must not depose a live leader). Not the read lease (<see cref="Reads.LeaderLease"/>).
    /// </summary>
    private bool IgnoresVoteRequests() =>
        _options.CheckQuorum && ((LeaderId != null && _electionElapsed < _options.ElectionTicks)
            // With lease reads a restarted server does not know whose lease it may break: it waits a full timeout first.
            || (_options.LeaseReads && _ticks <= _options.ElectionTicks));

    /// <summary>
    /// Candidates (Figure 2): on conversion increment the term, vote for self, reset the timer, send RequestVote.
    /// With PreVote the same round is first run without changing the term; only a node that could win goes on.
    /// </summary>
    private void StartElection(bool preVote, bool transfer = false)
    {
        if (Term >= MaxTerm)
        {
            return; // no server would take a higher term (see SenderRules)
        }
        long campaignTerm;
        if (preVote)
        {
            Role = Role.PreCandidate;
            campaignTerm = Term + 1;
            PreVotesStarted++;
        }
        else
        {
            ElectionsStarted++;
            Role = Role.Candidate;
            Term++;
            VotedFor = Id;
            campaignTerm = Term;
        }
        LeaderId = null;
        ResetElectionTimer();
        _votes.Start(Id);
        if (TallyVotes())
        {
            return;
        }
        foreach (string voter in Configuration.Voters)
        {
            if (voter != Id)
            {
                Send(new RequestVote(Id, voter, campaignTerm, _log.LastIndex, _log.LastTerm, preVote, transfer));
            }
        }
    }

    /// <summary>
    /// RequestVote receiver (Figure 2), with the pre-vote variant that grants without remembering.
    /// A server answers whatever its own configuration says (dissertation 4.2.3): a learner that was promoted may not
    /// know it yet, and the cluster can need its vote. Whether a vote counts is the candidate's business: it counts
    /// only the voters of its configuration.
    /// </summary>
    private void HandleRequestVote(RequestVote request)
    {
        bool canVote = (
            VotedFor == request.From
            || (VotedFor == null && LeaderId == null)
            || (request.PreVote && request.Term > Term));
        bool logOk = !_rules.CheckCandidateLogUpToDate || _log.IsUpToDate(request.LastLogIndex, request.LastLogTerm);
        if (canVote && logOk)
        {
            Send(new RequestVoteResponse(Id, request.From, request.Term, true, request.PreVote));
            if (!request.PreVote)
            {
                VotedFor = request.From;
                ResetElectionTimer();
            }
        }
        else
        {
            Send(new RequestVoteResponse(Id, request.From, Term, false, request.PreVote, LeaderId));
        }
    }

    private void HandleVoteResponse(RequestVoteResponse response)
    {
        NoteNamedLeader(response);
        bool relevant = Role switch
        {
            Role.PreCandidate => response.PreVote,
            Role.Candidate => !response.PreVote && response.Term == Term,
            _ => false,
        };
        if (!relevant || !Configuration.IsVoter(response.From))
        {
            return;
        }
        _votes.Record(response.From, response.Granted);
        TallyVotes();
    }

    /// <summary>
    /// A voter that refused this server's vote named the leader it follows in this server's term: remember it, so that
    /// <see cref="SenderRules"/> takes that leader's AppendEntries even if this server does not know it as a voter (it
    /// missed the membership change that made it one). Only its first AppendEntries makes it this server's leader: until
    /// then this server knows neither the leader's commit index nor that it can reach it.
    /// </summary>
    private void NoteNamedLeader(RequestVoteResponse response)
    {
        if (response is { Granted: false, Leader: { } leader } && leader != Id && response.Term == Term && LeaderId == null
            && (Configuration.IsVoter(response.From) || CommittedConfiguration.IsVoter(response.From)))
        {
            _leaderNamedByVoter = (Term, leader);
        }
    }

    /// <summary>The leader a voter named for the current term (<see cref="NoteNamedLeader"/>), if any.</summary>
    private string? LeaderNamedByVoter => _leaderNamedByVoter is { } named && named.Term == Term ? named.Id : null;

    /// <summary>Acts on the votes so far: win (go on to the real election or become leader), lose, or keep waiting.</summary>
    private bool TallyVotes()
    {
        switch (_votes.Outcome(Configuration))
        {
            case VoteOutcome.Won when Role == Role.PreCandidate:
                StartElection(preVote: false);
                return true;
            case VoteOutcome.Won:
                BecomeLeader();
                return true;
            case VoteOutcome.Lost:
                BecomeFollower(Term, null);
                return true;
            default:
                return false;
        }
    }

    /// <summary>Leaders (Figure 2 and section 5.4.2): reset follower progress and append a no-op of the new term.</summary>
    private void BecomeLeader()
    {
        Role = Role.Leader;
        LeaderId = Id;
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        _progress.Clear();
        _reads.TakeAllAndReset(); // nothing waits: a candidate takes no reads; the lease starts anew
        _uncommittedBytes = _log.BytesOf(CommitIndex + 1, _log.LastIndex);
        OnConfigurationChanged();
        // Entries of earlier terms commit only through an entry of the current term; the no-op makes that happen now.
        AppendToLog(EntryKind.NoOp, []);
    }
}
