using Raft.Engine.Membership;

namespace Raft.Engine.Consensus;

/// <summary>
/// Who may say what (issue 11). Raft's safety assumes every message comes from a server of the cluster; a message from
/// anyone else, or one whose term cannot be counted past, could raise every term for good or fork the log. Before the
/// rules for all servers run, a message is dropped (as the network might have), counted, and its sender reported once:
/// <list type="bullet">
/// <item>when its term is not positive or cannot be incremented (above <see cref="MaxTerm"/>);</item>
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
public sealed partial class RaftCore
{
    /// <summary>The largest term a server adopts: one more must still fit a <see cref="long"/>.</summary>
    public const long MaxTerm = long.MaxValue - 1;

    private const int MaxReportedSenders = 64;
    private readonly HashSet<string> _reportedSenders = new(StringComparer.Ordinal);

    /// <summary>Messages dropped by the sender rules since the core started.</summary>
    public long RefusedMessages { get; private set; }

    /// <summary>Whether <paramref name="message"/> may be processed at all; when not, it is counted and dropped.</summary>
    private bool AcceptSender(RaftMessage message)
    {
        string? reason = WhyRefused(message);
        if (reason is null)
        {
            return true;
        }
        RefusedMessages++;
        if (_reportedSenders.Count < MaxReportedSenders && _reportedSenders.Add(message.From))
        {
            _notices.Add(new MessageRefused(message.From, message.GetType().Name, reason));
        }
        return false;
    }

    private string? WhyRefused(RaftMessage message)
    {
        if (message.Term is < 1 or > MaxTerm)
        {
            return $"term {message.Term} is outside 1..{MaxTerm}";
        }
        ClusterConfiguration latest = Configuration, committed = CommittedConfiguration;
        if (!latest.Members.Any() && !committed.Members.Any())
        {
            return null; // waiting to be added: whoever leads will say
        }
        string from = message.From;
        switch (message)
        {
            case AppendEntries or InstallSnapshot:
                if (LeaderId != null && LeaderId != from && message.Term == Term)
                {
                    return $"{LeaderId} already leads term {Term}";
                }
                return message.Term > Term && !latest.IsVoter(from) && !committed.IsVoter(from)
                    ? $"{from} is not a voter of this server's configuration and may not raise its term {Term} to {message.Term}"
                    : null;
            case TimeoutNow:
                return LeaderId == from && message.Term == Term ? null : $"{from} is not the leader of term {message.Term} that this server knows";
            default:
                return latest.IsMember(from) || committed.IsMember(from) || from == LeaderId ? null : $"{from} is not a member of this server's configuration";
        }
    }
}
