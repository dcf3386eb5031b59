namespace Raft.Engine.Hosting;

/// <summary>The events that say how a node's state moved between two statuses, in the order observers expect.</summary>
internal static class StateChangeEvents
{
    public static IEnumerable<RaftEvent> Between(RaftNodeStatus before, RaftNodeStatus after, DateTimeOffset now)
    {
        string id = after.Id;
        if (after.Term != before.Term)
        {
            yield return new TermChanged(id, now, after.Term);
        }
        if (after.PreVotesStarted > before.PreVotesStarted)
        {
            yield return new CampaignStarted(id, now, before.Term + 1, PreVote: true, before.LastHeardFromLeader);
        }
        if (after.ElectionsStarted > before.ElectionsStarted)
        {
            yield return new CampaignStarted(id, now, after.Term, PreVote: false, before.LastHeardFromLeader);
        }
        if (after.VotedFor != null && (after.VotedFor != before.VotedFor || after.Term != before.Term))
        {
            yield return new VoteCast(id, now, after.Term, after.VotedFor);
        }
        if (after.Role != before.Role)
        {
            yield return new RoleChanged(id, now, after.Role, after.Term);
        }
        if (after.LeaderId != before.LeaderId)
        {
            yield return new LeaderChanged(id, now, after.LeaderId, after.Term);
        }
        if (after.CommitIndex != before.CommitIndex)
        {
            yield return new CommitAdvanced(id, now, after.CommitIndex);
        }
        if (!after.Configuration.Equals(before.Configuration) || !after.CommittedConfiguration.Equals(before.CommittedConfiguration))
        {
            yield return new ConfigurationChanged(id, now, after.Configuration, after.Configuration.Equals(after.CommittedConfiguration));
        }
    }
}
