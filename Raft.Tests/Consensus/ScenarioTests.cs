using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;
using Raft.Tests.Simulation;
using static Raft.Tests.Consensus.CoreFixture;

namespace Raft.Tests.Consensus;

/// <summary>Named situations from the Raft paper and from the bugs real implementations shipped, played on the simulator.</summary>
public sealed class ScenarioTests
{
    private static PersistentState State(long term, params long[] logTerms) => new(new HardState(term, null), Entries(logTerms));

    [Fact]
    public void Figure7_a_new_leader_repairs_all_six_follower_logs_of_the_figure()
    {
        // Figure 7: the leader (s1, about to lead term 8) and followers (a)-(f), each log given by its entries' terms.
        var logs = new Dictionary<string, PersistentState>
        {
            ["s1"] = State(6, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6),
            ["s2"] = State(6, 1, 1, 1, 4, 4, 5, 5, 6, 6),          // (a) missing one entry
            ["s3"] = State(4, 1, 1, 1, 4),                         // (b) missing many
            ["s4"] = State(6, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6),    // (c) one extra uncommitted entry
            ["s5"] = State(7, 1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7), // (d) extra entries of a later term
            ["s6"] = State(4, 1, 1, 1, 4, 4, 4, 4),                // (e) missing and extra
            ["s7"] = State(3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3),    // (f) a long divergent tail from terms 2 and 3
        };
        var cluster = new SimCluster(7, seed: 7, FaultProfile.None, new RaftOptions(), initialState: Canonical(logs));
        cluster.ElectLeader("s1");
        Assert.Equal(8, cluster["s1"].Up.Term);
        Assert.True(cluster.RunUntil(() => cluster.Servers.All(s => s.Up.CommitIndex == cluster["s1"].Up.LastIndex), 500), cluster.Describe());

        long[] expected = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 8];
        foreach (SimServer server in cluster.Servers)
        {
            Assert.Equal(expected, LogTerms(server.Up));
            Assert.Same(cluster["s1"].Up.EntryAt(10), server.Up.EntryAt(10));
        }
    }

    /// <summary>Entries with equal index and term are the same entry in every log (Log Matching), as in the figure.</summary>
    private static Dictionary<string, PersistentState> Canonical(Dictionary<string, PersistentState> logs)
    {
        var byPosition = new Dictionary<(long, long), LogEntry>();
        return logs.ToDictionary(p => p.Key, p => p.Value with
        {
            Entries = p.Value.Entries.Select(e =>
            {
                // Entries of (f)'s terms 2 and 3 and (d)'s term 7 exist only there; the rest are cluster.
                if (!byPosition.TryGetValue((e.Index, e.Term), out LogEntry? canonical))
                {
                    canonical = new LogEntry(e.Index, e.Term, EntryKind.Command, KvCommand.Put($"k{e.Index}", $"t{e.Term}").Encode());
                    byPosition[(e.Index, e.Term)] = canonical;
                }
                return canonical;
            }).ToList(),
        });
    }

    [Fact]
    public void A_split_vote_resolves_through_randomized_timeouts()
    {
        var options = new RaftOptions { PreVote = false };
        var cluster = new SimCluster(3, seed: 3, FaultProfile.None, options);
        foreach (string a in cluster.Ids)
        {
            foreach (string b in cluster.Ids.Where(b => b != a))
            {
                cluster.Network.Cut(a, b);
            }
        }
        // Everyone times out once, votes for itself, and hears nothing: three candidates of term 1, a split vote.
        cluster.RunUntil(() => cluster.Servers.All(s => s.Up.Role == Role.Candidate), 100);
        Assert.All(cluster.Servers, s => Assert.Equal(1, s.Up.Term));
        Assert.All(cluster.Servers, s => Assert.Equal(s.Id, s.Up.VotedFor));

        cluster.Network.HealAll();
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 200), cluster.Describe());
        Assert.Single(cluster.Servers, s => s.Up.Role == Role.Leader);
        Assert.True(cluster.Leader!.Up.Term >= 2);
    }

    [Fact]
    public void PreVote_a_partitioned_follower_that_rejoins_does_not_depose_a_healthy_leader()
    {
        var cluster = new SimCluster(3, seed: 11, FaultProfile.None);
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 200));
        string leader = cluster.Leader!.Id;
        long term = cluster.Leader.Up.Term;
        string follower = cluster.Ids.First(id => id != leader);
        foreach (string other in cluster.Ids.Where(o => o != follower))
        {
            cluster.Network.Cut(follower, other);
        }
        cluster.RunUntil(() => false, 1000); // ten seconds alone: it campaigns over and over, in pre-vote only
        Assert.Equal(term, cluster[follower].Up.Term);

        cluster.Network.HealAll();
        cluster.RunUntil(() => false, 200);
        Assert.Equal(leader, cluster.Leader?.Id);
        Assert.Equal(term, cluster.Leader!.Up.Term);
        Assert.Equal(leader, cluster[follower].Up.LeaderId);
    }

    [Fact]
    public void Without_PreVote_the_same_rejoin_does_disrupt_the_leader()
    {
        // The control for the test above: it shows what PreVote prevents.
        var cluster = new SimCluster(3, seed: 11, FaultProfile.None, new RaftOptions { PreVote = false, CheckQuorum = false });
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 200));
        long term = cluster.Leader!.Up.Term;
        string follower = cluster.Ids.First(id => id != cluster.Leader.Id);
        foreach (string other in cluster.Ids.Where(o => o != follower))
        {
            cluster.Network.Cut(follower, other);
        }
        cluster.RunUntil(() => false, 1000);
        Assert.True(cluster[follower].Up.Term > term + 5);
        cluster.Network.HealAll();
        cluster.RunUntil(() => cluster.Leader is { } l && l.Up.Term > term, 200);
        Assert.True(cluster.Leader!.Up.Term > term);
    }

    [Fact]
    public void CheckQuorum_a_leader_cut_off_from_the_majority_steps_down_and_the_majority_elects_another()
    {
        var cluster = new SimCluster(5, seed: 5, FaultProfile.None);
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 200));
        string old = cluster.Leader!.Id;
        foreach (string other in cluster.Ids.Where(o => o != old))
        {
            cluster.Network.Cut(old, other);
        }
        var options = new RaftOptions();
        Assert.True(cluster.RunUntil(() => cluster[old].Up.Role != Role.Leader, 2 * options.ElectionTicks + 1),
            "the isolated leader did not step down within two election timeouts");
        Assert.True(cluster.RunUntil(() => cluster.Leader is { } l && l.Id != old, 300));
        Assert.NotEqual(Role.Leader, cluster[old].Up.Role);
    }

    [Fact]
    public void A_follower_100_entries_behind_with_a_divergent_tail_of_three_terms_is_repaired_in_one_round_trip_per_term()
    {
        // Leader: 100 entries of term 1, then terms 5 and 6 up to index 230. Follower: the same 100, then a divergent
        // tail of terms 2, 3 and 4 (10 entries each) -- 100 entries behind the leader.
        long[] leaderTerms = [.. Enumerable.Repeat(1L, 100), .. Enumerable.Repeat(5L, 65), .. Enumerable.Repeat(6L, 65)];
        long[] followerTerms = [.. Enumerable.Repeat(1L, 100), .. Enumerable.Repeat(2L, 10), .. Enumerable.Repeat(3L, 10), .. Enumerable.Repeat(4L, 10)];
        RaftCore leader = Core("s1", term: 6, logTerms: leaderTerms, options: Options with { MaxEntriesPerMessage = 1000 });
        RaftCore follower = Core("s2", term: 6, logTerms: followerTerms);
        Assert.Equal(leader.LastIndex - 100, follower.LastIndex);
        Elect(leader);

        int rejections = 0, appendEntries = 0;
        var queue = new Queue<RaftMessage>(Drain(leader).Where(m => m.To == "s2"));
        while (queue.Count > 0)
        {
            RaftMessage message = queue.Dequeue();
            if (message is AppendEntries)
            {
                appendEntries++;
                follower.Step(message);
                foreach (RaftMessage reply in Drain(follower))
                {
                    rejections += reply is AppendEntriesResponse { Success: false } ? 1 : 0;
                    leader.Step(reply);
                }
                foreach (RaftMessage next in Drain(leader).Where(m => m.To == "s2"))
                {
                    queue.Enqueue(next);
                }
            }
        }
        Assert.Equal(LogTerms(leader), LogTerms(follower));
        // One rejection for "too short" and one per divergent term (2, 3, 4); then one message carries the rest.
        Assert.Equal(4, rejections);
        Assert.Equal(5, appendEntries);
    }

    [Fact]
    public void A_command_retried_with_the_same_session_is_applied_once_and_answered_with_the_first_result()
    {
        var cluster = new SimCluster(3, seed: 21, FaultProfile.None);
        Assert.True(cluster.RunUntil(() => cluster.Leader != null, 200));
        string leader = cluster.Leader!.Id;
        byte[] first = KvCommand.CompareAndSwap("counter", null, "1", "client-a", 1).Encode();
        cluster.Propose(leader, first);
        // The client did not hear back (say, the leader changed) and retries the very same command.
        cluster.Propose(leader, first);
        cluster.Propose(leader, KvCommand.Put("other", "x", "client-b", 1).Encode());
        Assert.True(cluster.RunUntil(() => cluster.Servers.All(s => s.Up.AppliedIndex == cluster.Leader!.Up.LastIndex), 100));

        foreach (SimServer server in cluster.Servers)
        {
            Assert.Equal("1", server.StateMachine.GetLocal("counter"));
            // Both copies are in the log; the second is answered from the session, with the first answer (Ok), not CompareFailed.
            long[] copies = Enumerable.Range(1, (int)server.Up.LastIndex).Where(i => server.Up.EntryAt(i).Data.SequenceEqual(first)).Select(i => (long)i).ToArray();
            Assert.Equal(2, copies.Length);
        }
        var machine = new KeyValueStateMachine();
        Assert.Equal(KvStatus.Ok, KvResult.Decode(machine.Apply(1, first)).Status);
        Assert.Equal(KvStatus.Ok, KvResult.Decode(machine.Apply(2, first)).Status);
        Assert.Equal(KvStatus.CompareFailed, KvResult.Decode(machine.Apply(3, KvCommand.CompareAndSwap("counter", null, "1", "client-a", 2).Encode())).Status);
    }

    [Fact]
    public void A_follower_that_lost_its_log_tail_is_noticed_and_repaired_while_the_leader_stays()
    {
        // Issue 9: SIGKILL a follower, delete its raft.db-wal, restart it: its log ends before the index it had
        // acknowledged, and a leader that only moves back to that match index never sends it what it lost.
        var cluster = new SimCluster(3, seed: 5, FaultProfile.None, new RaftOptions());
        cluster.ElectLeader("s1");
        for (int i = 0; i < 40; i++)
        {
            Assert.True(cluster.Propose("s1", $"k{i}").Accepted);
        }
        Assert.True(cluster.RunUntil(() => cluster.Servers.All(s => s.Up.CommitIndex == cluster["s1"].Up.LastIndex), 500), cluster.Describe());
        long acknowledged = cluster["s1"].Up.LastIndex;

        cluster.Crash("s3");
        cluster["s3"].Store.LoseEntriesAfter(acknowledged - 25);
        cluster.Restart("s3");
        Assert.True(cluster.Propose("s1", "after").Accepted);

        Assert.True(cluster.RunUntil(() => cluster["s3"].Up.LastIndex == cluster["s1"].Up.LastIndex && cluster["s3"].Up.CommitIndex == cluster["s1"].Up.CommitIndex, 500), cluster.Describe());
        Assert.Equal("s1", cluster.Leader?.Id); // repaired without a new leader
        FollowerLogLost lost = Assert.Single(cluster.Notices.Select(n => n.Notice).OfType<FollowerLogLost>());
        Assert.Equal(("s3", acknowledged, acknowledged - 25), (lost.Follower, lost.MatchIndex, lost.LastIndex));
    }
}
