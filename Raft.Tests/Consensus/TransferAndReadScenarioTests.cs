using Raft.Engine.Consensus;
using Raft.Engine.StateMachines;
using Raft.Tests.Simulation;

namespace Raft.Tests.Consensus;

/// <summary>Leadership transfer and linearizable reads (ReadIndex).</summary>
public sealed class TransferAndReadScenarioTests
{
    private static (SimCluster Cluster, string Leader) Running(int size = 3, int seed = 51)
    {
        var cluster = new SimCluster(size, seed, FaultProfile.None);
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term, 300));
        return (cluster, cluster.Leader!.Id);
    }

    [Fact]
    public void With_lease_reads_a_leader_answers_at_once_within_its_lease_and_needs_a_round_after_it()
    {
        var options = new RaftOptions { LeaseReads = true };
        var cluster = new SimCluster(3, seed: 52, FaultProfile.None, options);
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term, 300));
        cluster.RunUntil(() => false, options.HeartbeatTicks * 2); // a round of heartbeats answered by both followers
        string leader = cluster.Leader!.Id;
        int sent = 0;
        cluster.Delivering += m => sent += m.From == leader ? 1 : 0;

        cluster.Call(leader, core => { core.ReadIndex(1); return 0; });
        Assert.Contains(cluster.ReadStates, r => r.Server == leader && r.Read is { RequestId: 1, Ok: true });
        Assert.Equal(0, sent); // answered without a message

        // Cut off: once a majority has not answered for the lease (an election timeout less the drift margin), a read
        // waits for a round, which cannot succeed, instead of being answered from a lease that may have passed.
        foreach (string other in cluster.Ids.Where(id => id != leader))
        {
            cluster.Network.Cut(leader, other);
        }
        for (int i = 0; i < options.ElectionTicks - options.LeaseDriftMarginTicks; i++)
        {
            cluster.Tick(leader);
        }
        cluster.Call(leader, core => { core.ReadIndex(2); return 0; });
        Assert.DoesNotContain(cluster.ReadStates, r => r.Read.RequestId == 2 && r.Read.Ok);
    }

    [Fact]
    public void A_gap_in_the_clock_voids_the_lease_until_a_new_round_and_a_pause_ends_leadership_at_once()
    {
        // Found by an operator: a leader paused with SIGSTOP for 3 s served lease reads after resuming (the timer had
        // fired once, so its core believed no time had passed) while another leader had been elected. The host now
        // voids the lease when its clock is ahead of the core's ticks; the core must not serve a read from before the gap.
        var options = new RaftOptions { LeaseReads = true };
        var cluster = new SimCluster(3, seed: 52, FaultProfile.None, options);
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term, 300));
        cluster.RunUntil(() => false, options.HeartbeatTicks * 2);
        string leader = cluster.Leader!.Id;
        cluster.Call(leader, core => { core.ReadIndex(1); return 0; });
        Assert.Contains(cluster.ReadStates, r => r.Read is { RequestId: 1, Ok: true });

        // A gap shorter than the lease but longer than its drift margin: what was answered before it no longer counts.
        cluster.Call(leader, core => { GapOf(core, options.LeaseDriftMarginTicks + 2); core.ReadIndex(2); return 0; });
        Assert.DoesNotContain(cluster.ReadStates, r => r.Read.RequestId == 2);
        Assert.True(cluster.RunUntil(() => cluster.ReadStates.Any(r => r.Read is { RequestId: 2, Ok: true }), 20)); // confirmed by a new round
        cluster.Call(leader, core => { core.ReadIndex(3); return 0; });
        Assert.Contains(cluster.ReadStates, r => r.Read is { RequestId: 3, Ok: true }); // and the lease holds again

        // A pause of three election timeouts, delivered at once on resuming: no lease, and no leadership either.
        foreach (string other in cluster.Ids.Where(id => id != leader))
        {
            cluster.Network.Cut(leader, other);
        }
        cluster.Call(leader, core => { GapOf(core, 3 * options.ElectionTicks); core.ReadIndex(4); return 0; });
        Assert.NotEqual(Role.Leader, cluster[leader].Up.Role);
        Assert.DoesNotContain(cluster.ReadStates, r => r.Read is { RequestId: 4, Ok: true });
    }

    /// <summary>What the host does after its loop stalled: its clock ran ahead of the core's ticks, so the lease is voided.</summary>
    private static void GapOf(RaftCore core, int ticks)
    {
        core.VoidLease();
        for (int i = 0; i < ticks; i++)
        {
            core.Tick();
        }
    }

    [Fact]
    public void Transfer_to_a_lagging_follower_brings_it_up_to_date_first_and_refuses_proposals_meanwhile()
    {
        (SimCluster cluster, string leader) = Running();
        string target = cluster.Ids.First(id => id != leader);
        cluster.Network.Cut(leader, target);
        for (int i = 0; i < 20; i++)
        {
            cluster.Propose(leader, KvCommand.Put($"k{i}", "v").Encode());
        }
        cluster.RunUntil(() => false, 5);
        Assert.True(cluster[target].Up.LastIndex < cluster[leader].Up.LastIndex);
        cluster.Network.HealAll();

        Assert.True(cluster.Call(leader, core => core.TransferLeadership(target)).Accepted);
        Assert.Equal(ProposeRefusal.TransferInProgress, cluster.Propose(leader, KvCommand.Put("late", "x").Encode()).Refusal);
        Assert.True(cluster.RunUntil(() => cluster.Leader?.Id == target, 30), cluster.Describe());
        Assert.Equal(Role.Follower, cluster[leader].Up.Role);
        Assert.True(cluster.RunUntil(() => cluster[target].StateMachine.GetLocal("k19") == "v", 50)); // nothing was lost
    }

    [Fact]
    public void Asking_again_for_the_transfer_under_way_is_accepted_and_another_target_is_refused()
    {
        // A client that retries "make n2 leader" after an unanswered first try must not be told it failed: the dashboard
        // answered its own retry with "leadership is already being transferred to n2".
        (SimCluster cluster, string leader) = Running();
        string[] followers = [.. cluster.Ids.Where(id => id != leader)];
        cluster.Network.Cut(leader, followers[0]); // the target cannot catch up yet, so the transfer stays under way

        Assert.True(cluster.Call(leader, core => core.TransferLeadership(followers[0])).Accepted);
        AdminResult again = cluster.Call(leader, core => core.TransferLeadership(followers[0]));
        Assert.True(again.Accepted, again.Message);
        AdminResult other = cluster.Call(leader, core => core.TransferLeadership(followers[1]));
        Assert.Equal(AdminStatus.InProgress, other.Status);

        cluster.Network.HealAll();
        Assert.True(cluster.RunUntil(() => cluster.Leader?.Id == followers[0], 30), cluster.Describe());
    }

    [Fact]
    public void Transfer_wins_even_though_every_follower_heard_from_the_leader_recently()
    {
        (SimCluster cluster, string leader) = Running(size: 5);
        string target = cluster.Ids.Last(id => id != leader);
        long term = cluster[leader].Up.Term;
        Assert.True(cluster.Call(leader, core => core.TransferLeadership(target)).Accepted);
        Assert.True(cluster.RunUntil(() => cluster.Leader?.Id == target, 20));
        Assert.Equal(term + 1, cluster[target].Up.Term); // TimeoutNow skips PreVote and the leader lease
    }

    [Fact]
    public void A_transfer_whose_target_crashed_is_abandoned_after_an_election_timeout_and_proposals_resume()
    {
        (SimCluster cluster, string leader) = Running();
        string target = cluster.Ids.First(id => id != leader);
        cluster.Crash(target);
        Assert.True(cluster.Call(leader, core => core.TransferLeadership(target)).Accepted);
        Assert.False(cluster.Propose(leader, KvCommand.Put("a", "1").Encode()).Accepted);
        Assert.True(cluster.RunUntil(() => cluster.Notices.Any(n => n.Notice is TransferAbandoned), new RaftOptions().ElectionTicks + 5));
        Assert.Equal(Role.Leader, cluster[leader].Up.Role);
        Assert.Null(cluster[leader].Up.TransferTarget);
        Assert.True(cluster.Propose(leader, KvCommand.Put("a", "1").Encode()).Accepted);
    }

    [Fact]
    public void A_read_index_waits_for_a_majority_to_confirm_the_leader()
    {
        (SimCluster cluster, string leader) = Running();
        cluster.Propose(leader, KvCommand.Put("x", "1").Encode());
        cluster.DeliverDue();
        foreach (string other in cluster.Ids.Where(id => id != leader))
        {
            cluster.Network.Cut(leader, other);
        }
        cluster.Call(leader, core => { core.ReadIndex(7); return 0; });
        cluster.RunUntil(() => false, 3);
        Assert.DoesNotContain(cluster.ReadStates, r => r.Read.RequestId == 7); // no answer without a majority
        cluster.Network.HealAll();
        Assert.True(cluster.RunUntil(() => cluster.ReadStates.Any(r => r.Read.RequestId == 7), 20));
        ReadState read = cluster.ReadStates.Single(r => r.Read.RequestId == 7).Read;
        Assert.True(read.Ok);
        Assert.Equal(cluster[leader].Up.CommitIndex, read.Index);
    }

    [Fact]
    public void After_the_leader_is_partitioned_a_read_on_it_is_refused_and_the_new_leader_serves_the_new_value()
    {
        (SimCluster cluster, string old) = Running(size: 3);
        cluster.Propose(old, KvCommand.Put("x", "1").Encode());
        Assert.True(cluster.RunUntil(() => cluster.Servers.All(s => s.StateMachine.GetLocal("x") == "1"), 50));
        foreach (string other in cluster.Ids.Where(id => id != old))
        {
            cluster.Network.Cut(old, other);
        }
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Id != old && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term, 300));
        string current = cluster.Leader!.Id;
        cluster.Propose(current, KvCommand.Put("x", "2").Encode());
        cluster.RunUntil(() => false, 5);

        cluster.Call(old, core => { core.ReadIndex(1); return 0; }); // the old leader may still believe it leads
        cluster.Call(current, core => { core.ReadIndex(2); return 0; });
        string follower = cluster.Ids.First(id => id != old && id != current);
        cluster.Call(follower, core => { core.ReadIndex(3); return 0; }); // a follower asks its leader
        Assert.True(cluster.RunUntil(() => cluster.ReadStates.Count(r => r.Read.RequestId is 1 or 2 or 3) == 3, 100), cluster.Describe());

        ReadState stale = cluster.ReadStates.Single(r => r.Read.RequestId == 1).Read;
        Assert.False(stale.Ok); // refused (it stepped down), never served the old value
        foreach (long id in new long[] { 2, 3 })
        {
            (string server, ReadState read) = cluster.ReadStates.Single(r => r.Read.RequestId == id);
            Assert.True(read.Ok);
            Assert.True(cluster.RunUntil(() => cluster[server].Up.AppliedIndex >= read.Index, 20));
            Assert.Equal("2", cluster[server].StateMachine.GetLocal("x"));
        }
    }

    [Fact]
    public void A_new_leader_serves_reads_only_after_its_noop_commits()
    {
        (SimCluster cluster, string leader) = Running();
        cluster.Crash(leader);
        string next = cluster.ElectAnyLeader().Id;
        string other = cluster.Ids.First(id => id != leader && id != next);
        cluster.Network.Cut(next, other); // its no-op cannot commit
        cluster.Call(next, core => { core.ReadIndex(9); return 0; });
        cluster.RunUntil(() => false, 10);
        Assert.DoesNotContain(cluster.ReadStates, r => r.Read.RequestId == 9);

        cluster.Network.HealAll();
        Assert.True(cluster.RunUntil(() => cluster.ReadStates.Any(r => r.Read.RequestId == 9), 30), cluster.Describe());
        ReadState read = cluster.ReadStates.Single(r => r.Read.RequestId == 9).Read;
        Assert.True(read.Ok);
        Assert.Equal(cluster[next].Up.Term, cluster[next].Up.TermAt(read.Index)); // at or past its own no-op
    }
}
