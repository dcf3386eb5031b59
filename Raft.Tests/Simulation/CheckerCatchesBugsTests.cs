using Raft.Engine.Consensus;
using Xunit.Abstractions;

namespace Raft.Tests.Simulation;

/// <summary>
/// A checker that never fires proves nothing. Each test here switches off one Raft rule (a test-only switch in the
/// core) and shows that the simulation finds the resulting safety violation, while the same run with the rule on is clean.
/// </summary>
public sealed class CheckerCatchesBugsTests(ITestOutputHelper output)
{
    /// <summary>The paper's settings for Figure 8: no PreVote or CheckQuorum, one entry per message so replication can be cut mid-way.</summary>
    private static readonly RaftOptions PaperOptions = new() { PreVote = false, CheckQuorum = false, MaxEntriesPerMessage = 1 };

    /// <summary>
    /// Figure 8 of the Raft paper, played step by step on five servers. s1 replicates A (a term-1 entry) to s2,
    /// crashes; s5 wins term 2 with s3 and s4 and writes its own entry 2, crashes; s1 wins again and brings A to s3,
    /// so A is on a majority; s1 crashes; s5 can now win with s3 and s4 and overwrite A.
    /// Counting replicas of an old-term entry would have "committed" A; Raft must not.
    /// </summary>
    private static SimCluster PlayFigure8(RuleSwitches rules)
    {
        var cluster = new SimCluster(5, seed: 8, FaultProfile.None, PaperOptions, rules);
        cluster.ElectLeader("s1");
        cluster.DeliverDue();

        // (a) s1 replicates A only to s2, then crashes.
        foreach (string other in new[] { "s3", "s4", "s5" })
        {
            cluster.Network.Cut("s1", other);
        }
        cluster.Propose("s1", "A");
        cluster.DeliverDue();
        cluster.Crash("s1");
        cluster.Network.HealAll();

        // (b) s5 wins with votes from s3 and s4, persists its no-op at index 2, and crashes before sending it.
        cluster.ElectLeader("s5");
        cluster.Crash("s5");
        cluster.Network.DropInFlightFrom("s5");

        // (c) s1 restarts, wins a later term and replicates A to s3: A is now on s1, s2, s3.
        cluster.Restart("s1");
        cluster.ElectLeader("s1");
        cluster.Network.Cut("s1", "s4");
        cluster.DeliverUntil(() => cluster["s1"].Up.Followers.Single(f => f.Id == "s3").MatchIndex >= 2);
        cluster.Crash("s1");
        cluster.Network.DropInFlightFrom("s1");
        cluster.Network.HealAll();

        // (d) s5 restarts and wins with s3 and s4; its log has a later last term than theirs.
        cluster.Restart("s5");
        cluster.ElectLeader("s5");
        cluster.RunUntil(() => false, 200);
        return cluster;
    }

    [Fact]
    public void Figure8_with_the_current_term_commit_rule_is_safe()
    {
        SimCluster cluster = PlayFigure8(RuleSwitches.Safe);
        // A was never committed, so s5 may overwrite it: every live log now agrees with s5's.
        RaftCore s5 = cluster["s5"].Up;
        Assert.Equal(Role.Leader, s5.Role);
        foreach (string id in new[] { "s2", "s3", "s4" })
        {
            RaftCore follower = cluster[id].Up;
            Assert.Equal(s5.LastIndex, follower.LastIndex);
            Assert.Equal(s5.CommitIndex, follower.CommitIndex);
            Assert.Same(s5.EntryAt(2), follower.EntryAt(2));
        }
    }

    [Fact]
    public void Figure8_without_the_current_term_commit_rule_is_caught()
    {
        var rules = RuleSwitches.Safe with { CommitOnlyCurrentTermByCounting = false };
        InvariantViolation violation = Assert.Throws<InvariantViolation>(() => PlayFigure8(rules));
        output.WriteLine(violation.Message);
        Assert.Contains(violation.Property, new[] { "Leader Completeness", "State Machine Safety", "Committed entries are never removed" });
    }

    public static TheoryData<string> Mutations => new() { "commit-old-term-by-counting", "forget-vote-on-crash", "grant-vote-to-stale-log" };

    /// <summary>The random simulation, unaided, finds each switched-off rule within a bounded number of seeds.</summary>
    [Theory]
    [MemberData(nameof(Mutations))]
    public void The_random_simulation_finds_a_switched_off_rule(string mutation)
    {
        RuleSwitches rules = mutation switch
        {
            "commit-old-term-by-counting" => RuleSwitches.Safe with { CommitOnlyCurrentTermByCounting = false },
            "forget-vote-on-crash" => RuleSwitches.Safe with { PersistVote = false },
            _ => RuleSwitches.Safe with { CheckCandidateLogUpToDate = false },
        };
        FaultProfile faults = FaultProfile.Heavy with { CrashRatePerTick = 0.01, RestartRatePerTick = 0.2 };
        // Figure 8 needs a new leader to re-replicate an old entry part-way; the paper's settings make that frequent.
        RaftOptions? options = mutation == "commit-old-term-by-counting" ? PaperOptions : null;
        int maxSeeds = SimulationTests.EnvInt("RAFT_MUTATION_SEEDS", 2000);
        for (int seed = 1; seed <= maxSeeds; seed++)
        {
            try
            {
                var cluster = new SimCluster(SimulationTests.SizeForSeed(seed), seed, faults, options, rules);
                cluster.RunRandom(2000);
            }
            catch (InvariantViolation violation)
            {
                output.WriteLine($"{mutation}: seed {seed} found it: {violation.Message}");
                return;
            }
            catch (InvalidOperationException e) when (e.Message.Contains("overwrite committed", StringComparison.Ordinal))
            {
                output.WriteLine($"{mutation}: seed {seed} found it (the core's own guard): {e.Message}");
                return;
            }
        }
        Assert.Fail($"{maxSeeds} seeds did not expose {mutation}");
    }
}
