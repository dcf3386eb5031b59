namespace Raft.Engine.Consensus;

/// <summary>
/// A message's way in: the sender rules (<see cref="SenderRules"/>), then Figure 2's rules for all servers (a higher
/// term makes a follower, a stale one is answered with the current term), then the handler of its kind.
/// </summary>
public sealed partial class RaftCore
{
    /// <summary>Feeds one message from a peer into the core. Rules for all servers (Figure 2) apply first.</summary>
    public void Step(RaftMessage message)
    {
        if (message.To != Id || message.From == Id)
        {
            return;
        }
        if (SenderRules.WhyRefused(message, Term, LeaderId ?? LeaderNamedByVoter, Configuration, CommittedConfiguration, _options.JoinFrom) is { } reason)
        {
            if (_senders.Refuse(message, reason) is { } notice)
            {
                _outbox.Add(notice);
            }
            return;
        }
        if (!ObserveTerm(message))
        {
            return;
        }
        switch (message)
        {
            case RequestVote request:
                HandleRequestVote(request);
                break;
            case RequestVoteResponse response:
                HandleVoteResponse(response);
                break;
            case AppendEntries append:
                HandleAppendEntries(append);
                break;
            case AppendEntriesResponse response:
                HandleAppendEntriesResponse(response);
                break;
            case InstallSnapshot install:
                HandleInstallSnapshot(install);
                break;
            case InstallSnapshotResponse response:
                HandleInstallSnapshotResponse(response);
                break;
            case TimeoutNow timeoutNow:
                HandleTimeoutNow(timeoutNow);
                break;
            case ReadIndexRequest request:
                HandleReadIndexRequest(request);
                break;
            case ReadIndexResponse response:
                HandleReadIndexResponse(response);
                break;
            default:
                throw new ArgumentException($"unknown message type {message.GetType().Name}", nameof(message));
        }
    }

    /// <summary>
    /// Figure 2, rules for all servers: a message with a higher term makes this server a follower in that term.
    /// Returns false when the message must be dropped. PreVote traffic and the leader lease are the exceptions.
    /// </summary>
    private bool ObserveTerm(RaftMessage message)
    {
        if (message.Term > Term)
        {
            switch (message)
            {
                case RequestVote request when IgnoresVoteRequests() && !IsTransferOfThisTerm(request):
                    // A live leader is known: a disruptive candidate is ignored (CheckQuorum). A pre-voter is told who
                    // leads: it may be a server that missed that leader's election or arrival.
                    if (request.PreVote)
                    {
                        Send(new RequestVoteResponse(Id, message.From, Term, false, true, LeaderId));
                    }
                    return false;
                case RequestVote { PreVote: true }:
                case RequestVoteResponse { PreVote: true, Granted: true }:
                    return true; // pre-votes never change terms
                default:
                    BecomeFollower(message.Term, message is AppendEntries or InstallSnapshot ? message.From : null);
                    return true;
            }
        }
        if (message.Term < Term)
        {
            // Reply false with the current term, so the stale sender learns it (with PreVote and CheckQuorum nothing
            // else would raise a stale leader's term). Stale responses are simply dropped.
            switch (message)
            {
                case AppendEntries:
                    Send(new AppendEntriesResponse(Id, message.From, Term, false, 0, 0, 0, 0));
                    break;
                case InstallSnapshot install:
                    Send(new InstallSnapshotResponse(Id, message.From, Term, install.Metadata.Index, 0, false));
                    break;
                case RequestVote request:
                    Send(new RequestVoteResponse(Id, message.From, Term, false, request.PreVote, LeaderId));
                    break;
                case ReadIndexRequest read:
                    Send(new ReadIndexResponse(Id, message.From, Term, read.RequestId, 0, false));
                    break;
            }
            return false;
        }
        return true;
    }
}
