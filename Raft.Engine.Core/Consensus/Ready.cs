using Raft.Engine.Log;

namespace Raft.Engine.Consensus;

/// <summary>The durable part of a node's state besides the log: its term and the vote it cast in that term.</summary>
public readonly record struct HardState(long Term, string? VotedFor);

/// <summary>
/// The output of the core, handed to the host in one batch. <c>ReadyProcessor</c> (in Raft.Engine) carries it out in
/// the order the contract sets (messages that promise nothing, one durable write, applying, messages that promise what
/// was written, the rest of applying, reads, <see cref="RaftCore.Advance"/>); that order, with why each step is where
/// it is, is written once: docs/ARCHITECTURE.md, "Ready and Advance".
/// </summary>
public sealed record Ready(
    HardState? HardState,
    IReadOnlyList<LogEntry> EntriesToPersist,
    IReadOnlyList<RaftMessage> Messages,
    IReadOnlyList<LogEntry> CommittedEntries,
    Snapshot? SnapshotToInstall = null,
    IReadOnlyList<ReadState>? ReadStates = null,
    IReadOnlyList<RaftNotice>? Notices = null)
{
    /// <summary>
    /// Messages that promise nothing this batch persists, so they may leave before its write is durable: a leader's
    /// AppendEntries and InstallSnapshot chunks (dissertation 10.2.1). Empty when the batch carries a hard state.
    /// </summary>
    public IReadOnlyList<RaftMessage> MessagesBeforePersist { get; init; } = [];

    /// <summary>
    /// With <see cref="SnapshotToInstall"/>: whether the stored entries after its index continue it and stay; when not,
    /// the store drops every entry (this follower's log diverged from the leader's, or is not yet durable that far, and
    /// <see cref="EntriesToPersist"/> holds what remains). The core decides; the store does not check terms itself.
    /// </summary>
    public bool KeepStoredEntriesAfterSnapshot { get; init; }

    /// <summary>Every message of the batch, for a host that sends only after persisting (always safe).</summary>
    public IEnumerable<RaftMessage> AllMessages => MessagesBeforePersist.Concat(Messages);

    /// <summary>
    /// The committed entries that were durable before this batch (below its first entry to persist): they can be
    /// applied while the batch's own write is in flight. The rest wait for it.
    /// </summary>
    public int CommittedAlreadyDurable =>
        SnapshotToInstall != null ? 0
        : EntriesToPersist.Count == 0 ? CommittedEntries.Count
        : CommittedEntries.Count(e => e.Index < EntriesToPersist[0].Index);
}

/// <summary>
/// A linearizable read became safe (<see cref="Ok"/>): it may be served once the state machine has applied
/// <see cref="Index"/>. Not ok: this node cannot serve it (no leader, or leadership was lost); try <see cref="LeaderHint"/>.
/// </summary>
public readonly record struct ReadState(long RequestId, long Index, bool Ok, string? LeaderHint);

/// <summary>An outcome the core reports that the host cannot see from its state.</summary>
public abstract record RaftNotice;

/// <summary>
/// A snapshot received from <paramref name="From"/> was not a state the state machine can restore: it was dropped,
/// and the log, stored snapshot and state were left as they were.
/// </summary>
public sealed record SnapshotRefused(string From, long Index, string Reason) : RaftNotice;

/// <summary>
/// A follower's log ends before the index it had acknowledged (it lost its log tail: a disk that dropped writes, a
/// restored backup). The leader noticed it from the follower's rejection and repairs it from its real end.
/// </summary>
public sealed record FollowerLogLost(string Follower, long MatchIndex, long LastIndex) : RaftNotice;

/// <summary>
/// A message was dropped by the sender rules (not from a member, not from the leader of its term, or a term that
/// cannot be counted past); reported once per sender, every one is counted in <see cref="RaftCore.RefusedMessages"/>.
/// </summary>
public sealed record MessageRefused(string From, string Kind, string Reason) : RaftNotice;

/// <summary>AddServer gave up: the learner did not catch up. It stays a learner until removed or added again.</summary>
public sealed record CatchUpFailed(string ServerId, string Reason) : RaftNotice;

/// <summary>The target did not take over within an election timeout; the leader accepts proposals again.</summary>
public sealed record TransferAbandoned(string Target) : RaftNotice;

/// <summary>Why the core did not take a proposal.</summary>
public enum ProposeRefusal
{
    None,
    NotLeader,
    /// <summary>A leadership transfer is under way: proposals would be lost with the old leader's term.</summary>
    TransferInProgress,
    /// <summary>The leader's uncommitted entries already take <see cref="RaftOptions.MaxUncommittedBytes"/>: no majority keeps up.</summary>
    Overloaded,
}

/// <summary>The result of offering a command to the core.</summary>
public readonly record struct ProposeResult(bool Accepted, long Index, long Term, string? LeaderHint, ProposeRefusal Refusal = ProposeRefusal.None)
{
    public static ProposeResult NotLeader(string? leader) => new(false, 0, 0, leader, ProposeRefusal.NotLeader);
}

/// <summary>How the core answered a membership change, a transfer or a snapshot request.</summary>
public enum AdminStatus
{
    Accepted,
    NotLeader,
    /// <summary>Another membership change or a transfer is under way.</summary>
    InProgress,
    /// <summary>A new leader has not yet committed an entry of its own term; it will shortly (the host retries by itself).</summary>
    LeaderNotReady,
    /// <summary>The change was tried and given up (the learner never caught up, the target did not take over): retrying blindly will not help.</summary>
    Abandoned,
    UnknownServer,
    AlreadyMember,
    Invalid,
}

/// <summary>The immediate answer to a membership change or a leadership transfer.</summary>
public readonly record struct AdminResult(AdminStatus Status, long Index, string? LeaderHint, string Message)
{
    public bool Accepted => Status == AdminStatus.Accepted;
}
