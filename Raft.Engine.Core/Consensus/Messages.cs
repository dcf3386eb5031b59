using Raft.Engine.Log;

namespace Raft.Engine.Consensus;

/// <summary>A message between two cores. Every message carries the sender's term (or, for PreVote, the term it would campaign in).</summary>
public abstract record RaftMessage(string From, string To, long Term);

/// <summary>
/// RequestVote, and with <see cref="PreVote"/> the pre-vote probe that does not change anyone's term (dissertation 9.6).
/// <see cref="Transfer"/> marks an election started by TimeoutNow: voters grant it even while they hear from a leader.
/// </summary>
public sealed record RequestVote(string From, string To, long Term, long LastLogIndex, long LastLogTerm, bool PreVote, bool Transfer = false)
    : RaftMessage(From, To, Term);

/// <summary>
/// A vote (or pre-vote) granted or refused in <paramref name="Term"/>. A refusal names the <see cref="Leader"/> the
/// responder follows in that term, if any: a server that missed a membership change learns from a voter it knows which
/// newly added leader it may take AppendEntries from (<see cref="SenderRules"/>).
/// </summary>
public sealed record RequestVoteResponse(string From, string To, long Term, bool Granted, bool PreVote, string? Leader = null)
    : RaftMessage(From, To, Term);

/// <summary>
/// AppendEntries; with no entries it is the leader's heartbeat. <see cref="Context"/> numbers heartbeat rounds so
/// that answers can confirm a ReadIndex; the follower echoes it.
/// </summary>
public sealed record AppendEntries(
    string From,
    string To,
    long Term,
    long PrevLogIndex,
    long PrevLogTerm,
    IReadOnlyList<LogEntry> Entries,
    long LeaderCommit,
    long Context = 0) : RaftMessage(From, To, Term)
{
    public long LastIndex => PrevLogIndex + Entries.Count;
}

/// <summary>
/// The answer to AppendEntries. On success <see cref="MatchIndex"/> is the last index known to match the leader.
/// On rejection <see cref="RejectedIndex"/> echoes the request's PrevLogIndex and the conflict hint lets the leader
/// skip a whole divergent term per round trip: <see cref="ConflictTerm"/> is the follower's term at that index
/// (0 when its log is too short) and <see cref="ConflictIndex"/> the first index it holds of that term
/// (or its last index + 1).
/// </summary>
public sealed record AppendEntriesResponse(
    string From,
    string To,
    long Term,
    bool Success,
    long MatchIndex,
    long RejectedIndex,
    long ConflictTerm,
    long ConflictIndex,
    long Context = 0) : RaftMessage(From, To, Term);

/// <summary>
/// One chunk of the leader's snapshot for a follower that needs entries the leader has compacted away.
/// Chunks are sent in order from <see cref="Offset"/>; <see cref="Done"/> marks the last.
/// </summary>
public sealed record InstallSnapshot(
    string From,
    string To,
    long Term,
    SnapshotMetadata Metadata,
    long Offset,
    byte[] Data,
    bool Done) : RaftMessage(From, To, Term);

/// <summary>
/// The follower's answer to a chunk: the offset it expects next (so a lost chunk is resent from there), and whether
/// the snapshot at <see cref="SnapshotIndex"/> is now installed (or was not needed).
/// </summary>
public sealed record InstallSnapshotResponse(string From, string To, long Term, long SnapshotIndex, long NextOffset, bool Done)
    : RaftMessage(From, To, Term);

/// <summary>Leadership transfer: the leader tells an up-to-date target to start an election at once.</summary>
public sealed record TimeoutNow(string From, string To, long Term) : RaftMessage(From, To, Term);

/// <summary>A follower asks the leader for a read index on behalf of a client read.</summary>
public sealed record ReadIndexRequest(string From, string To, long Term, long RequestId) : RaftMessage(From, To, Term);

/// <summary>The leader's answer: the read is safe once the follower has applied <see cref="ReadIndex"/>; 0 with Ok false means refused.</summary>
public sealed record ReadIndexResponse(string From, string To, long Term, long RequestId, long ReadIndex, bool Ok) : RaftMessage(From, To, Term);
