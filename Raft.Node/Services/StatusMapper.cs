using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Node.Hosting;
using Raft.Protocol;

namespace Raft.Node.Services;

/// <summary>The node's status in its wire form (GetStatus, and the event stream's full state).</summary>
public static class StatusMapper
{
    public static NodeStatus ToProto(ClusterMember member)
    {
        RaftNodeStatus s = member.Node.Status;
        var status = new NodeStatus
        {
            Id = s.Id,
            Role = s.Role.ToString(),
            Term = s.Term,
            VotedFor = s.VotedFor ?? "",
            LeaderId = s.LeaderId ?? "",
            LeaderAddress = s.LeaderId is { } leader ? member.ClientAddressOf(leader) ?? "" : "",
            CommitIndex = s.CommitIndex,
            AppliedIndex = s.AppliedIndex,
            FirstIndex = s.FirstIndex,
            LastIndex = s.LastIndex,
            LastTerm = s.LastTerm,
            SnapshotIndex = s.SnapshotIndex,
            SnapshotTerm = s.SnapshotTerm,
            SnapshotBytes = s.SnapshotBytes,
            Faults = member.Faults.Current,
            FaultsEnabled = member.Faults.Enabled,
            TransferTarget = s.TransferTarget ?? "",
            CatchingUp = s.CatchingUp ?? "",
            ElectionElapsedTicks = s.ElectionElapsed,
            ElectionTimeoutTicks = s.ElectionTimeout,
            TickMs = member.Options.TickMs,
            MaxCommandBytes = member.Options.MaxCommandBytes,
            RefusedMessages = s.RefusedMessages,
            DroppedMessages = member.Node.DroppedMessages,
        };
        foreach (string id in s.Configuration.Members)
        {
            FollowerStatus progress = s.Followers.FirstOrDefault(f => f.Id == id);
            status.Members.Add(new Member
            {
                Id = id,
                Address = member.AddressOf(id) ?? "",
                Voter = s.Configuration.IsVoter(id),
                MatchIndex = id == s.Id ? s.LastIndex : progress.MatchIndex,
                NextIndex = id == s.Id ? s.LastIndex + 1 : progress.NextIndex,
                ReplicationState = id == s.Id ? "self" : s.Role == Role.Leader ? progress.State.ToString() : "",
                RecentlyActive = id == s.Id || progress.RecentActive,
            });
        }
        return status;
    }
}
