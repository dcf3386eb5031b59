using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Replication;
using Raft.Engine.Storage;

namespace Raft.Engine.Consensus;

/// <summary>
/// The Raft state and rules of one server, and nothing else: no tasks, locks, clock, sockets or files.
/// Inputs are <see cref="Step"/> (a message), <see cref="Tick"/> (logical time) and <see cref="Propose"/>;
/// the output is a <see cref="Ready"/> batch that the host carries out and then confirms with <see cref="Advance"/>.
/// Given the same seed and inputs it produces the same outputs.
/// The rules are split by concern: elections in RaftCore.Election.cs, replication and commitment in RaftCore.Replication.cs.
/// </summary>
public sealed partial class RaftCore
{
    private readonly RaftOptions _options;
    private readonly RuleSwitches _rules;
    private readonly Random _random;
    private readonly RaftLog _log;
    private readonly List<RaftMessage> _outbox = [];
    private readonly Dictionary<string, Progress> _progress = new(StringComparer.Ordinal);

    /// <summary>The last log index the host has made durable.</summary>
    private long _stableIndex;
    private HardState _persistedHardState;
    /// <summary>The last committed index handed to the host for applying.</summary>
    private long _applyHandedOut;
    private bool _broadcastPending;

    public RaftCore(string id, ClusterConfiguration configuration, RaftOptions options, PersistentState state, Random random)
        : this(id, configuration, options, state, random, RuleSwitches.Safe)
    {
    }

    internal RaftCore(string id, ClusterConfiguration configuration, RaftOptions options, PersistentState state, Random random, RuleSwitches rules)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        options.Validate();
        Id = id;
        Configuration = configuration;
        _options = options;
        _rules = rules;
        _random = random;
        _log = new RaftLog(0, 0, state.Entries);
        _stableIndex = _log.LastIndex;
        _persistedHardState = state.HardState;
        Term = state.HardState.Term;
        VotedFor = state.HardState.VotedFor;
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
    public ClusterConfiguration Configuration { get; private set; }
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
            : _progress.OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => new FollowerStatus(p.Key, p.Value.Match, p.Value.Next, p.Value.State, p.Value.InflightCount, p.Value.RecentActive))
                .ToList();

    // ---- inputs ---------------------------------------------------------------------------

    /// <summary>One logical clock tick: drives election timeouts, heartbeats and CheckQuorum.</summary>
    public void Tick()
    {
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
        if (message.To != Id || message.From == Id)
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
        var entry = new LogEntry(_log.LastIndex + 1, Term, EntryKind.Command, command);
        _log.Append(entry);
        // Sending is deferred to TakeReady so that proposals arriving together share AppendEntries messages.
        _broadcastPending = true;
        return new ProposeResult(true, entry.Index, entry.Term, Id);
    }

    // ---- output ---------------------------------------------------------------------------

    public bool HasReady =>
        (_broadcastPending && Role == Role.Leader)
        || _outbox.Count > 0
        || new HardState(Term, VotedFor) != _persistedHardState
        || _log.LastIndex > _stableIndex
        || CommitIndex > _applyHandedOut;

    /// <summary>Takes the pending output. The host must carry it out (see <see cref="Ready"/>) and then call <see cref="Advance"/>.</summary>
    public Ready TakeReady()
    {
        if (_broadcastPending && Role == Role.Leader)
        {
            BroadcastAppend();
        }
        _broadcastPending = false;

        HardState? hardState = null;
        var current = new HardState(Term, VotedFor);
        if (current != _persistedHardState)
        {
            hardState = _rules.PersistVote ? current : current with { VotedFor = null };
            _persistedHardState = current;
        }

        IReadOnlyList<LogEntry> toPersist = _log.LastIndex > _stableIndex ? _log.Slice(_stableIndex + 1, _log.LastIndex) : [];
        IReadOnlyList<LogEntry> committed = CommitIndex > _applyHandedOut ? _log.Slice(_applyHandedOut + 1, CommitIndex) : [];
        _applyHandedOut = CommitIndex;

        RaftMessage[] messages = [.. _outbox];
        _outbox.Clear();
        return new Ready(hardState, toPersist, messages, committed);
    }

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
        if (ready.CommittedEntries.Count > 0)
        {
            AppliedIndex = Math.Max(AppliedIndex, ready.CommittedEntries[^1].Index);
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
                case RequestVote when InLeaderLease():
                    return false; // a live leader is known: a disruptive candidate is ignored (CheckQuorum)
                case RequestVote { PreVote: true }:
                case RequestVoteResponse { PreVote: true, Granted: true }:
                    return true; // pre-votes never change terms
                default:
                    BecomeFollower(message.Term, message is AppendEntries ? message.From : null);
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
                case RequestVote request:
                    Send(new RequestVoteResponse(Id, message.From, Term, false, request.PreVote));
                    break;
            }
            return false;
        }
        return true;
    }

    private void BecomeFollower(long term, string? leader)
    {
        if (term > Term)
        {
            Term = term;
            VotedFor = null;
        }
        Role = Role.Follower;
        LeaderId = leader;
        _progress.Clear();
        ResetElectionTimer();
    }

    private void Send(RaftMessage message) => _outbox.Add(message);
}

/// <summary>The leader's view of one follower, for status displays.</summary>
public readonly record struct FollowerStatus(string Id, long MatchIndex, long NextIndex, ReplicationState State, int Inflight, bool RecentActive);
