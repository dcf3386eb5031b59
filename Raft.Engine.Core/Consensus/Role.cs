namespace Raft.Engine.Consensus;

/// <summary>A server's role; PreCandidate is the PreVote phase (dissertation 9.6) before a real candidacy.</summary>
public enum Role
{
    Follower,
    /// <summary>Asking for pre-votes; its term has not changed yet.</summary>
    PreCandidate,
    Candidate,
    Leader,
}
