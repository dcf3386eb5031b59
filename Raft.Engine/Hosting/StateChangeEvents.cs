namespace Raft.Engine.Hosting;

/// <summary>The events that say how a node's state moved between two statuses, in the order observers expect.</summary>
internal static class StateChangeEvents
{
    /// <summary>Raises each change (called on every pass of the loop: nothing is allocated when nothing changed).</summary>
    public static void Raise(RaftNodeStatus before, RaftNodeStatus after, DateTimeOffset now, Action<RaftEvent> raise)
    {
        string id = after.Id;
        if (after.Term != before.Term)
        {
            raise(new TermChanged(id, now, after.Term));
        }
        if (after.PreVotesStarted > before.PreVotesStarted)
        {
            raise(new CampaignStarted(id, now, before.Term + 1, PreVote: true, before.LastHeardFromLeader));
        }
        if (after.ElectionsStarted > before.ElectionsStarted)
        {
            raise(new CampaignStarted(id, now, after.Term, PreVote: false, before.LastHeardFromLeader));
        }
        if (after.VotedFor != null && (after.VotedFor != before.VotedFor || after.Term != before.Term))
        {
            raise(new VoteCast(id, now, after.Term, after.VotedFor));
        }
        if (after.Role != before.Role)
        {
            raise(new RoleChanged(id, now, after.Role, after.Term));
        }
        if (after.LeaderId != before.LeaderId)
        {
            raise(new LeaderChanged(id, now, after.LeaderId, after.Term));
        }
        if (after.CommitIndex != before.CommitIndex)
        {
            raise(new CommitAdvanced(id, now, after.CommitIndex));
        }
        if (!after.Configuration.Equals(before.Configuration) || !after.CommittedConfiguration.Equals(before.CommittedConfiguration))
        {
            raise(new ConfigurationChanged(id, now, after.Configuration, after.Configuration.Equals(after.CommittedConfiguration)));
        }
    }
}
