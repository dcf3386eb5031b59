using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Hosting;

/// <summary>Something that happened inside a node, published in order from the node's loop.</summary>
public abstract record RaftEvent(string NodeId, DateTimeOffset At);

public sealed record RoleChanged(string NodeId, DateTimeOffset At, Role Role, long Term) : RaftEvent(NodeId, At);

public sealed record TermChanged(string NodeId, DateTimeOffset At, long Term) : RaftEvent(NodeId, At);

public sealed record VoteCast(string NodeId, DateTimeOffset At, long Term, string VotedFor) : RaftEvent(NodeId, At);

public sealed record LeaderChanged(string NodeId, DateTimeOffset At, string? LeaderId, long Term) : RaftEvent(NodeId, At);

/// <summary>Entries made durable. When <see cref="FirstIndex"/> is not past the previous last index, the log was truncated there first.</summary>
public sealed record EntriesAppended(string NodeId, DateTimeOffset At, long FirstIndex, long LastIndex, long LastTerm) : RaftEvent(NodeId, At);

public sealed record CommitAdvanced(string NodeId, DateTimeOffset At, long CommitIndex) : RaftEvent(NodeId, At);

public sealed record EntryApplied(string NodeId, DateTimeOffset At, long Index, long Term, EntryKind Kind) : RaftEvent(NodeId, At);

/// <summary>A copy of a node's state, safe to read from any thread.</summary>
public sealed record RaftNodeStatus(
    string Id,
    Role Role,
    long Term,
    string? VotedFor,
    string? LeaderId,
    long CommitIndex,
    long AppliedIndex,
    long FirstIndex,
    long LastIndex,
    long LastTerm,
    int ElectionElapsed,
    int ElectionTimeout,
    IReadOnlyList<FollowerStatus> Followers)
{
    internal static RaftNodeStatus Of(RaftCore core) => new(
        core.Id, core.Role, core.Term, core.VotedFor, core.LeaderId, core.CommitIndex, core.AppliedIndex,
        core.FirstIndex, core.LastIndex, core.LastTerm, core.ElectionElapsed, core.ElectionTimeout, core.Followers);
}

/// <summary>The proposal reached a node that is not the leader; <see cref="LeaderHint"/> is the leader it knows, if any.</summary>
public sealed class NotLeaderException(string nodeId, string? leaderHint)
    : InvalidOperationException(leaderHint is null ? $"{nodeId} is not the leader and knows no leader" : $"{nodeId} is not the leader; try {leaderHint}")
{
    public string? LeaderHint { get; } = leaderHint;
}

/// <summary>The proposal was appended but then replaced by another leader's entry: it was not applied.</summary>
public sealed class ProposalDroppedException(long index, long term)
    : InvalidOperationException($"the entry proposed at index {index} in term {term} was overwritten by a new leader")
{
    public long Index { get; } = index;
    public long Term { get; } = term;
}
