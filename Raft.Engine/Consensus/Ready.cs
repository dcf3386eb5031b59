using Raft.Engine.Log;

namespace Raft.Engine.Consensus;

/// <summary>The durable part of a node's state besides the log: its term and the vote it cast in that term.</summary>
public readonly record struct HardState(long Term, string? VotedFor);

/// <summary>
/// The output of the core, handed to the host in one batch. The host must carry it out in this order:
/// 1. if <see cref="SnapshotToInstall"/> is set, store it durably (it replaces the log up to its index);
/// 2. persist <see cref="HardState"/> (if set) and <see cref="EntriesToPersist"/> in one durable step
///    (entries replace any stored entries from the first one's index on);
/// 3. send <see cref="Messages"/> (they may depend on the steps above: a vote, an acknowledgement);
/// 4. restore the state machine from <see cref="SnapshotToInstall"/>, then apply <see cref="CommittedEntries"/> in order;
/// 5. answer <see cref="ReadStates"/> once the state machine has applied their index; act on <see cref="Notices"/>;
/// 6. call <see cref="RaftCore.Advance"/> with this batch.
/// </summary>
public sealed record Ready(
    HardState? HardState,
    IReadOnlyList<LogEntry> EntriesToPersist,
    IReadOnlyList<RaftMessage> Messages,
    IReadOnlyList<LogEntry> CommittedEntries,
    Snapshot? SnapshotToInstall = null,
    IReadOnlyList<ReadState>? ReadStates = null,
    IReadOnlyList<RaftNotice>? Notices = null);

/// <summary>
/// A linearizable read became safe (<see cref="Ok"/>): it may be served once the state machine has applied
/// <see cref="Index"/>. Not ok: this node cannot serve it (no leader, or leadership was lost); try <see cref="LeaderHint"/>.
/// </summary>
public readonly record struct ReadState(long RequestId, long Index, bool Ok, string? LeaderHint);

/// <summary>An outcome the core reports that the host cannot see from its state.</summary>
public abstract record RaftNotice;

/// <summary>AddServer gave up: the learner did not catch up. It stays a learner until removed or added again.</summary>
public sealed record CatchUpFailed(string ServerId, string Reason) : RaftNotice;

/// <summary>The target did not take over within an election timeout; the leader accepts proposals again.</summary>
public sealed record TransferAbandoned(string Target) : RaftNotice;

public enum ProposeRefusal
{
    None,
    NotLeader,
    /// <summary>A leadership transfer is under way: proposals would be lost with the old leader's term.</summary>
    TransferInProgress,
}

/// <summary>The result of offering a command to the core.</summary>
public readonly record struct ProposeResult(bool Accepted, long Index, long Term, string? LeaderHint, ProposeRefusal Refusal = ProposeRefusal.None)
{
    public static ProposeResult NotLeader(string? leader) => new(false, 0, 0, leader, ProposeRefusal.NotLeader);
}

public enum AdminStatus
{
    Accepted,
    NotLeader,
    /// <summary>Another membership change or a transfer is under way.</summary>
    InProgress,
    /// <summary>A new leader has not yet committed an entry of its own term; it will shortly (the host retries by itself).</summary>
    LeaderNotReady,
    UnknownServer,
    AlreadyMember,
    Invalid,
}

/// <summary>The immediate answer to a membership change or a leadership transfer.</summary>
public readonly record struct AdminResult(AdminStatus Status, long Index, string? LeaderHint, string Message)
{
    public bool Accepted => Status == AdminStatus.Accepted;
}
