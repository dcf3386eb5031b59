using Raft.Engine.Consensus;
using Xunit.Abstractions;

namespace Raft.Tests.Simulation;

/// <summary>
/// A checker that never fires proves nothing. Each test here switches off one Raft rule (a test-only switch in the
/// core) and shows that the simulation finds the resulting safety violation, while the same run with the rule on is clean.
/// </summary>
[Collection(CpuHeavyCollection.Name)]
[Trait("Speed", "Slow")]
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

    /// <summary>
    /// The membership bug published on the raft-dev list in 2015: a leader that changes the configuration before
    /// committing an entry of its own term. s1 (term 1) promotes s5 into C1 = {s1..s5}, which only s5 receives; s1
    /// crashes; s2 wins term 2 under C0 = {s1..s4} and at once removes s1, committing C2 = {s2,s3,s4} with s3 alone;
    /// s1 comes back and wins term 3 under C1 with s4 and s5. Two disjoint majorities: committed entries are lost.
    /// </summary>
    private static SimCluster Play2015MembershipBug(RuleSwitches rules, out AdminResult removal)
    {
        var cluster = new SimCluster(4, seed: 2015, FaultProfile.None, PaperOptions, rules, spares: 1);
        cluster.ElectLeader("s1");
        cluster.DeliverDue();
        // s5 joins as a learner; that configuration commits and every server learns so (s5 is unreachable for now).
        cluster.Network.Cut("s1", "s5");
        Assert.True(cluster.Call("s1", core => core.AddServer("s5")).Accepted);
        cluster.DeliverDue();
        for (int i = 0; i < 6; i++)
        {
            cluster.Tick("s1");
        }
        Assert.All(new[] { "s2", "s3", "s4" }, id => Assert.Equal(2, cluster[id].Up.CommitIndex));
        // s5 catches up and is promoted: C1 = {s1..s5} reaches s5 only.
        foreach (string other in new[] { "s2", "s3", "s4" })
        {
            cluster.Network.Cut("s1", other);
        }
        cluster.Network.Heal("s1", "s5");
        for (int i = 0; i < 40 && !cluster["s5"].Up.Configuration.IsVoter("s5"); i++)
        {
            cluster.Tick("s1");
        }
        Assert.True(cluster["s5"].Up.Configuration.IsVoter("s5"));
        cluster.Crash("s1");

        cluster.ElectLeader("s2"); // with votes from s3 and s4; from here on s2 reaches only s3
        cluster.Network.Cut("s2", "s4");
        cluster.Network.Cut("s2", "s5");
        removal = cluster.Call("s2", core => core.RemoveServer("s1"));
        cluster.DeliverDue();

        cluster.Network.HealAll();
        foreach (string other in new[] { "s2", "s3" })
        {
            cluster.Network.Cut("s1", other);
        }
        cluster.Network.Cut("s2", "s4");
        cluster.Network.Cut("s2", "s5");
        cluster.Restart("s1");
        cluster.ElectLeader("s1"); // with votes from s4 and s5: a majority of C1
        return cluster;
    }

    [Fact]
    public void Membership_2015_a_new_leader_may_not_change_the_configuration_before_committing_in_its_term()
    {
        SimCluster cluster = Play2015MembershipBug(RuleSwitches.Safe, out AdminResult removal);
        Assert.Equal(AdminStatus.LeaderNotReady, removal.Status); // refused: s2's no-op is not committed
        Assert.NotEqual(cluster["s2"].Up.Term, cluster["s2"].Up.TermAt(cluster["s2"].Up.CommitIndex)); // nothing of term 2 committed
        Assert.Equal(Role.Leader, cluster["s1"].Up.Role); // and s1 may lead: nothing it lacks was committed
    }

    [Fact]
    public void Membership_2015_without_the_fix_is_caught()
    {
        var rules = RuleSwitches.Safe with { ChangeOnlyAfterOwnTermCommit = false };
        InvariantViolation violation = Assert.Throws<InvariantViolation>(() => Play2015MembershipBug(rules, out _));
        output.WriteLine(violation.Message);
        Assert.Equal("Leader Completeness", violation.Property);
    }

    public static TheoryData<string> Mutations => new()
    {
        "commit-old-term-by-counting", "forget-vote-on-crash", "grant-vote-to-stale-log", "read-without-quorum",
        "acknowledge-before-persisting", "change-configuration-before-own-term-commit",
    };

    /// <summary>One switched-off rule: the switch, the run that exposes it, and the properties its loss breaks first.</summary>
    private sealed record Mutation(RuleSwitches Rules, FaultProfile Faults, RaftOptions? Options, string[] Properties, bool CheckLiveness = false, int Spares = 0);

    /// <summary>What the core's own guard against overwriting a committed entry reports as.</summary>
    private const string CommittedEntriesNeverRemoved = "Committed entries are never removed";

    private static Mutation Describe(string name)
    {
        // Crash-heavy, and without the client and admin traffic that these rules do not need.
        FaultProfile crashes = FaultProfile.Heavy with
        {
            CrashRatePerTick = 0.01, RestartRatePerTick = 0.2, ClientOperationRatePerTick = 0, MembershipChangeRatePerTick = 0, TransferRatePerTick = 0, SnapshotRatePerTick = 0,
        };
        return name switch
        {
            // Figure 8 needs a new leader to re-replicate an old entry part-way; the paper's settings make that frequent.
            "commit-old-term-by-counting" => new(RuleSwitches.Safe with { CommitOnlyCurrentTermByCounting = false }, crashes, PaperOptions,
                ["Leader Completeness", "State Machine Safety", CommittedEntriesNeverRemoved]),
            "forget-vote-on-crash" => new(RuleSwitches.Safe with { PersistVote = false }, crashes, null, ["Election Safety"]),
            "grant-vote-to-stale-log" => new(RuleSwitches.Safe with { CheckCandidateLogUpToDate = false }, crashes, null, ["Leader Completeness"]),
            "acknowledge-before-persisting" => new(RuleSwitches.Safe with { PromiseOnlyWhenDurable = false }, crashes, null,
                ["Commit needs a majority of voters", "Leader Completeness"]),
            // Stale reads need clients reading, and partitions that strand a leader; without CheckQuorum a partitioned
            // leader keeps believing it leads: only the read's heartbeat round saves it. Found by the linearizability check.
            "read-without-quorum" => new(RuleSwitches.Safe with { ConfirmReadsWithQuorum = false },
                FaultProfile.Heavy with { ClientOperationRatePerTick = 0.3, PartitionRatePerTick = 0.02 }, new RaftOptions { CheckQuorum = false },
                ["Linearizability"], CheckLiveness: true),
            // The 2015 bug needs a voter change stranded on a minority (the nemesis cuts the leader off from all but the
            // server whose vote changed), a new leader that changes the configuration at once, and lossy links.
            "change-configuration-before-own-term-commit" => new(RuleSwitches.Safe with { ChangeOnlyAfterOwnTermCommit = false },
                crashes with
                {
                    RestartRatePerTick = 0.1, MembershipChangeRatePerTick = 0.5, IsolateLeaderAfterVoterChangeRate = 1,
                    PartitionRatePerTick = 0.05, HealRatePerTick = 0.05, DropRate = 0.2,
                },
                null, ["Leader Completeness", "Election Safety", "State Machine Safety", "Log Matching", CommittedEntriesNeverRemoved], Spares: 2),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "unknown mutation"),
        };
    }

    /// <summary>Runs one seed; returns the property that failed, with its message, or null when every check held.</summary>
    private static (string Property, string Message)? Run(int seed, RuleSwitches rules, Mutation mutation)
    {
        try
        {
            var cluster = new SimCluster(SimulationTests.SizeForSeed(seed), seed, mutation.Faults, mutation.Options, rules, spares: mutation.Spares);
            cluster.RunRandom(2000);
            if (mutation.CheckLiveness)
            {
                cluster.CheckLiveness(electionBound: 600, commands: 1, commitBound: 600);
            }
            return null;
        }
        catch (InvariantViolation violation)
        {
            return (violation.Property, violation.Message);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("overwrite committed", StringComparison.Ordinal))
        {
            return (CommittedEntriesNeverRemoved, $"the core's own guard: {e.Message}");
        }
    }

    /// <summary>
    /// The random simulation, unaided, finds each switched-off rule within a bounded number of seeds, and counts only
    /// a failure of a property that rule protects (a liveness timeout or another property is not a catch). The control
    /// run replays the catching seed with the rule on and must pass every check.
    /// </summary>
    [Theory]
    [MemberData(nameof(Mutations))]
    public void The_random_simulation_finds_a_switched_off_rule(string name)
    {
        Mutation mutation = Describe(name);
        int maxSeeds = TestSettings.Int("RAFT_MUTATION_SEEDS", 2000);
        var otherFailures = new System.Collections.Concurrent.ConcurrentBag<string>();
        // Seeds run in parallel batches; the smallest catching seed of the first batch with one is reported, so the
        // answer does not depend on scheduling.
        int batch = 4 * Environment.ProcessorCount;
        for (int first = 1; first <= maxSeeds; first += batch)
        {
            var found = new System.Collections.Concurrent.ConcurrentBag<(int Seed, string Message)>();
            Parallel.For(first, Math.Min(first + batch, maxSeeds + 1), seed =>
            {
                if (Run(seed, mutation.Rules, mutation) is (string property, string message))
                {
                    if (mutation.Properties.Contains(property))
                    {
                        found.Add((seed, message));
                    }
                    else
                    {
                        otherFailures.Add($"seed {seed}: {message}");
                    }
                }
            });
            if (!found.IsEmpty)
            {
                (int seed, string message) = found.MinBy(f => f.Seed);
                output.WriteLine($"{name}: seed {seed} found it: {message}");
                foreach (string other in otherFailures.Take(3))
                {
                    output.WriteLine($"  not counted (another property): {other}");
                }
                (string Property, string Message)? control = Run(seed, RuleSwitches.Safe, mutation);
                Assert.True(control is null, $"control run of seed {seed} with the rule on failed: {control?.Message}");
                return;
            }
        }
        Assert.Fail($"{maxSeeds} seeds did not expose {name} as a failure of {string.Join(" or ", mutation.Properties)}; other failures: {string.Join("; ", otherFailures.Take(3))}");
    }
}
