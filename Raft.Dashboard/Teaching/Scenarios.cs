namespace Raft.Dashboard.Teaching;

/// <summary>
/// The guided scenarios, each a few steps the page performs on the embedded cluster and explains. The numbers in
/// brackets are sections of the Raft paper and of Ongaro's dissertation.
/// </summary>
public static class Scenarios
{
    public static IReadOnlyList<Scenario> All { get; } =
    [
        LeaderElection(),
        LeaderCrash(),
        LogReplication(),
        PartitionedLeader(),
        DivergentFollower(),
        LeadershipTransfer(),
        Membership(),
        SnapshotCatchUp(),
    ];

    private static Scenario LeaderElection() => new("leader-election", "Leader election",
        "The leader crashes; watch, message by message, how the others elect a new one.",
        [
            new("A healthy cluster, paused",
                "Three servers: one leader (gold) and two followers (blue). The clock is paused: nothing moves until you say so. "
                + "The arc around each follower is its election timer: it fills while the follower hears nothing from a leader.",
                async c =>
                {
                    c.Roles["leader"] = await c.PauseUnderStableLeaderAsync();
                },
                "Press \"Step 1 tick\" a few times and watch the arcs."),
            new("Heartbeats",
                "The leader sends heartbeats: AppendEntries with no entries (grey). Each one that arrives resets the follower's timer, "
                + "so no follower starts an election while the leader is alive [paper 5.2].",
                c => c.StepUntilAsync(x => x.AnyInFlight("Heartbeat"), "a heartbeat in flight"),
                "Press \"Deliver 1 message\" to land one heartbeat and see that follower's arc empty."),
            new("The leader crashes",
                "Now no heartbeat comes. Step the clock: the followers' arcs fill. Their timeouts are random (150 to 300 ms here, "
                + "15 to 30 ticks), so one of them nearly always runs out first.",
                c => c.CrashAsync("leader")),
            new("Pre-vote",
                "A follower's timer ran out. Before it raises its term it asks the others: would you vote for me? (PreVote, "
                + "dissertation 9.6). A server that was only cut off cannot disrupt a working cluster this way: nobody would say yes.",
                c => c.StepUntilAsync(x => x.AnyInFlight("PreVote"), "a pre-vote request in flight"),
                "Deliver the messages one at a time: the request, then the answer (\"pre-vote yes\")."),
            new("Candidate",
                "A majority said yes (its own vote counts). Now it is a candidate: it increments its term, votes for itself and "
                + "sends RequestVote (purple) to every other server [paper 5.2].",
                async c =>
                {
                    await c.StepUntilAsync(x => x.Cluster.Nodes.Any(n => n.Connected && n.Status?.Role == "Candidate") || x.AnyInFlight("RequestVote"), "a candidate");
                    await c.StepUntilAsync(x => x.AnyInFlight("RequestVote"), "a vote request in flight");
                },
                "A server grants one vote per term, and only to a candidate whose log is at least as up to date as its own [paper 5.4.1]."),
            new("A new leader",
                "With votes from a majority it becomes leader of the new term. Its first act: append a no-op entry of its own term "
                + "and send it, so that everything before it commits [paper 5.4.2, 8]. Its heartbeats now keep the others followers.",
                async c =>
                {
                    await c.StepUntilAsync(x => x.Cluster.Leader is { } l && l.Id != x.Role("leader"), "a new leader");
                    c.Roles["new leader"] = c.Cluster.Leader!.Id;
                }),
            new("The old leader comes back",
                "Restarted, the old leader is a follower again: the first message it hears carries a higher term, and a higher term "
                + "always wins [paper 5.1]. The clock runs again at a fifth of real speed.",
                async c =>
                {
                    await ScenarioContext.ExpectOkAsync(c.Commands.RestartAsync(c.Role("leader")));
                    c.Run(0.2);
                    await c.WaitUntilAsync(x => x.RoleOf(x.Role("leader")) == "Follower" && x.Cluster[x.Role("leader")]?.Status?.LeaderId == x.Role("new leader"), "the old leader following the new one");
                    c.Run(1);
                }),
        ]);

