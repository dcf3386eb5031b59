using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;

namespace Raft.Engine.Hosting;

/// <summary>Something that happened inside a node, published in order from the node's loop.</summary>
public abstract record RaftEvent(string NodeId, DateTimeOffset At);

/// <summary>The node became follower, pre-candidate, candidate or leader, in <paramref name="Term"/>.</summary>
public sealed record RoleChanged(string NodeId, DateTimeOffset At, Role Role, long Term) : RaftEvent(NodeId, At);

/// <summary>The node's current term changed (and was made durable).</summary>
public sealed record TermChanged(string NodeId, DateTimeOffset At, long Term) : RaftEvent(NodeId, At);

/// <summary>The node voted for <paramref name="VotedFor"/> in <paramref name="Term"/> (durable before the grant was sent).</summary>
public sealed record VoteCast(string NodeId, DateTimeOffset At, long Term, string VotedFor) : RaftEvent(NodeId, At);

/// <summary>The leader this node knows changed; null while it knows none.</summary>
public sealed record LeaderChanged(string NodeId, DateTimeOffset At, string? LeaderId, long Term) : RaftEvent(NodeId, At);

/// <summary>Entries made durable. When <see cref="FirstIndex"/> is not past the previous last index, the log was truncated there first.</summary>
public sealed record EntriesAppended(string NodeId, DateTimeOffset At, long FirstIndex, long LastIndex, long LastTerm) : RaftEvent(NodeId, At);

/// <summary>The node's commit index moved forward to <paramref name="CommitIndex"/>.</summary>
public sealed record CommitAdvanced(string NodeId, DateTimeOffset At, long CommitIndex) : RaftEvent(NodeId, At);

/// <summary>The entry at <paramref name="Index"/> was applied to the state machine.</summary>
public sealed record EntryApplied(string NodeId, DateTimeOffset At, long Index, long Term, EntryKind Kind) : RaftEvent(NodeId, At);

/// <summary>The node snapshotted its state machine up to <paramref name="Index"/> and compacted its log.</summary>
public sealed record SnapshotTaken(string NodeId, DateTimeOffset At, long Index, long Term, int Bytes) : RaftEvent(NodeId, At)
{
    /// <summary>From capturing the state machine until the snapshot was durable.</summary>
    public TimeSpan Duration { get; init; }
}

/// <summary>A snapshot received from the leader replaced the state machine (and the log up to its index).</summary>
public sealed record SnapshotInstalled(string NodeId, DateTimeOffset At, long Index, long Term, int Bytes, string? FromLeader) : RaftEvent(NodeId, At)
{
    /// <summary>Storing the received snapshot and restoring the state machine from it (not the transfer over the network).</summary>
    public TimeSpan Duration { get; init; }
}

/// <summary>
/// This node began a campaign: a pre-vote round (<paramref name="PreVote"/>, the term not yet raised) or an election in
/// <paramref name="Term"/>. <paramref name="LastHeardFromLeader"/> is when it last heard from the leader it knew: the
/// start of a failover, as this node saw it.
/// </summary>
public sealed record CampaignStarted(string NodeId, DateTimeOffset At, long Term, bool PreVote, DateTimeOffset? LastHeardFromLeader) : RaftEvent(NodeId, At);

/// <summary>The configuration in force changed (it takes effect when appended; <see cref="Committed"/> says if it is committed yet).</summary>
public sealed record ConfigurationChanged(string NodeId, DateTimeOffset At, ClusterConfiguration Configuration, bool Committed) : RaftEvent(NodeId, At);

/// <summary>A membership change or transfer the leader gave up on.</summary>
public sealed record OperationAbandoned(string NodeId, DateTimeOffset At, RaftNotice Notice) : RaftEvent(NodeId, At);

/// <summary>Something went wrong that the node handled but an operator should see (a refused snapshot, a follower that lost its log).</summary>
public sealed record ProblemDetected(string NodeId, DateTimeOffset At, RaftNotice Notice) : RaftEvent(NodeId, At);

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
    IReadOnlyList<FollowerStatus> Followers,
    long SnapshotIndex,
    long SnapshotTerm,
    int SnapshotBytes,
    ClusterConfiguration Configuration,
    ClusterConfiguration CommittedConfiguration,
    string? TransferTarget,
    string? CatchingUp)
{
    /// <summary>When this node last took an append or a snapshot from the leader it knew (null: not since it started).</summary>
    public DateTimeOffset? LastHeardFromLeader { get; init; }

    /// <summary>Peer messages the core dropped by its sender rules (see <see cref="RaftCore.RefusedMessages"/>).</summary>
    public long RefusedMessages { get; init; }

    /// <summary>Pre-vote rounds and elections this node started since it started (<see cref="RaftCore.ElectionsStarted"/>).</summary>
    public long PreVotesStarted { get; init; }

    /// <inheritdoc cref="RaftCore.ElectionsStarted"/>
    public long ElectionsStarted { get; init; }

    internal static RaftNodeStatus Of(RaftCore core, DateTimeOffset? lastHeardFromLeader = null) => new(
        core.Id, core.Role, core.Term, core.VotedFor, core.LeaderId, core.CommitIndex, core.AppliedIndex,
        core.FirstIndex, core.LastIndex, core.LastTerm, core.ElectionElapsed, core.ElectionTimeout, core.Followers,
        core.SnapshotIndex, core.LatestSnapshot?.Metadata.Term ?? 0, core.LatestSnapshot?.Data.Length ?? 0,
        core.Configuration, core.CommittedConfiguration, core.TransferTarget, core.CatchingUp)
    {
        LastHeardFromLeader = lastHeardFromLeader,
        RefusedMessages = core.RefusedMessages,
        PreVotesStarted = core.PreVotesStarted,
        ElectionsStarted = core.ElectionsStarted,
    };
}

/// <summary>The proposal reached a node that is not the leader; <see cref="LeaderHint"/> is the leader it knows, if any.</summary>
public sealed class NotLeaderException(string nodeId, string? leaderHint, string? reason = null)
    : InvalidOperationException(reason ?? (leaderHint is null ? $"{nodeId} is not the leader and knows no leader" : $"{nodeId} is not the leader; try {leaderHint}"))
{
    public string? LeaderHint { get; } = leaderHint;
}

/// <summary>An admin request (membership change, transfer) was refused or abandoned; <see cref="Status"/> says why.</summary>
public sealed class RaftAdminException(AdminStatus status, string message, string? leaderHint) : InvalidOperationException(message)
{
    public AdminStatus Status { get; } = status;
    public string? LeaderHint { get; } = leaderHint;
}

/// <summary>
/// The node has more work queued than it is allowed to hold (<see cref="RaftNodeOptions.MaxQueuedRequests"/>, or the
/// leader's uncommitted bytes): nothing was done; retry later or elsewhere.
/// </summary>
public sealed class NodeOverloadedException(string message) : InvalidOperationException(message);

/// <summary>The proposal was appended but then replaced by another leader's entry: it was not applied.</summary>
public sealed class ProposalDroppedException(long index, long term)
    : InvalidOperationException($"the entry proposed at index {index} in term {term} was overwritten by a new leader")
{
    public long Index { get; } = index;
    public long Term { get; } = term;
}
