using System.Text;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Tests.Simulation;

/// <summary>One simulated server: a core while it is up, its durable state always, its state machine while up.</summary>
internal sealed class SimServer(string id)
{
    public string Id { get; } = id;
    public RaftCore? Core { get; set; }
    public bool IsUp => Core != null;
    public HardState DurableHardState { get; set; } = new(0, null);
    public List<LogEntry> DurableLog { get; } = [];
    public KeyValueStateMachine StateMachine { get; set; } = new();
    public int Incarnation { get; set; }
    public bool CrashAfterNextPersist { get; set; }

    public RaftCore Up => Core ?? throw new InvalidOperationException($"{Id} is down");
}

/// <summary>
/// A cluster of <see cref="RaftCore"/>s on a simulated network, driven by one seed: every delay, loss, duplicate,
/// partition, crash, restart and proposal comes from it, so a run replays exactly. The invariant checker runs after
/// every step. Scripted scenarios use the same cluster with the random faults switched off.
/// </summary>
internal sealed class SimCluster
{
    private readonly Random _random;
    private readonly int _seed;
    private readonly RaftOptions _options;
    private readonly RuleSwitches _rules;
    private readonly ClusterConfiguration _configuration;
    private readonly Dictionary<string, SimServer> _servers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (KvCommand Command, bool Acknowledged)> _lastCommandOfClient = new(StringComparer.Ordinal);
    private long _nextValue;

    public SimCluster(int size, int seed, FaultProfile faults, RaftOptions? options = null, RuleSwitches? rules = null,
        IReadOnlyDictionary<string, PersistentState>? initialState = null)
    {
        _seed = seed;
        _random = new Random(seed);
        _options = options ?? new RaftOptions();
        _rules = rules ?? RuleSwitches.Safe;
        Ids = Enumerable.Range(1, size).Select(i => $"s{i}").ToArray();
        _configuration = new ClusterConfiguration(Ids);
        Network = new SimNetwork(new Random(unchecked((seed * 7919) + 17))) { Faults = faults };
        Faults = faults;
        foreach (string id in Ids)
        {
            var server = new SimServer(id);
            if (initialState?.GetValueOrDefault(id) is { } state)
            {
                server.DurableHardState = state.HardState;
                server.DurableLog.AddRange(state.Entries);
            }
            _servers[id] = server;
            Start(server);
        }
    }

    public IReadOnlyList<string> Ids { get; }
    public long Now { get; private set; }
    public SimNetwork Network { get; }
    public InvariantChecker Checker { get; } = new();
    public FaultProfile Faults { get; set; }
    public long Crashes { get; private set; }
    public long Proposals { get; private set; }

    public SimServer this[string id] => _servers[id];
    public IEnumerable<SimServer> Servers => Ids.Select(id => _servers[id]);

    /// <summary>The live leader with the highest term, if any.</summary>
    public SimServer? Leader =>
        Servers.Where(s => s.Core?.Role == Role.Leader).MaxBy(s => s.Core!.Term);

    public string Describe() =>
        $"seed {_seed} tick {Now}: " + string.Join("; ", Servers.Select(s => s.Core is { } c
            ? $"{s.Id} {c.Role} t{c.Term} last {c.LastIndex}/{c.LastTerm} commit {c.CommitIndex} applied {c.AppliedIndex}"
            : $"{s.Id} down"));

    // ---- the random run ------------------------------------------------------------------------

    /// <summary>Runs <paramref name="ticks"/> ticks of random faults and proposals.</summary>
    public void RunRandom(int ticks)
    {
        for (int i = 0; i < ticks; i++)
        {
            InjectRandomFaults();
            if (Faults.ProposalRatePerTick > 0 && _random.NextDouble() < Faults.ProposalRatePerTick)
            {
                ProposeRandomCommand();
            }
            TickAll();
        }
    }

