using Raft.Engine.Log;

namespace Raft.Engine.Consensus;

/// <summary>A message between two cores. Every message carries the sender's term (or, for PreVote, the term it would campaign in).</summary>
public abstract record RaftMessage(string From, string To, long Term);

/// <summary>RequestVote, and with <see cref="PreVote"/> the pre-vote probe that does not change anyone's term (dissertation 9.6).</summary>
public sealed record RequestVote(string From, string To, long Term, long LastLogIndex, long LastLogTerm, bool PreVote)
    : RaftMessage(From, To, Term);

public sealed record RequestVoteResponse(string From, string To, long Term, bool Granted, bool PreVote)
    : RaftMessage(From, To, Term);

/// <summary>AppendEntries; with no entries it is the leader's heartbeat.</summary>
public sealed record AppendEntries(
    string From,
    string To,
    long Term,
    long PrevLogIndex,
    long PrevLogTerm,
    IReadOnlyList<LogEntry> Entries,
    long LeaderCommit) : RaftMessage(From, To, Term)
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
    long ConflictIndex) : RaftMessage(From, To, Term);
