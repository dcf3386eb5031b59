using Raft.Engine.Membership;

namespace Raft.Engine.Quorum;

/// <summary>Where an election (or pre-vote) stands after the votes counted so far.</summary>
public enum VoteOutcome
{
    /// <summary>Neither a majority has granted nor can one any longer.</summary>
    Pending,
    Won,
    Lost,
}

/// <summary>The votes of one campaign (pre-vote or real): who granted, who refused, and what that decides.</summary>
internal sealed class VoteTally
{
    private readonly Dictionary<string, bool> _votes = new(StringComparer.Ordinal);

    /// <summary>Starts a campaign: only the candidate's own vote is in.</summary>
    public void Start(string self)
    {
        _votes.Clear();
        _votes[self] = true;
    }

    /// <summary>Records a voter's answer; a later answer from the same voter replaces the earlier one.</summary>
    public void Record(string voter, bool granted) => _votes[voter] = granted;

    public IEnumerable<string> Granted => _votes.Where(v => v.Value).Select(v => v.Key);

    public VoteOutcome Outcome(ClusterConfiguration configuration)
    {
        if (Majority.IsReached(configuration.Voters, Granted))
        {
            return VoteOutcome.Won;
        }
        int refusals = _votes.Count(v => !v.Value);
        return Majority.IsStillPossible(configuration.Voters.Count, refusals) ? VoteOutcome.Pending : VoteOutcome.Lost;
    }
}
