using Raft.Engine.Membership;

namespace Raft.Engine.Consensus;

/// <summary>
/// Who may say what. Raft's safety assumes every message comes from a server of the cluster; a message from anyone else,
/// or one whose term cannot be counted past, could raise every term for good or fork the log. Before the rules for all
/// servers run, a message is dropped (as the network might have), counted, and its sender reported once:
/// <list type="bullet">
/// <item>when its term is not positive, cannot be incremented (above <see cref="RaftCore.MaxTerm"/>), or is more than
/// <see cref="MaxTermStep"/> above this server's: no election raises terms that fast, and a forged term near the limit
/// would leave the cluster unable to elect anyone;</item>
/// <item>AppendEntries or InstallSnapshot in the term of the leader this server knows from anyone else: one leader
/// per term;</item>
/// <item>AppendEntries or InstallSnapshot from a server that is not a voter of this server's latest or committed
/// configuration, unless a voter of it named that server the leader of this server's term (the
/// <see cref="RequestVoteResponse.Leader"/> of a refused vote). A server that was down while a newcomer was added and
/// then elected learns the current term and its leader from the members it knows, and then takes that leader's
/// replication; an outsider cannot get itself named;</item>
/// <item>InstallSnapshot whose configuration does not have its sender as a voter: a leader only sends its own
/// committed state, of which it is a voter;</item>
/// <item>TimeoutNow from anyone but the leader this server knows, in its term;</item>
/// <item>anything else (votes, responses, read requests) from a server that is neither a member (voter or learner)
/// of those configurations nor the leader it follows: a learner whose promotion this server has not seen may already
/// campaign, and which votes count is decided by the candidate's own configuration.</item>
/// </list>
/// A server that belongs to no configuration yet (it waits to be added) takes AppendEntries and InstallSnapshot only from
/// the servers it was told to join from (<see cref="RaftOptions.JoinFrom"/>), or, told none, from any sender: then only
/// an authenticated transport keeps outsiders out.
/// </summary>
internal sealed class SenderRules
{
    private const int MaxReportedSenders = 64;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    /// <summary>Messages refused since the core started.</summary>
    public long Refused { get; private set; }

    /// <summary>Counts a refused message; returns a notice the first time a sender is refused (for at most 64 senders).</summary>
    public MessageRefused? Refuse(RaftMessage message, string reason)
    {
        Refused++;
        return _reported.Count < MaxReportedSenders && _reported.Add(message.From)
            ? new MessageRefused(message.From, message.GetType().Name, reason)
            : null;
    }

    /// <summary>
    /// How far one message may raise a term. Terms grow by one per election, so a server that slept through four
    /// billion of them is the only one this turns away; an outsider needs billions of accepted messages to reach the limit.
    /// </summary>
    public const long MaxTermStep = 1L << 32;

    /// <summary>
    /// Why <paramref name="message"/> must be dropped by a server in <paramref name="term"/>, or null.
    /// <paramref name="leaderId"/> is the leader of that term the server follows, or else the one a voter of its
    /// configuration named (or null).
    /// </summary>
    public static string? WhyRefused(RaftMessage message, long term, string? leaderId, ClusterConfiguration latest, ClusterConfiguration committed,
        IReadOnlySet<string> joinFrom)
    {
        if (message.Term is < 1 or > RaftCore.MaxTerm)
        {
            return $"term {message.Term} is outside 1..{RaftCore.MaxTerm}";
        }
        if (message.Term - term > MaxTermStep)
        {
            return $"term {message.Term} is more than {MaxTermStep} above this server's term {term}";
        }
        string from = message.From;
        if (message is InstallSnapshot install && !install.Metadata.Configuration.IsVoter(from))
        {
            return $"the snapshot's configuration {install.Metadata.Configuration} does not have its sender {from} as a voter";
        }
        bool waitingToJoin = !latest.Members.Any() && !committed.Members.Any();
        switch (message)
        {
            case AppendEntries or InstallSnapshot:
                if (leaderId != null && leaderId != from && message.Term == term)
                {
                    return $"{leaderId} already leads term {term}";
                }
                if (waitingToJoin)
                {
                    return joinFrom.Count == 0 || joinFrom.Contains(from) || (from == leaderId && message.Term == term)
                        ? null
                        : $"{from} is not one of the servers this server was told to join from ({string.Join(", ", joinFrom)})";
                }
                return latest.IsVoter(from) || committed.IsVoter(from) || (from == leaderId && message.Term == term)
                    ? null
                    : $"{from} is not a voter of this server's configuration, and no voter named it the leader of term {message.Term}";
            case TimeoutNow:
                return leaderId == from && message.Term == term ? null : $"{from} is not the leader of term {message.Term} that this server knows";
            default:
                return waitingToJoin || latest.IsMember(from) || committed.IsMember(from) || from == leaderId
                    ? null
                    : $"{from} is not a member of this server's configuration";
        }
    }
}
