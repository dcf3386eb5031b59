using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Tests.Simulation;

/// <summary>One simulated server: a core while it is up, its durable store always, its state machine while up.</summary>
internal sealed class SimServer(string id)
{
    public string Id { get; } = id;
    public RaftCore? Core { get; set; }
    public bool IsUp => Core != null;
    public SimDisk Store { get; } = new();
    public KeyValueStateMachine StateMachine { get; set; } = new();
    /// <summary>Carries out the core's batches: the host's own <see cref="Raft.Engine.Hosting.ReadyProcessor"/>.</summary>
    public ReadyProcessor? Processor { get; set; }
    public int Incarnation { get; set; }
    /// <summary>A crash that is due: it hits right after this step of the next batch.</summary>
    public ReadyStep? CrashAt { get; set; }
    public long CheckedCommit { get; set; }
    /// <summary>Ticks of this server's clock per tick of the cluster's (see <see cref="FaultProfile.ClockDrift"/>).</summary>
    public double ClockRate { get; set; } = 1;
    /// <summary>The fraction of a tick its clock has run but not yet ticked.</summary>
    public double ClockPhase { get; set; }

    public RaftCore Up => Core ?? throw new InvalidOperationException($"{Id} is down");
}

/// <summary>
/// A cluster of <see cref="RaftCore"/>s on a simulated network, driven by one seed: every delay, loss, duplicate,
/// partition, crash, restart, proposal, client operation, membership change, transfer and snapshot comes from it,
/// so a run replays exactly. The invariant checker runs after every step; the recorded client history is checked
/// for linearizability at the end. Scripted scenarios use the same cluster with the random faults switched off.
/// </summary>
internal sealed partial class SimCluster
{
    private readonly Random _random;
    private readonly int _seed;
    private readonly RaftOptions _options;
    private readonly RuleSwitches _rules;
    private readonly ClusterConfiguration _bootstrap;
    private readonly Dictionary<string, SimServer> _servers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, KvCommand> _lastCommandOfClient = new(StringComparer.Ordinal);
    private readonly Random _diskRandom;
    private readonly Random _clockRandom;
    private (string Leader, long Term, IReadOnlySet<string> Voters)? _leaderVoters;
    private long _nextValue;

