using Raft.Engine.Membership;

namespace Raft.Engine.Consensus;

/// <summary>
/// Who may say what (issue 11). Raft's safety assumes every message comes from a server of the cluster; a message from
/// anyone else, or one whose term cannot be counted past, could raise every term for good or fork the log. Before the
/// rules for all servers run, a message is dropped (as the network might have), counted, and its sender reported once:
/// <list type="bullet">
/// <item>when its term is not positive or cannot be incremented (above <see cref="RaftCore.MaxTerm"/>);</item>
/// <item>AppendEntries or InstallSnapshot in the term of the leader this server knows from anyone else: one leader
/// per term;</item>
/// <item>AppendEntries or InstallSnapshot with a higher term from a server that is not a voter of this server's latest
/// or committed configuration. Not refused outright: a server that was down while the cluster changed may not know its
/// new leader (added, or promoted from learner, since); it learns the current term from the members it knows (their
/// answers to its pre-votes) and then takes that leader's replication in that term;</item>
/// <item>TimeoutNow from anyone but the leader this server knows, in its term;</item>
/// <item>anything else (votes, responses, read requests) from a server that is neither a member (voter or learner)
/// of those configurations nor the leader it follows: a learner whose promotion this server has not seen may already
/// campaign, and which votes count is decided by the candidate's own configuration.</item>
/// </list>
/// A server that belongs to no configuration yet (it waits to be added) takes any sender's messages: it cannot know
/// the cluster before the leader tells it. Authenticated transports close that gap.
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

    /// <summary>Why <paramref name="message"/> must be dropped by a server in <paramref name="term"/> that follows <paramref name="leaderId"/>, or null.</summary>
    public static string? WhyRefused(RaftMessage message, long term, string? leaderId, ClusterConfiguration latest, ClusterConfiguration committed)
    {
        if (message.Term is < 1 or > RaftCore.MaxTerm)
        {
            return $"term {message.Term} is outside 1..{RaftCore.MaxTerm}";
        }
        if (!latest.Members.Any() && !committed.Members.Any())
        {
            return null; // waiting to be added: whoever leads will say
        }
        string from = message.From;
        switch (message)
        {
            case AppendEntries or InstallSnapshot:
                if (leaderId != null && leaderId != from && message.Term == term)
                {
                    return $"{leaderId} already leads term {term}";
                }
                return message.Term > term && !latest.IsVoter(from) && !committed.IsVoter(from)
                    ? $"{from} is not a voter of this server's configuration and may not raise its term {term} to {message.Term}"
                    : null;
            case TimeoutNow:
                return leaderId == from && message.Term == term ? null : $"{from} is not the leader of term {message.Term} that this server knows";
            default:
                return latest.IsMember(from) || committed.IsMember(from) || from == leaderId ? null : $"{from} is not a member of this server's configuration";
        }
    }
}
