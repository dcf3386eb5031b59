namespace Raft.Client.Events;

/// <summary>
/// The event hub's address and names. A subscriber calls <see cref="GetState"/> for the full state, then applies the
/// <see cref="Changes"/> batches whose sequence numbers follow it; on <see cref="Reset"/> it calls GetState again.
/// <see cref="GetData"/> returns the node's key-value contents as applied (a stale read); <see cref="TraceMessages"/>
/// (operators only) adds every peer message to the stream.
/// </summary>
public static class HubContract
{
    public const string Path = "/hubs/raft";

    /// <summary>Sent to subscribers: a <see cref="ChangeBatch"/>.</summary>
    public const string Changes = "Changes";

    /// <summary>Sent to subscribers when changes were lost: call <see cref="GetState"/> again.</summary>
    public const string Reset = "Reset";

    public const string GetState = "GetState";
    public const string GetData = "GetData";
    public const string TraceMessages = "TraceMessages";
}

public sealed record MemberView(string Id, string Address, bool Voter, long MatchIndex, long NextIndex, string ReplicationState, bool RecentlyActive);

public sealed record FaultsView(bool Enabled, IReadOnlyList<string> CutPeers, bool Isolated, double DropRate, int MaxDelayMs);

public sealed record StatusView(
    string Id,
    string Role,
    long Term,
    string? VotedFor,
    string? LeaderId,
    long CommitIndex,
    long AppliedIndex,
    long FirstIndex,
    long LastIndex,
    long LastTerm,
    long SnapshotIndex,
    long SnapshotTerm,
    int SnapshotBytes,
    IReadOnlyList<MemberView> Members,
    FaultsView Faults,
    string? TransferTarget,
    string? CatchingUp,
    int ElectionElapsedTicks,
    int ElectionTimeoutTicks,
    int TickMs,
    int MaxCommandBytes = 0);

/// <summary>A log entry as observers see it: a one-line summary of its command.</summary>
public sealed record LogEntryView(long Index, long Term, string Kind, string Summary);

public sealed record FullState(long Seq, StatusView Status, IReadOnlyList<LogEntryView> LogTail);

/// <summary>
/// One change. Kinds: term, campaign (a pre-vote round or an election began), vote, role, leader, appended (Entries; FromIndex below the previous last index means the
/// log was truncated there first), commit, applied, snapshot-taken, snapshot-installed, configuration, faults, abandoned,
/// and, when traced, message-sent and message-received.
/// </summary>
public sealed record Change(
    long Seq,
    DateTimeOffset At,
    string Kind,
    string Text,
    long? Term = null,
    string? Role = null,
    string? LeaderId = null,
    long? Index = null,
    long? FromIndex = null,
    IReadOnlyList<LogEntryView>? Entries = null);

/// <summary>Changes coalesced over one interval, with the node's status at its end.</summary>
public sealed record ChangeBatch(long FirstSeq, long LastSeq, StatusView Status, IReadOnlyList<Change> Changes);