    private static Scenario LogReplication() => new("log-replication", "Log replication and commitment",
        "A write travels from the leader to the followers and back; it is committed once a majority has it.",
        [
            new("Paused, a write arrives",
                "The clock is paused and a client writes lesson=replication. The leader appends it to its log (a faded square: not yet committed) "
                + "and sends it in AppendEntries (blue) to each follower.",
                async c =>
                {
                    c.Roles["leader"] = await c.PauseUnderStableLeaderAsync();
                    await c.AppendAtAsync("leader", "lesson", "replication"); // answered once applied, after the steps below
                    await c.StepUntilAsync(x => x.AnyInFlight("AppendEntries", x.Role("leader")), "the entry on its way");
                },
                "Open the Log tab below: the new entry is faded on the leader only."),
            new("A follower takes it",
                "One AppendEntries lands: the follower checks that its log matches the leader's just before the new entry (the "
                + "previous index and term), appends it, and answers ok with how far its log matches [paper 5.3].",
                async c =>
                {
                    c.Clock.StepMessage();
                    await c.StepUntilAsync(x => x.AnyInFlight("AppendEntriesResponse"), "the follower's answer");
                }),
            new("Committed",
                "The answer lands: leader and one follower hold the entry, a majority of three. The leader commits it and applies it "
                + "(the square turns solid on the leader); the client gets its answer now [paper 5.3].",
                c => c.StepUntilAsync(x => x.Cluster[x.Role("leader")]?.Status is { } s && s.CommitIndex == s.LastIndex && s.LastIndex > 0, "the leader's commit"),
                "The followers do not know yet: the next AppendEntries or heartbeat carries the leader's commit index."),
            new("Everyone knows",
                "With the next messages every follower learns the commit index and applies the entry too. The clock runs again.",
                async c =>
                {
                    await c.StepUntilAsync(x => x.Cluster.Members.Where(m => m.Connected).All(m => m.Status?.CommitIndex == x.Cluster[x.Role("leader")]?.Status?.CommitIndex), "every member's commit");
                    c.Run(1);
                }),
        ]);

    private static Scenario PartitionedLeader() => new("partitioned-leader", "A partitioned leader and PreVote",
        "The leader is cut off; the majority elects another; PreVote and CheckQuorum keep the old one from disrupting them when it returns.",
        [
            new("The leader is cut off",
                "Every link of the leader is cut (red dashes). It cannot reach a majority, so it cannot commit anything more.",
                async c =>
                {
                    c.Roles["leader"] = await c.StableLeaderAsync();
                    c.Run(1);
                    await ScenarioContext.ExpectOkAsync(c.Commands.IsolateAsync(c.Role("leader")));
                }),
            new("The majority elects a new leader",
                "The other two stop hearing heartbeats, time out, and one of them wins an election in a higher term [paper 5.2]. "
                + "Meanwhile the old leader notices it has not heard from a majority for an election timeout and steps down (CheckQuorum).",
                async c =>
                {
                    await c.WaitUntilAsync(x => x.Cluster.Nodes.Any(n => n.IsLeader && n.Id != x.Role("leader")), "a new leader among the majority");
                    c.Roles["new leader"] = c.Cluster.Nodes.First(n => n.IsLeader && n.Id != c.Role("leader")).Id;
                    await c.WaitUntilAsync(x => x.RoleOf(x.Role("leader")) != "Leader", "the old leader stepping down");
                }),
            new("Its term stays where it was",
                "Alone, the old leader times out again and again, but it only asks for pre-votes, which nobody can grant it: its term does "
                + "not grow (dissertation 9.6). Without PreVote it would count its term up and, back in the cluster, depose the new leader.",
                c => Task.Delay(2000),
                "Compare the terms in the table: the old leader's stays behind."),
            new("Healed",
                "The links are healed. The old leader hears the new leader's higher term and follows it; its log is brought in line.",
                async c =>
                {
                    await ScenarioContext.ExpectOkAsync(c.Commands.HealAllAsync());
                    await c.WaitUntilAsync(x => x.Cluster[x.Role("leader")]?.Status?.LeaderId == x.Role("new leader"), "the old leader following the new one");
                }),
        ]);

    private static Scenario LeadershipTransfer() => new("leadership-transfer", "Leadership transfer",
        "The leader hands over to a follower of your choice: it brings it up to date, then tells it to campaign now.",
        [
            new("Hand over, slowly",
                "At a fifth of real speed, the leader is asked to hand leadership to a follower. It stops taking writes, makes sure the "
                + "target has its whole log, and sends it TimeoutNow (orange) [dissertation 3.10].",
                async c =>
                {
                    c.Roles["leader"] = await c.StableLeaderAsync();
                    c.Roles["target"] = c.Cluster.Members.First(m => m.Connected && m.Id != c.Role("leader")).Id;
                    c.Run(0.2);
                    await ScenarioContext.ExpectOkAsync(c.Commands.TransferLeadershipAsync(c.Role("target")));
                }),
            new("The target leads",
                "TimeoutNow made the target start an election at once, past PreVote and past the others' leader lease: its votes are "
                + "granted because the old leader itself asked for the election. The clock runs at real speed again.",
                async c =>
                {
                    await c.WaitUntilAsync(x => x.Cluster.Leader?.Id == x.Role("target"), "the target leading");
                    c.Run(1);
                }),
        ]);

