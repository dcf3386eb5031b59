using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Replication;
using Raft.Engine.Storage;

namespace Raft.Engine.Consensus;

/// <summary>
/// The Raft state and rules of one server, and nothing else: no tasks, locks, clock, sockets or files.
/// Inputs are <see cref="Step"/> (a message), <see cref="Tick"/> (logical time), <see cref="Propose"/>,
/// <see cref="ReadIndex"/> and the admin calls; the output is a <see cref="Ready"/> batch that the host carries out
/// and then confirms with <see cref="Advance"/>. Given the same seed and inputs it produces the same outputs.
/// The rules are split by concern, one file each: Election (timers, PreVote, votes, CheckQuorum), Replication
/// (AppendEntries, flow control, the commit rule), Snapshots (compaction, InstallSnapshot), Membership (single-server
/// changes, learner catch-up), LeadershipTransfer (TimeoutNow) and Reads (ReadIndex).
/// </summary>
public sealed partial class RaftCore
{
    private readonly RaftOptions _options;
    private readonly RuleSwitches _rules;
    private readonly Random _random;
    private readonly RaftLog _log;
    private readonly ConfigurationHistory _configurations;
    private readonly List<RaftMessage> _outbox = [];
    private readonly List<RaftMessage> _replicationOutbox = [];
    private readonly List<ReadState> _readStates = [];
    private readonly List<RaftNotice> _notices = [];
    private readonly Dictionary<string, Progress> _progress = new(StringComparer.Ordinal);

    /// <summary>The last log index the host has made durable.</summary>
    private long _stableIndex;
    private HardState _persistedHardState;
    /// <summary>The last committed index handed to the host for applying.</summary>
    private long _applyHandedOut;
    private bool _broadcastPending;
    /// <summary>Ticks since start: the clock of catch-up rounds.</summary>
    private long _ticks;

    public RaftCore(string id, ClusterConfiguration configuration, RaftOptions options, PersistentState state, Random random)
        : this(id, configuration, options, state, random, RuleSwitches.Safe)
    {
    }

    /// <param name="configuration">The bootstrap configuration, used until the log or a snapshot says otherwise.</param>
    internal RaftCore(string id, ClusterConfiguration configuration, RaftOptions options, PersistentState state, Random random, RuleSwitches rules)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        options.Validate();
        Id = id;
        _options = options;
        _rules = rules;
        _random = random;
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
    public IReadOnlyList<FollowerStatus> Followers =>
        Role != Role.Leader
            ? []
            : SortedFollowers();

