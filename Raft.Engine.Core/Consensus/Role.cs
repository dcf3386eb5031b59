namespace Raft.Engine.Consensus;

public enum Role
{
    Follower,
    /// <summary>Asking for pre-votes; its term has not changed yet.</summary>
    PreCandidate,
    Candidate,
    Leader,
}