    /// <summary>
    /// Heals everything, restarts every server and checks liveness: a leader within <paramref name="electionBound"/>
    /// ticks, then every one of <paramref name="commands"/> new proposals applied on every server.
    /// </summary>
    public void CheckLiveness(int electionBound, int commands, int commitBound)
    {
        Faults = FaultProfile.None with { MaxDelayTicks = Faults.MaxDelayTicks };
        Network.Faults = Faults;
        Network.HealAll();
        foreach (SimServer server in Servers)
        {
            server.CrashAfterNextPersist = false;
            Restart(server.Id);
        }
        // A leader that lost its quorum before the heal may still step down at its next CheckQuorum round, so wait
        // one full round after a leader is known to all and has committed in its term, then require it to be stable.
        bool Settled() => Leader is { } l && Servers.All(s => s.Up.LeaderId == l.Id) && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term;
        long deadline = Now + electionBound;
        while (true)
        {
            if (!RunUntil(Settled, (int)(deadline - Now)))
            {
                throw new InvariantViolation("Liveness", $"no stable leader known to all within {electionBound} ticks after healing; {Describe()}");
            }
            (string leader, long term) = (Leader!.Id, Leader.Up.Term);
            RunUntil(() => false, 2 * _options.ElectionTicks);
            if (Settled() && Leader!.Id == leader && Leader.Up.Term == term)
            {
                break;
            }
        }
        var expected = new List<byte[]>();
        for (int i = 0; i < commands; i++)
        {
            byte[] command = KvCommand.Put($"live{i}", $"v{i}").Encode();
            ProposeResult result = Leader!.Up.Propose(command);
            if (!result.Accepted)
            {
                throw new InvariantViolation("Liveness", "the leader refused a proposal after healing");
            }
            expected.Add(command);
        }
        long target = Leader!.Up.LastIndex;
        string proposedAt = $"proposed to {Leader.Id} in term {Leader.Up.Term} up to index {target} at tick {Now}";
        if (!RunUntil(() => Servers.All(s => s.Up.AppliedIndex >= target), commitBound))
        {
            throw new InvariantViolation("Liveness", $"proposals were not applied on every server within {commitBound} ticks ({proposedAt}); {Describe()}; leader sees {string.Join(", ", Leader?.Up.Followers.Select(f => $"{f.Id} match {f.MatchIndex} next {f.NextIndex} {f.State} inflight {f.Inflight}") ?? [])}");
        }
        foreach (SimServer server in Servers)
        {
            for (int i = 0; i < commands; i++)
            {
                if (server.StateMachine.GetLocal($"live{i}") != $"v{i}")
                {
                    throw new InvariantViolation("Liveness", $"{server.Id} did not apply proposal {i}");
                }
            }
        }
        var reference = Servers.First().StateMachine.Snapshot();
        foreach (SimServer server in Servers.Skip(1))
        {
            if (!server.StateMachine.Snapshot().SequenceEqual(reference))
            {
                throw new InvariantViolation("State Machine Safety", $"{server.Id}'s key-value contents differ after applying the same log");
            }
        }
    }

    private void InjectRandomFaults()
    {
        foreach (SimServer server in Servers)
        {
            if (server.IsUp && Faults.CrashRatePerTick > 0 && _random.NextDouble() < Faults.CrashRatePerTick)
            {
                if (_random.NextDouble() < Faults.CrashAfterPersistRate)
                {
                    server.CrashAfterNextPersist = true;
                }
                else
                {
                    Crash(server.Id);
                }
            }
            else if (!server.IsUp && _random.NextDouble() < Faults.RestartRatePerTick)
            {
                Restart(server.Id);
            }
        }
        if (Faults.PartitionRatePerTick > 0 && _random.NextDouble() < Faults.PartitionRatePerTick)
        {
            string a = Ids[_random.Next(Ids.Count)];
            string b = Ids[_random.Next(Ids.Count)];
            switch (_random.Next(3))
            {
                case 0: // isolate one server
                    foreach (string other in Ids.Where(o => o != a))
                    {
                        Network.Cut(a, other);
                    }
                    break;
                case 1: // one-way link failure
                    if (a != b)
                    {
                        Network.CutOneWay(a, b);
                    }
                    break;
                default: // split into two random groups
                    var side = Ids.ToDictionary(id => id, _ => _random.Next(2) == 0);
                    foreach (string x in Ids)
                    {
                        foreach (string y in Ids.Where(y => side[y] != side[x]))
                        {
                            Network.Cut(x, y);
                        }
                    }
                    break;
            }
        }
        if (Network.HasCuts && Faults.HealRatePerTick > 0 && _random.NextDouble() < Faults.HealRatePerTick)
        {
            Network.HealAll();
        }
    }

    /// <summary>A key-value command from one of five client sessions: mostly new, sometimes a retry of the last one.</summary>
    private void ProposeRandomCommand()
    {
        string client = $"c{_random.Next(5)}";
        KvCommand command;
        if (_lastCommandOfClient.TryGetValue(client, out var last) && _random.NextDouble() < Faults.RetryRate)
        {
            command = last.Command;
        }
        else
        {
            long sequence = (last.Command?.Sequence ?? 0) + 1;
            string key = $"k{_random.Next(8)}";
            long value = ++_nextValue;
            command = _random.Next(4) switch
            {
                0 => KvCommand.Delete(key, client, sequence),
                1 => KvCommand.CompareAndSwap(key, $"v{value - 1}", $"v{value}", client, sequence),
                _ => KvCommand.Put(key, $"v{value}", client, sequence),
            };
            _lastCommandOfClient[client] = (command, false);
        }
        SimServer? target = _random.NextDouble() < 0.8 ? Leader : null;
        target ??= Servers.Where(s => s.IsUp).ElementAtOrDefault(_random.Next(Ids.Count));
        if (target != null)
        {
            Propose(target.Id, command.Encode());
        }
    }

    // ---- driving by hand ---------------------------------------------------------------------

