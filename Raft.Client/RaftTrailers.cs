namespace Raft.Client;

/// <summary>
/// The trailers a node sets on a refusal, part of the wire contract beside raft.proto: a follower's FAILED_PRECONDITION
/// names the leader (<see cref="LeaderId"/>, <see cref="LeaderAddress"/>) so a client can follow it.
/// </summary>
public static class RaftTrailers
{
    public const string LeaderId = "raft-leader-id";
    public const string LeaderAddress = "raft-leader-address";

    /// <summary>Set on FAILED_PRECONDITION when the write's session expired: nothing was applied, a new session may resend it.</summary>
    public const string SessionExpired = "raft-session-expired";
}