    private static Scenario Membership() => new("membership", "Adding and removing a server",
        "A new server joins as a learner, catches up, becomes a voter; then one is removed. One change at a time.",
        [
            new("A new server joins",
                "A fourth server starts empty. The leader adds it as a learner (it receives the log but does not vote), brings it up "
                + "to date in rounds, then appends a configuration that makes it a voter [dissertation 4.2.1].",
                async c =>
                {
                    await c.StableLeaderAsync();
                    c.Run(1);
                    await c.ExpectOkUnderLeaderAsync(c.Commands.AddServerAsync);
                    await c.WaitUntilAsync(x => x.Cluster.Members.Count == 4, "four members");
                },
                "With four voters a majority is three: one crash is still tolerated, not two."),
            new("A server leaves",
                "Now the newest server is removed again: a configuration without it is appended and committed; then it is stopped. "
                + "Only one change is ever in progress, so two majorities can never disagree [dissertation 4.1].",
                async c =>
                {
                    string newest = c.Cluster.Members.Select(m => m.Id).OrderBy(id => id.Length).ThenBy(id => id, StringComparer.Ordinal).Last();
                    await c.ExpectOkUnderLeaderAsync(() => c.Commands.RemoveServerAsync(newest));
                    await c.WaitUntilAsync(x => x.Cluster.Members.Count == 3, "three members");
                }),
        ]);

    private static Scenario SnapshotCatchUp() => new("snapshot-catch-up", "A far-behind follower and InstallSnapshot",
        "A follower misses writes while the leader compacts its log; it is brought back with the snapshot.",
        [
            new("A follower is down while writes go on",
                "A follower crashes; the other two keep committing writes (a majority of three): 260 of them.",
                async c =>
                {
                    c.Roles["leader"] = await c.StableLeaderAsync();
                    c.Roles["follower"] = c.Cluster.Members.First(m => m.Connected && m.Id != c.Role("leader")).Id;
                    c.Run(1);
                    await ScenarioContext.ExpectOkAsync(c.Commands.CrashAsync(c.Role("follower")));
                    // More than the 200 entries a leader keeps behind a snapshot for followers slightly behind.
                    for (int batch = 0; batch < 13; batch++)
                    {
                        await Task.WhenAll(Enumerable.Range(batch * 20, 20).Select(i => ScenarioContext.ExpectOkAsync(c.Commands.PutAsync($"while-away-{i % 50}", $"{i}"))));
                    }
                }),
            new("The leader compacts its log",
                "The leader snapshots its state machine and throws away the log entries the snapshot covers [paper 7]. The entries the "
                + "follower lacks are gone from the leader's log.",
                async c =>
                {
                    c.Roles["leader"] = await c.StableLeaderAsync(); // whoever leads now: it is the one that will send the snapshot
                    await ScenarioContext.ExpectOkAsync(c.Commands.TakeSnapshotAsync(c.Role("leader")));
                    await c.WaitUntilAsync(x => x.Cluster[x.Role("leader")]?.Status?.SnapshotIndex > 0, "the leader's snapshot");
                }),
            new("InstallSnapshot",
                "The follower restarts. The leader cannot send it the entries it needs, so it sends the snapshot instead, in chunks "
                + "(InstallSnapshot, brown); the follower replaces its state with it and takes the log from there.",
                async c =>
                {
                    await ScenarioContext.ExpectOkAsync(c.Commands.RestartAsync(c.Role("follower")));
                    await c.WaitUntilAsync(x => x.Cluster[x.Role("follower")]?.Status is { } s && s.SnapshotIndex > 0
                        && s.CommitIndex == x.Cluster[x.Role("leader")]?.Status?.CommitIndex, "the follower caught up from the snapshot");
                }),
        ]);

