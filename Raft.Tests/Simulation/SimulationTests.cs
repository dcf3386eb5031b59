using System.Collections.Concurrent;
using Raft.Engine.Consensus;
using Xunit.Abstractions;

namespace Raft.Tests.Simulation;

/// <summary>
/// Randomized, fault-heavy runs of 3, 5 and 7 servers, each from one seed, checked after every step.
/// Environment: RAFT_SIM_SEEDS (how many seeds, default 510), RAFT_SIM_TICKS (ticks per seed, default 2000),
/// RAFT_SIM_SEED (replay one seed), RAFT_SIM_FIRST_SEED (where the range starts, default 1).
/// </summary>
[Collection(CpuHeavyCollection.Name)]
[Trait("Speed", "Slow")]
public sealed class SimulationTests(ITestOutputHelper output)
{
    internal static int SizeForSeed(int seed) => (seed % 3) switch { 0 => 3, 1 => 5, _ => 7 };

    /// <summary>Small snapshots, often, in many chunks: compaction and InstallSnapshot happen in every run.</summary>
    internal static readonly RaftOptions SimulationOptions = new() { SnapshotThreshold = 40, EntriesKeptAfterSnapshot = 5, SnapshotChunkSize = 64 };

    /// <summary>One whole run: random faults and admin actions, then healing, liveness and the linearizability check.</summary>
    internal static SimCluster RunSeed(int seed, int ticks)
    {
        // Every fourth seed serves reads from the leader lease instead of a heartbeat round.
        RaftOptions options = seed % 4 == 0 ? SimulationOptions with { LeaseReads = true } : SimulationOptions;
        var cluster = new SimCluster(SizeForSeed(seed), seed, FaultProfile.Heavy, options, spares: 2);
        cluster.RunRandom(ticks);
        cluster.CheckLiveness(electionBound: 600, commands: 10, commitBound: 600);
        return cluster;
    }

    [Fact]
    public void Random_faults_never_violate_safety_and_the_healed_cluster_makes_progress()
    {
        int ticks = TestSettings.Int("RAFT_SIM_TICKS", 2000);
        int? single = Environment.GetEnvironmentVariable("RAFT_SIM_SEED") is { Length: > 0 } ? TestSettings.Int("RAFT_SIM_SEED", 0) : null;
        int first = single ?? TestSettings.Int("RAFT_SIM_FIRST_SEED", 1);
        int count = single.HasValue ? 1 : TestSettings.Int("RAFT_SIM_SEEDS", 510);

        var failures = new ConcurrentBag<(int Seed, string Message)>();
        long committed = 0, crashes = 0, messages = 0, leaders = 0, snapshots = 0, installs = 0, changes = 0, transfers = 0, operations = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Parallel.For(first, first + count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            try
            {
                SimCluster cluster = RunSeed(seed, ticks);
                Interlocked.Add(ref committed, cluster.Checker.CommittedCount);
                Interlocked.Add(ref crashes, cluster.Crashes);
                Interlocked.Add(ref messages, cluster.Network.Sent);
                Interlocked.Add(ref leaders, cluster.Checker.LeadersByTerm.Count);
                Interlocked.Add(ref snapshots, cluster.SnapshotsTaken);
                Interlocked.Add(ref installs, cluster.SnapshotsInstalled);
                Interlocked.Add(ref changes, cluster.MembershipChanges);
                Interlocked.Add(ref transfers, cluster.Transfers);
                Interlocked.Add(ref operations, cluster.History.Count);
            }
            catch (Exception e)
            {
                failures.Add((seed, $"{e.GetType().Name}: {e.Message}"));
            }
        });
        output.WriteLine($"{count} seeds from {first}, {ticks} ticks each, in {clock.Elapsed.TotalSeconds:F1} s: " +
            $"{committed} entries committed, {leaders} terms with a leader, {crashes} crashes, {messages} messages sent, " +
            $"{snapshots} snapshots taken, {installs} installed from a leader, {changes} membership changes, {transfers} transfers, " +
            $"{operations} client operations checked for linearizability");

        foreach ((int seed, string message) in failures.OrderBy(f => f.Seed).Take(10))
        {
            output.WriteLine($"seed {seed} FAILED: {message}   (replay: RAFT_SIM_SEED={seed} dotnet test --filter Simulation)");
        }
        if (!failures.IsEmpty)
        {
            (int seed, string message) = failures.MinBy(f => f.Seed);
            Assert.Fail($"{failures.Count} seed(s) failed; first: seed {seed}: {message}. Replay with RAFT_SIM_SEED={seed}.");
        }
        Assert.True(committed > count * 10, "the runs committed almost nothing: the fault profile is too harsh to test anything");
    }

    [Fact]
    public void A_seed_replays_exactly()
    {
        SimCluster a = RunSeed(42, 1500);
        SimCluster b = RunSeed(42, 1500);
        Assert.Equal(a.Describe(), b.Describe());
        Assert.Equal(a.Network.Sent, b.Network.Sent);
        Assert.Equal(a.Checker.CommittedCount, b.Checker.CommittedCount);
    }
}
