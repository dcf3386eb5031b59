using System.Text;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Storage;

namespace Raft.Tests.Consensus;

/// <summary>Builds single cores in a chosen state and drives them by hand, for rule-by-rule tests.</summary>
internal static class CoreFixture
{
    public static readonly RaftOptions Options = new() { ElectionTicks = 10, HeartbeatTicks = 2, PreVote = false, CheckQuorum = false };

    public static readonly string[] Three = ["s1", "s2", "s3"];

    /// <summary>Entries with the given terms at indexes 1, 2, 3, ...; each carries distinct data.</summary>
    public static LogEntry[] Entries(params long[] terms) =>
        terms.Select((term, i) => new LogEntry(i + 1, term, EntryKind.Command, Encoding.UTF8.GetBytes($"e{i + 1}t{term}"))).ToArray();

    public static RaftCore Core(string id = "s1", long term = 0, string? votedFor = null, long[]? logTerms = null,
        RaftOptions? options = null, string[]? members = null, RuleSwitches? rules = null, int seed = 1)
    {
        var state = new PersistentState(new HardState(term, votedFor), Entries(logTerms ?? []));
        return new RaftCore(id, new ClusterConfiguration(members ?? Three), options ?? Options, state, new Random(seed), rules ?? RuleSwitches.Safe);
    }

    /// <summary>Takes the pending batch and confirms it as a host would (persisted, sent, applied).</summary>
    public static Ready Flush(RaftCore core)
    {
        Ready ready = core.TakeReady();
        core.Advance(ready);
        return ready;
    }

    /// <summary>Flushes until nothing is pending; returns every message sent.</summary>
    public static List<RaftMessage> Drain(RaftCore core)
    {
        var messages = new List<RaftMessage>();
        while (core.HasReady)
        {
            messages.AddRange(Flush(core).AllMessages);
        }
        return messages;
    }

    public static void TickUntil(RaftCore core, Func<RaftCore, bool> condition, int max = 1000)
    {
        for (int i = 0; i < max && !condition(core); i++)
        {
            core.Tick();
        }
        Assert.True(condition(core), "condition not reached by ticking");
    }

    /// <summary>Makes <paramref name="core"/> leader of the next term with votes from the other members.</summary>
    public static RaftCore Elect(RaftCore core)
    {
        TickUntil(core, c => c.Role == Role.Candidate);
        Drain(core);
        foreach (string voter in core.Configuration.Voters.Where(v => v != core.Id))
        {
            core.Step(new RequestVoteResponse(voter, core.Id, core.Term, true, false));
        }
        Assert.Equal(Role.Leader, core.Role);
        return core;
    }

    public static AppendEntries Append(long term, long prevIndex, long prevTerm, LogEntry[] entries, long commit, string from = "s2", string to = "s1") =>
        new(from, to, term, prevIndex, prevTerm, entries, commit);

    public static LogEntry Entry(long index, long term, string data = "x") => new(index, term, EntryKind.Command, Encoding.UTF8.GetBytes(data));

    public static long[] LogTerms(RaftCore core) =>
        Enumerable.Range(1, (int)core.LastIndex).Select(i => core.EntryAt(i).Term).ToArray();

    public static T Single<T>(IEnumerable<RaftMessage> messages) where T : RaftMessage => Assert.Single(messages.OfType<T>());
}
