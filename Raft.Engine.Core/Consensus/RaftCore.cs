using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Quorum;
using Raft.Engine.Reads;
using Raft.Engine.Replication;
using Raft.Engine.Storage;

namespace Raft.Engine.Consensus;

/// <summary>
/// The Raft state and rules of one server, and nothing else: no tasks, locks, clock, sockets or files.
/// Inputs are <see cref="Step"/> (a message), <see cref="Tick()"/> (logical time), <see cref="Propose"/>,
/// <see cref="ReadIndex"/> and the admin calls; the output is a <see cref="Ready"/> batch that the host carries out
/// and then confirms with <see cref="Advance"/> (RaftCore.Ready.cs). Given the same seed and inputs it produces the
/// same outputs.
/// <para>
/// RaftCore is the role state machine (term, vote, role, leader, commit index, timers) and wires the parts that hold
/// the rest, each in its own type: <see cref="Quorum.Majority"/> and <see cref="Quorum.VoteTally"/> (counting),
/// <see cref="ProgressTracker"/> (per-follower replication), <see cref="ReadIndexQueue"/> (reads and the lease),
/// <see cref="LearnerCatchUp"/> and <see cref="ConfigurationChangeRules"/> (membership), <see cref="SnapshotReceiver"/>
/// (InstallSnapshot), <see cref="SenderRules"/> (who may send what) and <see cref="Outbox"/> (the pending output).
/// The partial files hold the handlers by concern and no state of their own: Election, Replication, Snapshots,
/// Membership, LeadershipTransfer, Reads.
/// </para>
/// </summary>
public sealed partial class RaftCore
{
    /// <summary>The largest term a server adopts: one more must still fit a <see cref="long"/>.</summary>
    public const long MaxTerm = long.MaxValue - 1;

    private readonly RaftOptions _options;
    private readonly RuleSwitches _rules;
    private readonly Random _random;
    private readonly RaftLog _log;
    private readonly ConfigurationHistory _configurations;
    private readonly Outbox _outbox = new();
    private readonly SenderRules _senders = new();
    private readonly VoteTally _votes = new();
    private readonly ProgressTracker _progress;
    private readonly ReadIndexQueue _reads;
    private readonly LearnerCatchUp _catchUp;
    private readonly SnapshotReceiver _incomingSnapshot;

    // The Ready/Advance contract (RaftCore.Ready.cs).
    /// <summary>The last log index the host has made durable.</summary>
    private long _stableIndex;
    private HardState _persistedHardState;
    /// <summary>The last committed index handed to the host for applying.</summary>
    private long _applyHandedOut;
    /// <summary>New entries wait for the batch, so that proposals arriving together share AppendEntries messages.</summary>
    private bool _broadcastPending;
    private Snapshot? _snapshotToInstall;
    /// <summary>Whether the stored entries after <see cref="_snapshotToInstall"/>'s index continue it (and are kept).</summary>
    private bool _snapshotKeepsStoredEntries;

    // Logical time.
    /// <summary>Ticks since start: the clock of catch-up rounds and the lease.</summary>
    private long _ticks;
    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _randomizedElectionTimeout;

    // A leader's own state, besides its followers' progress.
    /// <summary>Bytes of entries above the commit index (bounded by <see cref="RaftOptions.MaxUncommittedBytes"/>).</summary>
    private long _uncommittedBytes;
    private PendingTransfer? _transfer;

    /// <summary>Who a voter said leads a term in which this server knows no leader (see NoteNamedLeader).</summary>
    private (long Term, string Id)? _leaderNamedByVoter;

    // Snapshots.
    private Snapshot? _snapshot;
    /// <summary>Bytes of the entries applied since the last snapshot (taken or installed), or since start.</summary>
    private long _appliedBytesSinceSnapshot;

    public RaftCore(string id, ClusterConfiguration configuration, RaftOptions options, PersistentState state, Random random)
        : this(id, configuration, options, state, random, RuleSwitches.Safe)
    {
    }

