using Raft.Engine.Log;

namespace Raft.Engine.Consensus;

/// <summary>The durable part of a node's state besides the log: its term and the vote it cast in that term.</summary>
public readonly record struct HardState(long Term, string? VotedFor);

/// <summary>
/// The output of the core, handed to the host in one batch. The host must carry it out in this order:
/// 1. persist <see cref="HardState"/> (if set) and <see cref="EntriesToPersist"/> in one durable step
///    (entries replace any stored entries from the first one's index on);
/// 2. send <see cref="Messages"/> (they may depend on step 1: a vote, an acknowledgement);
/// 3. apply <see cref="CommittedEntries"/> in order;
/// 4. call <see cref="RaftCore.Advance"/> with this batch.
/// </summary>
public sealed record Ready(
    HardState? HardState,
    IReadOnlyList<LogEntry> EntriesToPersist,
    IReadOnlyList<RaftMessage> Messages,
    IReadOnlyList<LogEntry> CommittedEntries);

/// <summary>The result of offering a command to the core.</summary>
public readonly record struct ProposeResult(bool Accepted, long Index, long Term, string? LeaderHint)
{
    public static ProposeResult NotLeader(string? leader) => new(false, 0, 0, leader);
}