    public ProposeResult Propose(string id, byte[] command)
    {
        SimServer server = _servers[id];
        ProposeResult result = server.Up.Propose(command);
        if (result.Accepted)
        {
            Proposals++;
        }
        Process(server);
        return result;
    }

    public ProposeResult Propose(string id, string text) => Propose(id, KvCommand.Put(text, text).Encode());

    /// <summary>One tick: every live server ticks, then every message due is delivered.</summary>
    public void TickAll()
    {
        Now++;
        foreach (SimServer server in Servers.Where(s => s.IsUp))
        {
            server.Up.Tick();
            Process(server);
        }
        DeliverDue();
    }

    /// <summary>Ticks one server only (the others' clocks stand still), then delivers what is due.</summary>
    public void Tick(string id)
    {
        Now++;
        SimServer server = _servers[id];
        server.Up.Tick();
        Process(server);
        DeliverDue();
    }

    /// <summary>Delivers every message due now, including the ones those deliveries cause (when delays are zero).</summary>
    public void DeliverDue() => DeliverUntil(() => false);

    /// <summary>Delivers due messages one at a time until <paramref name="condition"/> holds; returns whether it did.</summary>
    public bool DeliverUntil(Func<bool> condition)
    {
        while (!condition())
        {
            if (!Network.TryTakeDue(Now, out RaftMessage message))
            {
                return false;
            }
            SimServer target = _servers[message.To];
            if (target.IsUp)
            {
                target.Up.Step(message);
                Process(target);
            }
        }
        return true;
    }

    /// <summary>Ticks everyone until <paramref name="condition"/> holds or <paramref name="maxTicks"/> pass.</summary>
    public bool RunUntil(Func<bool> condition, int maxTicks)
    {
        for (int i = 0; i < maxTicks; i++)
        {
            if (condition())
            {
                return true;
            }
            TickAll();
        }
        return condition();
    }

    /// <summary>
    /// Ticks only <paramref name="id"/> until it leads (or gives up after <paramref name="maxTicks"/>). Delivery stops
    /// the moment it wins: its first AppendEntries are still in flight.
    /// </summary>
    public void ElectLeader(string id, int maxTicks = 1000)
    {
        bool IsLeader() => _servers[id].Up.Role == Role.Leader;
        for (int i = 0; i < maxTicks && !IsLeader(); i++)
        {
            Now++;
            _servers[id].Up.Tick();
            Process(_servers[id]);
            DeliverUntil(IsLeader);
        }
        if (_servers[id].Up.Role != Role.Leader)
        {
            throw new InvalidOperationException($"{id} did not become leader: {Describe()}");
        }
    }

    public void Crash(string id)
    {
        SimServer server = _servers[id];
        server.Core = null;
        server.CrashAfterNextPersist = false;
        Crashes++;
    }

    public void Restart(string id)
    {
        SimServer server = _servers[id];
        if (server.IsUp)
        {
            return;
        }
        server.Incarnation++;
        Checker.OnRestart(id);
        Start(server);
    }

    private void Start(SimServer server)
    {
        int index = Array.IndexOf(Ids.ToArray(), server.Id);
        var random = new Random(unchecked((_seed * 1_000_003) + (index * 7919) + (server.Incarnation * 104_729)));
        var state = new PersistentState(server.DurableHardState, [.. server.DurableLog]);
        server.StateMachine = new KeyValueStateMachine();
        server.Core = new RaftCore(server.Id, _configuration, _options, state, random, _rules);
        Checker.AfterStep(server.Core);
    }

    /// <summary>Carries out a server's Ready batches as a host would: persist, send, apply, advance; checks after each step.</summary>
    private void Process(SimServer server)
    {
        while (server.Core is { } core)
        {
            Checker.AfterStep(core);
            if (!core.HasReady)
            {
                return;
            }
            Ready ready = core.TakeReady();
            if (ready.HardState is { } hardState)
            {
                server.DurableHardState = hardState;
            }
            if (ready.EntriesToPersist.Count > 0)
            {
                int first = (int)ready.EntriesToPersist[0].Index;
                server.DurableLog.RemoveRange(first - 1, server.DurableLog.Count - (first - 1));
                server.DurableLog.AddRange(ready.EntriesToPersist);
            }
            if (server.CrashAfterNextPersist)
            {
                Crash(server.Id); // persisted, but nothing sent or applied
                return;
            }
            foreach (RaftMessage message in ready.Messages)
            {
                Network.Send(message, Now);
            }
            foreach (LogEntry entry in ready.CommittedEntries)
            {
                Checker.OnApplied(server.Id, entry);
                if (entry.Kind == EntryKind.Command)
                {
                    server.StateMachine.Apply(entry.Index, entry.Data);
                }
            }
            core.Advance(ready);
        }
    }

    /// <summary>Text commands for scripted scenarios.</summary>
    public static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);
}
