using Raft.Engine.Consensus;
using Raft.Tests.Simulation;

namespace Raft.Tests.Consensus;

/// <summary>
/// What a host that sleeps between deadlines relies on: before the ticks a server says are due, ticking it changes
/// nothing anyone could see; on the last of them it does its work (a heartbeat, an election).
/// </summary>
public sealed class TicksUntilDueTests
{
    [Fact]
    public void A_leader_sends_nothing_before_its_due_tick_and_its_heartbeat_on_it()
    {
        var cluster = new SimCluster(3, seed: 61, FaultProfile.None);
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term, 300));
        string leader = cluster.Leader!.Id;
        int sent = 0;
        cluster.Delivering += m => sent += m.From == leader ? 1 : 0;
        for (int round = 0; round < 6; round++)
        {
            int due = cluster[leader].Up.TicksUntilDue;
            Assert.InRange(due, 1, new RaftOptions().HeartbeatTicks);
            sent = 0;
            for (int i = 1; i < due; i++)
            {
                cluster.Tick(leader); // only the leader's clock runs: the followers never time out
            }
            Assert.Equal(0, sent);
            cluster.Tick(leader);
            Assert.True(sent >= 2, $"round {round}: the heartbeat due after {due} ticks was not sent");
        }
    }

    [Fact]
    public void A_follower_campaigns_exactly_when_its_due_ticks_have_passed()
    {
        var cluster = new SimCluster(3, seed: 62, FaultProfile.None);
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term, 300));
        string follower = cluster.Ids.First(id => id != cluster.Leader!.Id);
        var preVotes = new List<RequestVote>();
        cluster.Delivering += m =>
        {
            if (m is RequestVote request && m.From == follower)
            {
                preVotes.Add(request);
            }
        };
        int due = cluster[follower].Up.TicksUntilDue;
        Assert.True(due > 1, $"a follower that just heard from its leader has {due} ticks to go");
        for (int i = 1; i < due; i++)
        {
            cluster.Tick(follower); // only its clock runs: no heartbeat resets it
        }
        Assert.Empty(preVotes);
        cluster.Tick(follower);
        Assert.Equal(2, preVotes.Count(v => v.PreVote)); // its campaign (which the others refuse: they hear from the leader)
    }
}