    /// <param name="id">This server's id.</param>
    /// <param name="configuration">The bootstrap configuration, used until the log or a snapshot says otherwise.</param>
    /// <param name="options">Timing and limits, validated by <see cref="RaftOptions.Validate"/>.</param>
    /// <param name="state">What the store recovered: term, vote, log and snapshot.</param>
    /// <param name="random">The only source of randomness (election timeouts): seeded, it makes a run repeatable.</param>
    /// <param name="rules">Which safety rules are on (tests switch one off to see the checker catch it).</param>
    internal RaftCore(string id, ClusterConfiguration configuration, RaftOptions options, PersistentState state, Random random, RuleSwitches rules)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        options.Validate();
        Id = id;
        _options = options;
        _rules = rules;
        _random = random;
        _progress = new ProgressTracker(options.MaxInflightMessages);
        _reads = new ReadIndexQueue(options);
        _catchUp = new LearnerCatchUp(options.ElectionTicks, options.MaxCatchUpRounds);
        _incomingSnapshot = new SnapshotReceiver(options.MaxSnapshotBytes);
        _snapshot = state.Snapshot;
        long start = _snapshot?.Metadata.Index ?? 0;
        _log = new RaftLog(start, _snapshot?.Metadata.Term ?? 0, state.Entries.Where(e => e.Index > start));
        _configurations = new ConfigurationHistory(start, _snapshot?.Metadata.Configuration ?? configuration);
        for (long i = _log.FirstIndex; i <= _log.LastIndex; i++)
        {
            _configurations.Append(_log.Get(i));
        }
        _stableIndex = _log.LastIndex;
        _persistedHardState = state.HardState;
        Term = state.HardState.Term;
        VotedFor = state.HardState.VotedFor;
        CommitIndex = AppliedIndex = _applyHandedOut = start; // the snapshot holds committed, applied state
        Role = Role.Follower;
        ResetElectionTimer();
    }

    public string Id { get; }
    public Role Role { get; private set; }
    public long Term { get; private set; }
    public string? VotedFor { get; private set; }
    public string? LeaderId { get; private set; }
    public long CommitIndex { get; private set; }
    /// <summary>The last index the host has applied (as confirmed by <see cref="Advance"/>).</summary>
    public long AppliedIndex { get; private set; }

    /// <summary>The configuration in force: the latest one in the log, committed or not.</summary>
    public ClusterConfiguration Configuration => _configurations.Latest;

    /// <summary>The first index still held in memory (entries before it are covered by the snapshot).</summary>
    public long FirstIndex => _log.FirstIndex;
    public long LastIndex => _log.LastIndex;
    public long LastTerm => _log.LastTerm;

    /// <summary>Ticks since the election timer was last reset, and the timeout it is running to (for observers).</summary>
    public int ElectionElapsed => _electionElapsed;
    public int ElectionTimeout => Role == Role.Leader ? _options.ElectionTicks : _randomizedElectionTimeout;

    internal RaftLog Log => _log;

    public LogEntry EntryAt(long index) => _log.Get(index);

    public long? TermAt(long index) => _log.TermAt(index);

    /// <summary>On the leader: what it knows of each other member's log.</summary>
    public IReadOnlyList<FollowerStatus> Followers => Role != Role.Leader ? [] : _progress.Statuses();

    /// <summary>Messages dropped by the sender rules since the core started.</summary>
    public long RefusedMessages => _senders.Refused;

    /// <summary>Pre-vote rounds this server started since the core started (each asks whether it could win; no term changes).</summary>
    public long PreVotesStarted { get; private set; }

    /// <summary>Elections this server started since the core started (each in a new term of its own).</summary>
    public long ElectionsStarted { get; private set; }

    // ---- inputs ---------------------------------------------------------------------------

    /// <summary>One logical clock tick: drives election timeouts, heartbeats, CheckQuorum, catch-up rounds and transfers.</summary>
    public void Tick()
    {
        _ticks++;
        if (Role == Role.Leader)
        {
            TickLeader();
        }
        else
        {
            TickElectionTimer();
        }
    }

    /// <summary>
    /// How many ticks from now this server next has work of its own: its election timeout, or as leader its next
    /// heartbeat or CheckQuorum round (every tick while a transfer or a learner's catch-up is under way). A host with
    /// nothing to deliver may sleep that long and then give the ticks at once (an idle member wakes a few times per
    /// election timeout instead of every tick); anything that arrives meanwhile is stepped after the ticks up to then.
    /// </summary>
    public int TicksUntilDue
    {
        get
        {
            if (Role != Role.Leader)
            {
                return Configuration.IsVoter(Id) ? Math.Max(1, _randomizedElectionTimeout - _electionElapsed) : _options.ElectionTicks;
            }
            if (_transfer != null || _catchUp.Learner != null || Configuration.Learners.Count > 0)
            {
                return 1;
            }
            return Math.Max(1, Math.Min(_options.HeartbeatTicks - _heartbeatElapsed, _options.ElectionTicks - _electionElapsed));
        }
    }

    /// <summary>
    /// The host's clock says more time has passed than the ticks it gave (a paused or frozen process, a long GC, a starved
    /// loop): whatever a majority answered before may no longer hold off another leader, so lease reads wait for a round
    /// sent from now on (see <see cref="RaftOptions.LeaseReads"/>).
    /// </summary>
    public void VoidLease() => _reads.DropLease();

    /// <summary>Offers a client command. Only a leader accepts it; others answer with the leader they know.</summary>
    public ProposeResult Propose(byte[] command)
    {
        if (Role != Role.Leader)
        {
            return ProposeResult.NotLeader(LeaderId);
        }
        if (_transfer != null)
        {
            return new ProposeResult(false, 0, 0, Id, ProposeRefusal.TransferInProgress);
        }
        if (_uncommittedBytes > 0 && _uncommittedBytes + LogEntry.SizeOf(command) > _options.MaxUncommittedBytes)
        {
            return new ProposeResult(false, 0, 0, Id, ProposeRefusal.Overloaded);
        }
        LogEntry entry = AppendToLog(EntryKind.Command, command);
        return new ProposeResult(true, entry.Index, entry.Term, Id);
    }

    // ---- role changes and the log, for every part ----------------------------------------

    private void BecomeFollower(long term, string? leader)
    {
        if (Role == Role.Leader)
        {
            LeaveLeadership(leader);
        }
        if (term > Term)
        {
            Term = term;
            VotedFor = null;
        }
        Role = Role.Follower;
        LeaderId = leader;
        ResetElectionTimer();
    }

    /// <summary>What a leader holds only while it leads: follower progress, pending reads, a transfer, a catch-up.</summary>
    private void LeaveLeadership(string? newLeader)
    {
        FailPendingReads(newLeader);
        _progress.Clear();
        _transfer = null;
        _catchUp.Stop();
    }

    /// <summary>Appends an entry of the current term to the leader's log; it goes out with the next batch.</summary>
    private LogEntry AppendToLog(EntryKind kind, byte[] data)
    {
        var entry = new LogEntry(_log.LastIndex + 1, Term, kind, data);
        AppendToLog(entry);
        _uncommittedBytes += entry.Size;
        // Sending is deferred to TakeReady so that proposals arriving together share AppendEntries messages.
        _broadcastPending = true;
        return entry;
    }

    /// <summary>Every append goes through here: a configuration entry takes effect as soon as it is in the log.</summary>
    private void AppendToLog(LogEntry entry)
    {
        _log.Append(entry);
        if (entry.Kind == EntryKind.Configuration)
        {
            _configurations.Append(entry);
            OnConfigurationChanged();
        }
    }

    /// <summary>Every truncation goes through here: a configuration entry that is cut takes its configuration with it.</summary>
    private void TruncateLog(long index)
    {
        _log.TruncateFrom(index);
        _stableIndex = Math.Min(_stableIndex, index - 1);
        if (_configurations.LatestIndex >= index)
        {
            _configurations.TruncateFrom(index);
            OnConfigurationChanged();
        }
    }

    /// <summary>Queues a message; a leader's replication may leave before the batch's write (see <see cref="Outbox"/>).</summary>
    private void Send(RaftMessage message) =>
        _outbox.Send(message, replication: Role == Role.Leader && message is AppendEntries or InstallSnapshot);
}

/// <summary>The leader's view of one follower, for status displays.</summary>
public readonly record struct FollowerStatus(string Id, long MatchIndex, long NextIndex, ReplicationState State, int Inflight, bool RecentActive);