    /// <summary>Built on every status refresh of the host's loop: one array, no LINQ.</summary>
    private FollowerStatus[] SortedFollowers()
    {
        var followers = new FollowerStatus[_progress.Count];
        int i = 0;
        foreach ((string id, Progress p) in _progress)
        {
            followers[i++] = new FollowerStatus(id, p.Match, p.Next, p.State, p.InflightCount, p.RecentActive);
        }
        Array.Sort(followers, static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        return followers;
    }

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

    /// <summary>Feeds one message from a peer into the core. Rules for all servers (Figure 2) apply first.</summary>
    public void Step(RaftMessage message)
    {
        if (message.To != Id || message.From == Id || !AcceptSender(message))
        {
            return;
        }
        if (!ObserveTerm(message))
        {
            return;
        }
        switch (message)
        {
            case RequestVote request:
                HandleRequestVote(request);
                break;
            case RequestVoteResponse response:
                HandleVoteResponse(response);
                break;
            case AppendEntries append:
                HandleAppendEntries(append);
                break;
            case AppendEntriesResponse response:
                HandleAppendEntriesResponse(response);
                break;
            case InstallSnapshot install:
                HandleInstallSnapshot(install);
                break;
            case InstallSnapshotResponse response:
                HandleInstallSnapshotResponse(response);
                break;
            case TimeoutNow timeoutNow:
                HandleTimeoutNow(timeoutNow);
                break;
            case ReadIndexRequest request:
                HandleReadIndexRequest(request);
                break;
            case ReadIndexResponse response:
                HandleReadIndexResponse(response);
                break;
            default:
                throw new ArgumentException($"unknown message type {message.GetType().Name}", nameof(message));
        }
    }

    /// <summary>Offers a client command. Only a leader accepts it; others answer with the leader they know.</summary>
    public ProposeResult Propose(byte[] command)
    {
        if (Role != Role.Leader)
        {
            return ProposeResult.NotLeader(LeaderId);
        }
        if (_transferTarget != null)
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

    // ---- output ---------------------------------------------------------------------------

    public bool HasReady => HasOutputBesidesApplying || CommitIndex > _applyHandedOut;

    /// <summary>Whether the only pending output is committed entries to apply (the host may take new inputs first).</summary>
    public bool HasOnlyApplyWork => !HasOutputBesidesApplying && CommitIndex > _applyHandedOut;

    private bool HasOutputBesidesApplying =>
        (Role == Role.Leader && (_broadcastPending || _readHeartbeatPending))
        || _outbox.Count > 0
        || _replicationOutbox.Count > 0
        || _readStates.Count > 0
        || _notices.Count > 0
        || _snapshotToInstall != null
        || new HardState(Term, VotedFor) != _persistedHardState
        || _log.LastIndex > _stableIndex;

    /// <summary>Takes the pending output. The host must carry it out (see <see cref="Ready"/>) and then call <see cref="Advance"/>.</summary>
    public Ready TakeReady()
    {
        if (Role == Role.Leader)
        {
            if (_readHeartbeatPending)
            {
                BroadcastHeartbeat();
            }
            if (_broadcastPending)
            {
                BroadcastAppend();
            }
        }
        _broadcastPending = false;
        _readHeartbeatPending = false;

        HardState? hardState = null;
        var current = new HardState(Term, VotedFor);
        if (current != _persistedHardState)
        {
            hardState = _rules.PersistVote ? current : current with { VotedFor = null };
            _persistedHardState = current;
        }

        IReadOnlyList<LogEntry> toPersist = _log.LastIndex > _stableIndex ? _log.Slice(_stableIndex + 1, _log.LastIndex) : [];
        long applyTo = Math.Min(CommitIndex, _applyHandedOut + _options.MaxCommittedEntriesPerReady);
        IReadOnlyList<LogEntry> committed = applyTo > _applyHandedOut ? _log.Slice(_applyHandedOut + 1, applyTo) : [];
        _applyHandedOut = applyTo;

        // 10.2.1: a leader's replication messages may go out while its own write is in flight, but only once its term
        // and vote are durable (else a restarted leader could lead the same term again with different entries).
        bool early = hardState is null;
        IReadOnlyList<RaftMessage> messages = early ? Copy(_outbox) : [.. _replicationOutbox, .. _outbox];
        IReadOnlyList<RaftMessage> beforePersist = early ? Copy(_replicationOutbox) : [];
        if (!_rules.PromiseOnlyWhenDurable)
        {
            (beforePersist, messages) = ([.. beforePersist, .. messages], []);
        }
        var ready = new Ready(hardState, toPersist, messages, committed, _snapshotToInstall, Copy(_readStates), Copy(_notices))
        {
            MessagesBeforePersist = beforePersist,
        };
        _outbox.Clear();
        _replicationOutbox.Clear();
        _readStates.Clear();
        _notices.Clear();
        _snapshotToInstall = null;
        return ready;
    }

    /// <summary>A copy of a pending list for a Ready; the shared empty array when there is nothing (most batches).</summary>
    private static T[] Copy<T>(List<T> items) => items.Count == 0 ? [] : [.. items];

    /// <summary>Confirms that the host persisted, sent and applied a batch from <see cref="TakeReady"/>.</summary>
    public void Advance(Ready ready)
    {
        if (ready.EntriesToPersist.Count > 0)
        {
            LogEntry last = ready.EntriesToPersist[^1];
            if (_log.Matches(last.Index, last.Term))
            {
                _stableIndex = Math.Max(_stableIndex, last.Index);
            }
        }
        if (ready.SnapshotToInstall is { } snapshot)
        {
            AppliedIndex = Math.Max(AppliedIndex, snapshot.Metadata.Index);
        }
        if (ready.CommittedEntries.Count > 0)
        {
            AppliedIndex = Math.Max(AppliedIndex, ready.CommittedEntries[^1].Index);
            foreach (LogEntry entry in ready.CommittedEntries)
            {
                _appliedBytesSinceSnapshot += entry.Size;
            }
        }
        if (Role == Role.Leader)
        {
            // The leader counts itself towards commitment only once its own entries are durable.
            MaybeCommit();
        }
    }

    // ---- rules for all servers --------------------------------------------------------------

    /// <summary>
    /// Figure 2, rules for all servers: a message with a higher term makes this server a follower in that term.
    /// Returns false when the message must be dropped. PreVote traffic and the leader lease are the exceptions.
    /// </summary>
    private bool ObserveTerm(RaftMessage message)
    {
        if (message.Term > Term)
        {
            switch (message)
            {
                case RequestVote { Transfer: false } when InLeaderLease():
                    return false; // a live leader is known: a disruptive candidate is ignored (CheckQuorum)
                case RequestVote { PreVote: true }:
                case RequestVoteResponse { PreVote: true, Granted: true }:
                    return true; // pre-votes never change terms
                default:
                    BecomeFollower(message.Term, message is AppendEntries or InstallSnapshot ? message.From : null);
                    return true;
            }
        }
        if (message.Term < Term)
        {
            // Reply false with the current term, so the stale sender learns it (with PreVote and CheckQuorum nothing
            // else would raise a stale leader's term). Stale responses are simply dropped.
            switch (message)
            {
                case AppendEntries:
                    Send(new AppendEntriesResponse(Id, message.From, Term, false, 0, 0, 0, 0));
                    break;
                case InstallSnapshot install:
                    Send(new InstallSnapshotResponse(Id, message.From, Term, install.Metadata.Index, 0, false));
                    break;
                case RequestVote request:
                    Send(new RequestVoteResponse(Id, message.From, Term, false, request.PreVote));
                    break;
                case ReadIndexRequest read:
                    Send(new ReadIndexResponse(Id, message.From, Term, read.RequestId, 0, false));
                    break;
            }
            return false;
        }
        return true;
    }

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
        _lease?.Reset();
        _transferTarget = null;
        _catchUp = null;
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

    /// <summary>
    /// Queues a message. A leader's AppendEntries and snapshot chunks depend on nothing it has yet to persist but the
    /// entries they carry, so they are kept apart: they may leave before the batch's write (see <see cref="Ready"/>).
    /// </summary>
    private void Send(RaftMessage message) =>
        (Role == Role.Leader && message is AppendEntries or InstallSnapshot ? _replicationOutbox : _outbox).Add(message);
}

/// <summary>The leader's view of one follower, for status displays.</summary>
public readonly record struct FollowerStatus(string Id, long MatchIndex, long NextIndex, ReplicationState State, int Inflight, bool RecentActive);