    /// <param name="spares">Servers beyond the initial <paramref name="size"/> that run with no configuration, ready to be added.</param>
    public SimCluster(int size, int seed, FaultProfile faults, RaftOptions? options = null, RuleSwitches? rules = null,
        IReadOnlyDictionary<string, PersistentState>? initialState = null, int spares = 0)
    {
        _seed = seed;
        _random = new Random(seed);
        _options = options ?? new RaftOptions();
        _rules = rules ?? RuleSwitches.Safe;
        Ids = Enumerable.Range(1, size + spares).Select(i => $"s{i}").ToArray();
        _bootstrap = new ClusterConfiguration(Ids.Take(size));
        Network = new SimNetwork(new Random(unchecked((seed * 7919) + 17))) { Faults = faults };
        _diskRandom = new Random(unchecked((seed * 31) + 5));
        _clockRandom = new Random(unchecked((seed * 131) + 7));
        Faults = faults;
        _clients = Enumerable.Range(0, 5).Select(i => new SimClient(i)).ToArray();
        foreach (string id in Ids)
        {
            var server = new SimServer(id);
            if (initialState?.GetValueOrDefault(id) is { } state)
            {
                server.Store.SaveAsync(state.HardState, state.Entries).AsTask().GetAwaiter().GetResult();
                server.Store.Sync();
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
    public long SnapshotsTaken { get; private set; }
    public long SnapshotsInstalled { get; private set; }
    public long MembershipChanges { get; private set; }
    public long Transfers { get; private set; }

    /// <summary>Every read state and notice any server produced, for scripted scenarios.</summary>
    public List<(string Server, ReadState Read)> ReadStates { get; } = [];
    public List<(string Server, RaftNotice Notice)> Notices { get; } = [];

    /// <summary>Raised for each message just before it reaches a live server.</summary>
    public event Action<RaftMessage>? Delivering;

    public SimServer this[string id] => _servers[id];
    public IEnumerable<SimServer> Servers => Ids.Select(id => _servers[id]);

    /// <summary>The live leader with the highest term, if any.</summary>
    public SimServer? Leader =>
        Servers.Where(s => s.Core?.Role == Role.Leader).MaxBy(s => s.Core!.Term);

    public string Describe() =>
        $"seed {_seed} tick {Now}: " + string.Join("; ", Servers.Select(s => s.Core is { } c
            ? $"{s.Id} {c.Role} t{c.Term} last {c.LastIndex}/{c.LastTerm} commit {c.CommitIndex} applied {c.AppliedIndex} snap {c.SnapshotIndex} {c.Configuration}"
            : $"{s.Id} down"));

    // ---- the random run ------------------------------------------------------------------------

    /// <summary>Runs <paramref name="ticks"/> ticks of random faults, proposals, client operations and admin actions.</summary>
    public void RunRandom(int ticks)
    {
        for (int i = 0; i < ticks; i++)
        {
            InjectRandomFaults();
            if (Faults.ProposalRatePerTick > 0 && _random.NextDouble() < Faults.ProposalRatePerTick)
            {
                ProposeRandomCommand();
            }
            RunClients();
            InjectRandomAdmin();
            TickAll();
        }
    }

    /// <summary>
    /// Heals everything, restarts every server and checks liveness: a stable leader within <paramref name="electionBound"/>
    /// ticks, then every one of <paramref name="commands"/> new proposals applied on every member. Then checks that all
    /// members hold the same key-value contents and that the recorded client history is linearizable.
    /// </summary>
    public void CheckLiveness(int electionBound, int commands, int commitBound)
    {
        Faults = FaultProfile.None with { MaxDelayTicks = Faults.MaxDelayTicks };
        Network.Faults = Faults;
        Network.HealAll();
        foreach (SimServer server in Servers)
        {
            server.CrashAt = null;
            Restart(server.Id);
        }
        // A leader that lost its quorum before the heal may still step down at its next CheckQuorum round, so wait
        // one full round after a leader is known to all members and has committed in its term, then require it to be stable.
        IEnumerable<SimServer> Members(SimServer leader) => leader.Up.Configuration.Members.Select(id => _servers[id]);
        bool Settled() => Leader is { } l
            && Members(l).All(s => s.Up.LeaderId == l.Id)
            && l.Up.TermAt(l.Up.CommitIndex) == l.Up.Term
            && !l.Up.ConfigurationChangePending && l.Up.CatchingUp is null && l.Up.TransferTarget is null;
        long deadline = Now + electionBound;
        while (true)
        {
            if (!RunUntil(Settled, (int)(deadline - Now)))
            {
                string view = Leader is { } l ? string.Join(", ", l.Up.Followers.Select(f => $"{f.Id} match {f.MatchIndex} next {f.NextIndex} {f.State} inflight {f.Inflight}")) : "";
                throw new InvariantViolation("Liveness", $"no stable leader known to all within {electionBound} ticks after healing; {Describe()}; leader sees {view}");
            }
            (string leader, long term) = (Leader!.Id, Leader.Up.Term);
            RunUntil(() => false, 2 * _options.ElectionTicks);
            if (Settled() && Leader!.Id == leader && Leader.Up.Term == term)
            {
                break;
            }
        }
        for (int i = 0; i < commands; i++)
        {
            if (!Leader!.Up.Propose(KvCommand.Put($"live{i}", $"v{i}").Encode()).Accepted)
            {
                throw new InvariantViolation("Liveness", "the leader refused a proposal after healing");
            }
        }
        SimServer final = Leader!;
        long target = final.Up.LastIndex;
        string proposedAt = $"proposed to {final.Id} in term {final.Up.Term} up to index {target} at tick {Now}";
        Process(final);
        if (!RunUntil(() => Members(final).All(s => s.Up.AppliedIndex >= target), commitBound))
        {
            throw new InvariantViolation("Liveness", $"proposals were not applied on every member within {commitBound} ticks ({proposedAt}); {Describe()}");
        }
        var reference = final.StateMachine.Snapshot();
        foreach (SimServer server in Members(final))
        {
            for (int i = 0; i < commands; i++)
            {
                if (server.StateMachine.GetLocal($"live{i}") != $"v{i}")
                {
                    throw new InvariantViolation("Liveness", $"{server.Id} did not apply proposal {i}");
                }
            }
            if (!server.StateMachine.Snapshot().SequenceEqual(reference))
            {
                throw new InvariantViolation("State Machine Safety", $"{server.Id}'s key-value contents differ from the leader's after applying the same log");
            }
        }
        CheckHistory();
    }

    private void InjectRandomFaults()
    {
        foreach (SimServer server in Servers)
        {
            if (server.IsUp && Faults.CrashRatePerTick > 0 && _random.NextDouble() < Faults.CrashRatePerTick)
            {
                if (_random.NextDouble() < Faults.CrashMidBatchRate)
                {
                    server.CrashAt = (ReadyStep)_random.Next(Enum.GetValues<ReadyStep>().Length);
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
        if (Faults.IsolateLeaderAfterVoterChangeRate > 0 && Leader is { } leader)
        {
            IReadOnlySet<string> voters = leader.Up.Configuration.Voters;
            if (_leaderVoters is var (id, term, before) && id == leader.Id && term == leader.Up.Term && !before.SetEquals(voters)
                && _random.NextDouble() < Faults.IsolateLeaderAfterVoterChangeRate)
            {
                var changed = new HashSet<string>(before, StringComparer.Ordinal);
                changed.SymmetricExceptWith(voters);
                foreach (string other in Ids.Where(o => o != leader.Id && !changed.Contains(o)))
                {
                    Network.Cut(leader.Id, other);
                }
            }
            _leaderVoters = (leader.Id, leader.Up.Term, voters);
        }
        if (Network.HasCuts && Faults.HealRatePerTick > 0 && _random.NextDouble() < Faults.HealRatePerTick)
        {
            Network.HealAll();
        }
    }

    /// <summary>Membership changes, leadership transfers and on-demand snapshots, at random.</summary>
    private void InjectRandomAdmin()
    {
        if (Leader is { } leader)
        {
            RaftCore core = leader.Up;
            if (Faults.MembershipChangeRatePerTick > 0 && _random.NextDouble() < Faults.MembershipChangeRatePerTick)
            {
                string candidate = Ids[_random.Next(Ids.Count)];
                AdminResult result = core.Configuration.IsMember(candidate)
                    ? core.Configuration.Voters.Count > 3 || !core.Configuration.IsVoter(candidate) ? core.RemoveServer(candidate) : default
                    : core.AddServer(candidate);
                MembershipChanges += result.Accepted ? 1 : 0;
                Process(leader);
            }
            if (Faults.TransferRatePerTick > 0 && _random.NextDouble() < Faults.TransferRatePerTick)
            {
                string target = core.Configuration.Voters.ElementAt(_random.Next(core.Configuration.Voters.Count));
                Transfers += core.TransferLeadership(target).Accepted ? 1 : 0;
                Process(leader);
            }
        }
        if (Faults.SnapshotRatePerTick > 0 && _random.NextDouble() < Faults.SnapshotRatePerTick)
        {
            SimServer server = _servers[Ids[_random.Next(Ids.Count)]];
            if (server.Core is { } core && core.AppliedIndex > core.SnapshotIndex)
            {
                TakeSnapshot(server);
            }
        }
    }

    /// <summary>A key-value command from one of five client sessions: mostly new, sometimes a retry of the last one.</summary>
    private void ProposeRandomCommand()
    {
        string client = $"c{_random.Next(5)}";
        KvCommand command;
        if (_lastCommandOfClient.TryGetValue(client, out KvCommand? last) && _random.NextDouble() < Faults.RetryRate)
        {
            command = last;
        }
        else
        {
            long sequence = (last?.Sequence ?? 0) + 1;
            string key = $"k{_random.Next(8)}";
            long value = ++_nextValue;
            command = _random.Next(4) switch
            {
                0 => KvCommand.Delete(key, client, sequence),
                1 => KvCommand.CompareAndSwap(key, $"v{value - 1}", $"v{value}", client, sequence),
                _ => KvCommand.Put(key, $"v{value}", client, sequence),
            };
            _lastCommandOfClient[client] = command;
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

    /// <summary>Runs an admin call (membership change, transfer, read) on a server's core and carries out its output.</summary>
    public T Call<T>(string id, Func<RaftCore, T> action)
    {
        SimServer server = _servers[id];
        T result = action(server.Up);
        Process(server);
        return result;
    }

    /// <summary>
    /// One tick of the cluster's clock: every live server's clock runs on (one tick, or with drift sometimes none or
    /// two), then every message due is delivered.
    /// </summary>
    public void TickAll()
    {
        Now++;
        foreach (SimServer server in Servers.Where(s => s.IsUp))
        {
            server.ClockPhase += server.ClockRate;
            while (server.ClockPhase >= 1 && server.Core is { } core)
            {
                server.ClockPhase -= 1;
                core.Tick();
                Process(server);
            }
        }
        DeliverDue();
        ExpireClientOperations();
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
                Delivering?.Invoke(message);
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
        if (!IsLeader())
        {
            throw new InvalidOperationException($"{id} did not become leader: {Describe()}");
        }
    }

    /// <summary>Ticks everyone until some server wins an election; delivery stops the moment it does.</summary>
    public SimServer ElectAnyLeader(int maxTicks = 1000)
    {
        for (int i = 0; i < maxTicks && Leader is null; i++)
        {
            Now++;
            foreach (SimServer server in Servers.Where(s => s.IsUp))
            {
                server.Up.Tick();
                Process(server);
            }
            DeliverUntil(() => Leader != null);
        }
        return Leader ?? throw new InvalidOperationException($"no leader: {Describe()}");
    }

    public void Crash(string id)
    {
        SimServer server = _servers[id];
        server.Core = null;
        server.Processor = null;
        server.CrashAt = null;
        server.Store.Crash(_diskRandom, Faults.UnsyncedWriteLossRate);
        Crashes++;
        AbandonClientOperationsAt(id);
    }

    public void Restart(string id)
    {
        SimServer server = _servers[id];
        if (server.IsUp)
        {
            return;
        }
        server.Incarnation++;
        Checker.OnRestart(id, server.Store.LoadAsync().AsTask().GetAwaiter().GetResult().HardState.Term);
        Start(server);
    }

    private void Start(SimServer server)
    {
        int index = Ids.ToList().IndexOf(server.Id);
        var random = new Random(unchecked((_seed * 1_000_003) + (index * 7919) + (server.Incarnation * 104_729)));
        PersistentState state = server.Store.LoadAsync().AsTask().GetAwaiter().GetResult();
        server.StateMachine = new KeyValueStateMachine();
        ClusterConfiguration bootstrap = _bootstrap.IsVoter(server.Id) ? _bootstrap : ClusterConfiguration.Empty;
        server.Core = new RaftCore(server.Id, bootstrap, _options, state, random, _rules) { SnapshotCheck = data => server.StateMachine.CheckSnapshot(data) };
        server.Processor = new ReadyProcessor(server.Store, server.StateMachine, new SimHost(this, server));
        server.CheckedCommit = 0;
        server.ClockRate = 1 + (Faults.ClockDrift * ((2 * _clockRandom.NextDouble()) - 1));
        server.ClockPhase = _clockRandom.NextDouble();
        if (state.Snapshot is { } snapshot)
        {
            server.StateMachine.RestoreSnapshotAsync(new MemoryStream(snapshot.Data)).AsTask().GetAwaiter().GetResult();
            Checker.AfterStep(server.Core);
            Checker.OnSnapshotApplied(server.Id, snapshot.Metadata.Index, snapshot.Metadata.Term);
        }
        Checker.AfterStep(server.Core);
    }

    /// <summary>Snapshots a server's state machine as of its applied index, stores it and lets the core compact.</summary>
    public void TakeSnapshot(SimServer server)
    {
        RaftCore core = server.Up;
        using var buffer = new MemoryStream();
        server.StateMachine.CaptureSnapshot().WriteToAsync(buffer).AsTask().GetAwaiter().GetResult();
        var snapshot = new Snapshot(core.SnapshotMetadataAt(core.AppliedIndex), buffer.ToArray());
        server.Store.SaveSnapshotAsync(snapshot, keepLaterEntries: true).AsTask().GetAwaiter().GetResult();
        server.Store.Sync();
        core.OnSnapshotTaken(snapshot);
        SnapshotsTaken++;
        Checker.AfterStep(core);
    }

    /// <summary>Carries out a server's Ready batches as a host would: persist, send, apply, advance; checks after each step.</summary>
    private void Process(SimServer server)
    {
        while (server.Core is { } core)
        {
            Checker.AfterStep(core);
            CheckCommitIsOnAMajorityOfVoters(server);
            if (!core.HasReady)
            {
                if (core.IsSnapshotDue)
                {
                    TakeSnapshot(server);
                }
                CompleteReads(server);
                return;
            }
            Ready ready = core.TakeReady();
            try
            {
                ValueTask processing = server.Processor!.ProcessAsync(core, ready);
                if (!processing.IsCompleted)
                {
                    throw new InvalidOperationException("the simulated store and state machine complete synchronously");
                }
                processing.GetAwaiter().GetResult();
            }
            catch (SimulatedCrash)
            {
                Crash(server.Id); // between two steps: what was not synced may be lost
                return;
            }
        }
    }

    /// <summary>What the leader commits is durably stored on a majority of the voters of its configuration (never learners).</summary>
    private void CheckCommitIsOnAMajorityOfVoters(SimServer server)
    {
        RaftCore core = server.Up;
        if (core.Role != Role.Leader)
        {
            server.CheckedCommit = core.CommitIndex; // learned from another leader, under that leader's configuration
            return;
        }
        if (core.CommitIndex <= server.CheckedCommit)
        {
            return;
        }
        server.CheckedCommit = core.CommitIndex;
        long index = core.CommitIndex;
        long term = core.TermAt(index) ?? throw new InvariantViolation("Commit", $"{core.Id} committed {index}, which it does not hold");
        // The commit was counted under the configuration in force then: the latest, or (if a change was appended in the
        // same step, which needs the previous one committed) the committed one.
        int Holders(ClusterConfiguration configuration) =>
            configuration.Voters.Count(v => _servers[v].Store.TermAt(index) == term || _servers[v].Store.SnapshotIndex > index);
        int holders = Holders(core.Configuration);
        if (holders < core.Configuration.QuorumSize && Holders(core.CommittedConfiguration) < core.CommittedConfiguration.QuorumSize)
        {
            string detail = string.Join(", ", core.Configuration.Voters.Select(v =>
                $"{v}: stored term {_servers[v].Store.TermAt(index)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}, snapshot {_servers[v].Store.SnapshotIndex}, match {core.Followers.FirstOrDefault(f => f.Id == v).MatchIndex}"));
            throw new InvariantViolation("Commit needs a majority of voters", $"{core.Id} committed {index} (term {term}) held by {holders} of the voters in {core.Configuration}: {detail}");
        }
    }
}

/// <summary>A crash injected between two steps of carrying out a batch.</summary>
internal sealed class SimulatedCrash : Exception
{
}

/// <summary>The simulation's side of a batch: the simulated network, the checkers, the recorded clients, crashes.</summary>
internal sealed partial class SimCluster
{
    private sealed class SimHost(SimCluster cluster, SimServer server) : IReadyHost
    {
        public ValueTask WaitForStorageAsync(StorageFullException full, int attempt, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the simulated disk never fills", full);

        public void Send(RaftMessage message)
        {
            cluster.Checker.OnSent(message);
            cluster.Network.Send(message, cluster.Now);
        }

        public void OnApplied(LogEntry entry, byte[] result)
        {
            cluster.Checker.OnApplied(server.Id, entry);
            if (entry.Kind == EntryKind.Command)
            {
                cluster.CompleteWrite(server.Id, entry, result);
            }
        }

        public void OnSnapshotRestored(Snapshot snapshot)
        {
            cluster.Checker.OnSnapshotApplied(server.Id, snapshot.Metadata.Index, snapshot.Metadata.Term);
            cluster.SnapshotsInstalled++;
            cluster.AbandonWritesCoveredBySnapshot(server.Id, snapshot.Metadata.Index);
        }

        public void OnReadState(ReadState read)
        {
            cluster.ReadStates.Add((server.Id, read));
            cluster.OnReadState(server.Id, read);
        }

        public void OnNotice(RaftNotice notice) => cluster.Notices.Add((server.Id, notice));

        public void AfterStep(ReadyStep step)
        {
            if (step == ReadyStep.Persisted)
            {
                server.Store.Sync(); // the write's await returned: it is durable
            }
            if (server.CrashAt == step)
            {
                throw new SimulatedCrash();
            }
        }
    }
}
