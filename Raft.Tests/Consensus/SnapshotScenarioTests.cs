using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Tests.Simulation;

namespace Raft.Tests.Consensus;

/// <summary>Snapshots and InstallSnapshot in the situations where implementations have broken.</summary>
public sealed class SnapshotScenarioTests
{
    /// <summary>Snapshot every 20 entries, nothing kept behind it, 16-byte chunks: a lagging follower always needs many chunks.</summary>
    private static readonly RaftOptions Options = new() { SnapshotThreshold = 20, EntriesKeptAfterSnapshot = 0, SnapshotChunkSize = 16 };

    private static (SimCluster Cluster, string Leader) ClusterWithLaggingFollower(string lagging, int writes)
    {
        var cluster = new SimCluster(3, seed: 31, FaultProfile.None, Options);
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 300));
        string leader = cluster.Leader!.Id == lagging ? throw new InvalidOperationException("pick another follower") : cluster.Leader.Id;
        cluster.Crash(lagging);
        for (int i = 0; i < writes; i++)
        {
            cluster.Propose(leader, KvCommand.Put($"k{i % 7}", $"v{i}").Encode());
            cluster.TickAll();
        }
        Assert.True(cluster.RunUntil(() => cluster[leader].Up.AppliedIndex >= writes, 100));
        Assert.True(cluster[leader].Up.FirstIndex > 2, "the leader should have compacted its log");
        return (cluster, leader);
    }

    private static void AssertSameState(SimCluster cluster, string a, string b) =>
        Assert.Equal(cluster[a].StateMachine.Snapshot(), cluster[b].StateMachine.Snapshot());

    [Fact]
    public void A_large_state_is_snapshotted_again_only_after_as_many_bytes_of_log()
    {
        var options = new RaftOptions { SnapshotThreshold = 10, SnapshotLogRatio = 1.0 };
        var cluster = new SimCluster(3, seed: 5, FaultProfile.None, options);
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 300));
        string leader = cluster.Leader!.Id;
        void Put(string key, string value)
        {
            cluster.Propose(leader, KvCommand.Put(key, value).Encode());
            cluster.DeliverDue();
            cluster.TickAll();
        }
        for (int i = 0; i < 10; i++)
        {
            Put($"big{i}", new string('x', 1000)); // about 10 KB of state
        }
        RaftCore core = cluster[leader].Up;
        Assert.True(core.SnapshotIndex > 0, "the first snapshot comes after the threshold");
        long first = core.SnapshotIndex;
        int snapshotBytes = core.LatestSnapshot!.Data.Length;

        // Far more than the threshold of small writes, but fewer bytes than the snapshot: no new snapshot.
        for (int i = 0; i < 60; i++)
        {
            Put($"s{i}", "v");
        }
        Assert.Equal(first, core.SnapshotIndex);

        // Once the log since it holds the snapshot's size in bytes, the next one is taken.
        int more = 0;
        while (core.SnapshotIndex == first && more++ < 1000)
        {
            Put($"t{more}", "v");
        }
        Assert.NotEqual(first, core.SnapshotIndex);
        Assert.InRange(more * 30, snapshotBytes / 3, snapshotBytes * 3); // roughly a snapshot's worth of entries
    }

    [Fact]
    public void A_follower_behind_the_leaders_first_entry_is_sent_the_snapshot_in_chunks()
    {
        (SimCluster cluster, string leader) = ClusterWithLaggingFollower("s3", writes: 100);
        int chunks = 0;
        cluster.Delivering += m => chunks += m is InstallSnapshot { To: "s3" } ? 1 : 0;
        cluster.Restart("s3");
        Assert.True(cluster.RunUntil(() => cluster["s3"].Up.AppliedIndex == cluster[leader].Up.AppliedIndex, 300), cluster.Describe());
        Assert.True(cluster["s3"].Up.SnapshotIndex > 0);
        Assert.True(chunks > 3, $"expected several chunks, saw {chunks}");
        AssertSameState(cluster, leader, "s3");
        Assert.True(cluster.SnapshotsInstalled >= 1);
    }

    [Fact]
    public void A_snapshot_installs_while_new_entries_keep_arriving()
    {
        (SimCluster cluster, string leader) = ClusterWithLaggingFollower("s3", writes: 100);
        cluster.Restart("s3");
        for (int i = 0; i < 150; i++)
        {
            cluster.Propose(leader, KvCommand.Put($"live{i % 5}", $"w{i}").Encode());
            cluster.TickAll();
        }
        Assert.True(cluster.RunUntil(() => cluster["s3"].Up.AppliedIndex == cluster[leader].Up.AppliedIndex, 300), cluster.Describe());
        AssertSameState(cluster, leader, "s3");
    }

    [Fact]
    public void A_follower_that_crashes_half_way_through_an_install_starts_over_and_finishes()
    {
        (SimCluster cluster, string leader) = ClusterWithLaggingFollower("s3", writes: 100);
        int chunks = 0;
        cluster.Delivering += m => chunks += m is InstallSnapshot { To: "s3", Done: false } ? 1 : 0;
        cluster.Network.Faults = FaultProfile.None with { MaxDelayTicks = 2 }; // a chunk per round trip, not all at once
        cluster.Restart("s3");
        Assert.True(cluster.RunUntil(() => chunks >= 2, 100));
        Assert.Equal(0, cluster["s3"].Up.SnapshotIndex); // mid-install
        cluster.Crash("s3");
        cluster.RunUntil(() => false, 30);
        cluster.Restart("s3");
        Assert.True(cluster.RunUntil(() => cluster["s3"].Up.AppliedIndex == cluster[leader].Up.AppliedIndex, 300), cluster.Describe());
        AssertSameState(cluster, leader, "s3");
    }

    [Fact]
    public void A_lost_chunk_is_resent_and_the_install_resumes_where_it_stopped()
    {
        (SimCluster cluster, string leader) = ClusterWithLaggingFollower("s3", writes: 100);
        var offsets = new List<long>();
        cluster.Delivering += m =>
        {
            if (m is InstallSnapshot { To: "s3" } chunk)
            {
                offsets.Add(chunk.Offset);
            }
        };
        cluster.Network.Faults = FaultProfile.None with { DropRate = 0.3 };
        cluster.Restart("s3");
        Assert.True(cluster.RunUntil(() => cluster["s3"].Up.AppliedIndex == cluster[leader].Up.AppliedIndex, 2000), cluster.Describe());
        AssertSameState(cluster, leader, "s3");
        // Offsets only go forward within one snapshot: a lost chunk is resent from where the follower stopped, not from 0.
        Assert.True(offsets.Count > 3);
        Assert.DoesNotContain(offsets.Zip(offsets.Skip(1)), pair => pair.Second < pair.First && pair.Second != 0);
    }

    [Fact]
    public void A_restarted_server_recovers_from_its_snapshot_and_the_log_after_it()
    {
        (SimCluster cluster, string leader) = ClusterWithLaggingFollower("s3", writes: 60);
        long applied = cluster[leader].Up.AppliedIndex;
        var before = cluster[leader].StateMachine.Snapshot();
        cluster.Crash(leader);
        cluster.Restart(leader);
        RaftCore restarted = cluster[leader].Up;
        Assert.True(restarted.SnapshotIndex > 0);
        Assert.Equal(restarted.SnapshotIndex, restarted.CommitIndex); // what the snapshot holds is known committed
        Assert.True(cluster.RunUntil(() => cluster[leader].Up.AppliedIndex >= applied, 300));
        Assert.Equal(before, cluster[leader].StateMachine.Snapshot());
    }

    [Theory]
    [InlineData(new long[] { 1, 1, 1, 1, 1 }, true, 5)] // the log continues the snapshot: the durable suffix stays
    [InlineData(new long[] { 1, 1, 2, 2, 2 }, false, 3)] // diverged at the snapshot's index: the store drops everything
    [InlineData(new long[] { 1, 1 }, false, 3)] // shorter than the snapshot: nothing to keep
    public void The_core_tells_the_store_whether_the_log_after_an_installed_snapshot_stays(long[] followerTerms, bool keep, long lastIndexAfter)
    {
        RaftCore follower = CoreFixture.Core("s1", term: 1, logTerms: followerTerms);
        var metadata = new SnapshotMetadata(3, 1, new Engine.Membership.ClusterConfiguration(CoreFixture.Three));
        follower.Step(new InstallSnapshot("s2", "s1", 1, metadata, 0, [1, 2, 3], true));
        Ready ready = follower.TakeReady();
        Assert.NotNull(ready.SnapshotToInstall);
        Assert.Equal(keep, ready.KeepStoredEntriesAfterSnapshot);
        Assert.Equal(lastIndexAfter, follower.LastIndex);
        Assert.Empty(ready.EntriesToPersist); // what is kept is durable already; what is not was dropped with the log
    }
}