    private static Scenario DivergentFollower() => new("divergent-follower", "Repairing a divergent log",
        "A cut-off leader takes a write it cannot commit; the majority writes something else at that index; healing repairs the old leader's log (Figure 7).",
        [
            new("A write that cannot commit",
                "The leader is cut off from the others (the clock paused a moment so that it still leads), and a client still reaches "
                + "it: it appends the write (faded: not committed), but its AppendEntries are dropped (grey) and it cannot get the "
                + "entry to a majority. Its log now holds an entry nobody else has.",
                async c =>
                {
                    // Paused first: no tick, so the cut-off leader cannot step down (CheckQuorum) before the write reaches it.
                    c.Roles["old leader"] = await c.PauseUnderStableLeaderAsync();
                    await ScenarioContext.ExpectOkAsync(c.Commands.IsolateAsync(c.Role("old leader")));
                    await c.AppendAtAsync("old leader", "lost", "never committed"); // times out: no majority
                    c.Run(1);
                },
                "Open the Log tab: the old leader's last entry is faded, and the others do not have it."),
            new("The majority writes at the same index",
                "The other two elect a new leader in a higher term and commit writes of their own, at the same indexes: the two logs "
                + "now disagree at that point [paper 5.3, Figure 7].",
                async c =>
                {
                    await c.WaitUntilAsync(x => x.Cluster.Nodes.Any(n => n.IsLeader && n.Id != x.Role("old leader")), "a new leader");
                    for (int i = 0; i < 3; i++)
                    {
                        await ScenarioContext.ExpectOkAsync(c.Commands.PutAsync($"kept-{i}", "committed"));
                    }
                }),
            new("Healed: the log is repaired",
                "The links heal, at a fifth of real speed. The new leader's AppendEntries find that the old leader's entry at that index "
                + "has another term (\"conflict\"); the leader moves back to where their logs agree, and the old leader deletes the "
                + "uncommitted entry and everything after it and takes the leader's entries instead [paper 5.3]. It was never committed, "
                + "so nothing a client was told is lost.",
                async c =>
                {
                    c.Run(0.2);
                    await ScenarioContext.ExpectOkAsync(c.Commands.HealAllAsync());
                    await c.WaitUntilAsync(x => x.Cluster.Leader is { } l && x.Cluster[x.Role("old leader")]?.Status is { } s
                        && s.LeaderId == l.Id && s.LastIndex == l.Status!.LastIndex && s.CommitIndex == l.Status.CommitIndex, "the old leader's log equal to the leader's");
                    c.Run(1);
                }),
        ]);

    private static Scenario LeaderCrash() => new("leader-crash", "A leader crash: what was acknowledged survives",
        "The leader crashes with a write in its log that no one else has: the new leader never had it, and it is lost; every acknowledged write stays.",
        [
            new("A write reaches only the leader",
                "Paused, a client writes to the leader. It appends the entry (faded: not committed) and sends AppendEntries, which "
                + "are still in flight: no follower has the entry, and the client has had no answer.",
                async c =>
                {
                    await ScenarioContext.ExpectOkAsync(c.Commands.PutAsync("acknowledged", "kept"));
                    c.Roles["leader"] = await c.PauseUnderStableLeaderAsync();
                    await c.AppendAtAsync("leader", "unacknowledged", "lost"); // never answered with success
                }),
            new("The leader crashes",
                "It crashes before any AppendEntries arrives: the messages in flight die with it. The followers hold every acknowledged "
                + "entry (acknowledged means stored on a majority), but not the new one.",
                c => c.CrashAsync("leader")),
            new("A new leader without the entry",
                "The clock runs again (a fifth of real speed): the followers elect a new leader. Its log is complete for everything "
                + "committed [paper 5.4: Leader Completeness], so the acknowledged write is there; the unacknowledged one never was.",
                async c =>
                {
                    c.Run(0.2);
                    await c.WaitUntilAsync(x => x.Cluster.Leader is { } l && l.Id != x.Role("leader"), "a new leader");
                    c.Roles["new leader"] = c.Cluster.Leader!.Id;
                }),
            new("The old leader comes back",
                "Restarted, it follows the new leader, and its entry that nobody else has is replaced by the new leader's entries. The "
                + "client that sent it got no success, so nothing it was told is lost.",
                async c =>
                {
                    await ScenarioContext.ExpectOkAsync(c.Commands.RestartAsync(c.Role("leader")));
                    c.Run(1);
                    await c.WaitUntilAsync(x => x.Cluster[x.Role("leader")]?.Status is { } s && x.Cluster.Leader is { } l
                        && s.LeaderId == l.Id && s.LastIndex == l.Status!.LastIndex, "the old leader's log equal to the new leader's");
                }),
        ]);
}
