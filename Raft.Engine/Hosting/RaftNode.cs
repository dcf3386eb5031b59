using System.Diagnostics;
using System.Threading.Channels;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Engine.Hosting;

/// <summary>
/// Hosts a <see cref="RaftCore"/>: one loop feeds it ticks, messages and requests from a channel and carries out its
/// <see cref="Ready"/> batches in Raft's order (persist, send, apply, answer, advance). Proposals that arrive together
/// are persisted together (group commit). Client waits complete when their entry is applied or their read is safe.
/// </summary>
public sealed class RaftNode : IAsyncDisposable
{
    private readonly RaftNodeOptions _options;
    private readonly ILogStore _store;
    private readonly IStateMachine _stateMachine;
    private readonly ITransport _transport;
    private readonly TimeProvider _time;
    private readonly Channel<Input> _inputs = Channel.CreateUnbounded<Input>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();

    // Waiters; touched only by the loop.
    private readonly Dictionary<long, PendingProposal> _proposals = [];
    private readonly Dictionary<long, TaskCompletionSource> _readsAwaitingIndex = [];
    private readonly List<(long Index, TaskCompletionSource Completion)> _readsAwaitingApply = [];
    private readonly List<PendingAdmin> _admin = [];
    private readonly List<AdminInput> _adminRetries = [];
    private readonly List<Action> _completions = [];
    private readonly List<TaskCompletionSource> _snapshotWaiters = [];
    private Task? _snapshotTask;
    /// <summary>A snapshot was started and its <see cref="SnapshotStoredInput"/> has not been handled yet.</summary>
    private bool _snapshotPending;
    /// <summary>Read-index requests in the order made, each with the time after which it has waited too long.</summary>
    private readonly Queue<(long RequestId, DateTimeOffset Deadline)> _readDeadlines = new();
    /// <summary>When each read still waiting for its index last asked the leader for it.</summary>
    private readonly Dictionary<long, DateTimeOffset> _readAskedAt = [];
    private long _nextReadId;
    private long _lastApplied;
    private readonly WriteTracer _tracer;
    /// <summary>The Ready being carried out, and when it was taken.</summary>
    private Ready? _readyInHand;
    private long _readyTakenAt;

    // Inputs handed to the loop and not yet taken (bounded, see RaftNodeOptions).
    private int _queuedRequests;
    private int _queuedMessages;
    private long _droppedMessages;

    private RaftCore? _core;
    private ReadyProcessor? _processor;
    private Task? _loop;
    private ITimer? _ticker;
    private TickClock? _clock;
    private volatile RaftNodeStatus? _status;
    private volatile Exception? _failure;
    private volatile StorageFullException? _storageFull;
    /// <summary>Set by <see cref="CrashAsync"/>: from then on the node sends, applies and answers nothing.</summary>
    private volatile bool _crashed;
    private int _disposed;

    public RaftNode(RaftNodeOptions options, ILogStore store, IStateMachine stateMachine, ITransport transport, TimeProvider? time = null)
    {
        if (options.MaxQueuedRequests < 1 || options.MaxQueuedMessages < 1 || options.ReadIndexTimeout <= TimeSpan.Zero || options.TickInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException("MaxQueuedRequests, MaxQueuedMessages, ReadIndexTimeout and TickInterval must be positive.", nameof(options));
        }
        _options = options;
        _store = store;
        _stateMachine = stateMachine;
        _transport = transport;
        _time = time ?? TimeProvider.System;
        _tracer = new WriteTracer(options.Id);
    }

    public string Id => _options.Id;

    /// <summary>Raised on the node's loop for every change; handlers must be quick and must not block.</summary>
    public event Action<RaftEvent>? EventRaised;

    public RaftNodeStatus Status => _status ?? throw new InvalidOperationException("the node has not started");

    /// <summary>Completes when the loop ends; faulted if the node stopped because of an error (see <see cref="Failure"/>).</summary>
    public Task Completion => _loop ?? Task.CompletedTask;

    /// <summary>
    /// Why the node's loop died, or null while it runs. A failed node takes no more input: every call throws at once,
    /// every waiter was failed, and its host is expected to report it unhealthy and stop (Raft.Node exits non-zero).
    /// </summary>
    public Exception? Failure => _failure;

    /// <summary>
    /// Set while the store is full: the node's write is retried until space returns (the node sends nothing that
    /// promises it meanwhile) and new proposals are refused at once with this exception.
    /// </summary>
    public StorageFullException? StorageProblem => _storageFull;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_core != null)
        {
            throw new InvalidOperationException("already started");
        }
        PersistentState state = await _store.LoadAsync(cancellationToken);
        var bootstrap = _options.Members.Count > 0 ? new ClusterConfiguration(_options.Members, null, _options.Addresses) : ClusterConfiguration.Empty;
        if (state.HardState.Term == 0 && state.Entries.Count == 0 && state.Snapshot is null && _options.Members.Count > 0)
        {
            state = state with { Snapshot = await BootstrapAsync(bootstrap, cancellationToken) };
        }
        if (state.Snapshot is { } snapshot)
        {
            await _stateMachine.RestoreSnapshotAsync(new MemoryStream(snapshot.Data, writable: false), cancellationToken);
        }
        var random = new Random(_options.RandomSeed ?? Random.Shared.Next());
        _core = new RaftCore(_options.Id, bootstrap, _options.Raft, state, random) { SnapshotCheck = _stateMachine.CheckSnapshot };
        _processor = new ReadyProcessor(_store, _stateMachine, new ReadyHost(this));
        _status = RaftNodeStatus.Of(_core);
        _loop = Task.Run(RunAsync, CancellationToken.None);
        _clock = new TickClock(_time, _options.TickInterval);
        _ticker = _time.CreateTimer(_ => _inputs.Writer.TryWrite(TickInput.Instance), null, _options.TickInterval, _options.TickInterval);
    }

    /// <summary>
    /// The core's clock may lag wall time (a pause, a stall): past the lease's drift margin the lease it measures in
    /// ticks may have run out, so it is voided until a round sent from now on is answered.
    /// </summary>
    private void CheckClock(RaftCore core)
    {
        if (_clock!.Behind > _options.Raft.LeaseDriftMarginTicks)
        {
            core.VoidLease();
            _clock.Resync();
        }
    }

    /// <summary>
    /// A new cluster's first start: the initial configuration is stored as a snapshot at index 0 (of the state machine
    /// as it starts), so that the log and its snapshot are the one record of who the members are. After this the node
    /// never depends on <see cref="RaftNodeOptions.Members"/> again: a restart reads the store.
    /// </summary>
    private async Task<Snapshot> BootstrapAsync(ClusterConfiguration configuration, CancellationToken cancellationToken)
    {
        using var initial = new MemoryStream();
        await _stateMachine.CaptureSnapshot().WriteToAsync(initial, cancellationToken);
        var snapshot = new Snapshot(new SnapshotMetadata(0, 0, configuration), initial.ToArray());
        await _store.SaveSnapshotAsync(snapshot, keepLaterEntries: true, cancellationToken);
        return snapshot;
    }

    /// <summary>Peer messages dropped because <see cref="RaftNodeOptions.MaxQueuedMessages"/> were already waiting.</summary>
    public long DroppedMessages => Interlocked.Read(ref _droppedMessages);

    /// <summary>
    /// Hands a message from a peer to the node (called by the transport). When the loop is that far behind, the message
    /// is dropped, as the network might have: Raft resends what matters.
    /// </summary>
    public void Receive(RaftMessage message)
    {
        if (Interlocked.Increment(ref _queuedMessages) > _options.MaxQueuedMessages || !_inputs.Writer.TryWrite(new StepInput(message)))
        {
            Interlocked.Decrement(ref _queuedMessages);
            Interlocked.Increment(ref _droppedMessages);
        }
    }

    /// <summary>
    /// Proposes a command and waits until it is applied, returning the state machine's answer.
    /// Throws <see cref="NotLeaderException"/> on a follower (or during a leadership transfer) and
    /// <see cref="ProposalDroppedException"/> when a new leader overwrote the entry.
    /// Cancelling stops the wait, not the proposal: it may still be applied.
    /// </summary>
    public async Task<byte[]> ProposeAsync(byte[] command, CancellationToken cancellationToken = default)
    {
        if (_storageFull is { } full)
        {
            throw full; // nothing was proposed: the caller may retry when the node's disk has room again
        }
        WriteTrace? trace = WriteTrace.Begin(Id);
        using Activity? span = trace?.Write;
        try
        {
            var proposal = new ProposalInput(command, new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously), trace);
            Enqueue(proposal);
            return await proposal.Completion.Task.WaitAsync(cancellationToken);
        }
        catch (Exception e) when (span != null)
        {
            span.SetStatus(ActivityStatusCode.Error, e.Message);
            span.SetTag("error.type", e.GetType().Name);
            throw;
        }
    }

    /// <summary>
    /// A linearizable read barrier (ReadIndex): completes once this node's state machine reflects every write that
    /// completed before the call, so a read of it right after is linearizable. Works on followers too (the leader is
    /// asked for the index). Throws <see cref="NotLeaderException"/> when no leader can confirm it.
    /// </summary>
    public async Task LinearizableReadAsync(CancellationToken cancellationToken = default)
    {
        var read = new ReadInput(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Enqueue(read);
        await read.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Adds a server: it joins as a learner, catches up, then becomes a voter. Completes when that is committed.
    /// <paramref name="address"/> is recorded in the configuration, where transports look peers up.
    /// </summary>
    public Task AddServerAsync(string id, string? address = null, CancellationToken cancellationToken = default) =>
        AdminAsync(new AdminInput(AdminKind.AddServer, id) { Address = address }, cancellationToken);

    /// <summary>Removes a server (the leader itself included). Completes when the new configuration is committed.</summary>
    public Task RemoveServerAsync(string id, CancellationToken cancellationToken = default) =>
        AdminAsync(new AdminInput(AdminKind.RemoveServer, id), cancellationToken);

    /// <summary>Hands leadership to <paramref name="target"/>. Completes when it leads.</summary>
    public Task TransferLeadershipAsync(string target, CancellationToken cancellationToken = default) =>
        AdminAsync(new AdminInput(AdminKind.TransferLeadership, target), cancellationToken);

    /// <summary>Takes a snapshot now (of the state as applied) and compacts the log. Completes when it is stored.</summary>
    public Task TakeSnapshotAsync(CancellationToken cancellationToken = default) =>
        AdminAsync(new AdminInput(AdminKind.TakeSnapshot, ""), cancellationToken);

    /// <summary>
    /// Up to <paramref name="max"/> log entries from <paramref name="from"/> on (clamped to what the node holds in memory),
    /// read on the node's loop, for observers such as the event hub.
    /// </summary>
    public async Task<IReadOnlyList<LogEntry>> ReadLogAsync(long from, int max, CancellationToken cancellationToken = default)
    {
        var read = new LogReadInput(from, max, new TaskCompletionSource<IReadOnlyList<LogEntry>>(TaskCreationOptions.RunContinuationsAsynchronously));
        Enqueue(read);
        return await read.Completion.Task.WaitAsync(cancellationToken);
    }

    private async Task AdminAsync(AdminInput input, CancellationToken cancellationToken)
    {
        Enqueue(input);
        await input.Completion.Task.WaitAsync(cancellationToken);
    }

    private void Enqueue(RequestInput input)
    {
        if (_failure is { } failure)
        {
            throw new InvalidOperationException($"{Id} has failed and takes no more requests: {failure.Message}", failure);
        }
        if (Interlocked.Increment(ref _queuedRequests) > _options.MaxQueuedRequests)
        {
            Interlocked.Decrement(ref _queuedRequests);
            throw new NodeOverloadedException($"{Id} already has {_options.MaxQueuedRequests} requests waiting; retry later");
        }
        if (!_inputs.Writer.TryWrite(input))
        {
            Interlocked.Decrement(ref _queuedRequests);
            throw new ObjectDisposedException(nameof(RaftNode));
        }
    }

    /// <summary>
    /// Stops the node the way a kill would: at once, without finishing the batch in hand. Nothing more is sent, applied
    /// or answered (callers get an <see cref="ObjectDisposedException"/> saying it crashed); a write already handed to
    /// the store may or may not land, as with a real crash. <paramref name="abandonStore"/> runs once the node is marked
    /// crashed (e.g. <see cref="SqliteLogStore.AbandonAsync"/>, which drops queued writes). The node cannot be used
    /// afterwards; start a new one on the same files.
    /// </summary>
    public async ValueTask CrashAsync(Func<ValueTask>? abandonStore = null)
    {
        _crashed = true;
        if (abandonStore != null)
        {
            await abandonStore();
        }
        await DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        if (_ticker != null)
        {
            await _ticker.DisposeAsync();
        }
        _inputs.Writer.TryComplete();
        await _stopping.CancelAsync();
        if (_loop != null)
        {
            try
            {
                await _loop;
            }
            catch (OperationCanceledException)
            {
            }
            catch (Exception) when (_failure != null || _crashed)
            {
                // already reported through Failure and Completion, or the node was crashed on purpose
            }
        }
        if (_snapshotTask != null)
        {
            await _snapshotTask; // never throws: it reports through the inputs
        }
        FailAllWaiters(new ObjectDisposedException(nameof(RaftNode), "the node stopped"));
        _stopping.Dispose();
    }

    // ---- the loop -------------------------------------------------------------------------

    private async Task RunAsync()
    {
        RaftCore core = _core!;
        ChannelReader<Input> reader = _inputs.Reader;
        CancellationToken stopping = _stopping.Token;
        Activity.Current = null; // the loop's work belongs to no caller's trace (spans it emits name their parent)
        try
        {
            // Work left over (committed entries not yet applied) keeps the loop going without new inputs.
            while (core.HasReady || await reader.WaitToReadAsync(stopping))
            {
                RaftNodeStatus before = _status!;
                // Take everything that is waiting: proposals that arrive together go out and to disk together.
                for (int taken = 0; taken < 4096 && reader.TryRead(out Input? input); taken++)
                {
                    Feed(core, input);
                }
                if (!_tracer.Idle)
                {
                    _tracer.FollowersProgressed(core.Followers); // replies just stepped may have moved them
                }
                await CarryOutReadyAsync(core, stopping);
                RetryAdmin(core);
                await CarryOutReadyAsync(core, stopping);
                if (core.IsSnapshotDue)
                {
                    StartSnapshot(core);
                }
                CompleteAdminWaiters(core);
                RaftNodeStatus after = RaftNodeStatus.Of(core);
                _status = after;
                // Callers resume only now, so that what they read from Status is at least as new as their answer.
                foreach (Action complete in _completions)
                {
                    complete();
                }
                _completions.Clear();
                PublishStateChanges(before, after);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException && !_crashed)
        {
            // Fail fast and visibly: no more inputs (they would pile up unread), no more ticks, every waiter answered.
            _failure = e;
            _inputs.Writer.TryComplete(e);
            _ticker?.Dispose();
            FailAllWaiters(e);
            throw;
        }
    }

    private void Feed(RaftCore core, Input input)
    {
        if (input is RequestInput)
        {
            Interlocked.Decrement(ref _queuedRequests);
        }
        switch (input)
        {
            case TickInput:
                CheckClock(core);
                core.Tick();
                _clock!.Delivered();
                ExpireReadIndexWaits(core);
                break;
            case StepInput step:
                Interlocked.Decrement(ref _queuedMessages);
                core.Step(step.Message);
                break;
            case ProposalInput proposal:
                ProposeResult result = core.Propose(proposal.Command);
                if (result.Accepted)
                {
                    if (_proposals.Remove(result.Index, out PendingProposal? overwritten))
                    {
                        // Left from an earlier term of leading here: a new leader's log replaced that entry, and now
                        // this index holds a new one. Answered now, or the caller would wait forever.
                        _tracer.Dropped(result.Index, "overwritten by a new leader's entry");
                        overwritten.Completion.TrySetException(new ProposalDroppedException(result.Index, overwritten.Term));
                    }
                    _proposals[result.Index] = new PendingProposal(result.Term, proposal.Completion);
                    if (proposal.Trace != null)
                    {
                        _tracer.Proposed(proposal.Trace, result.Index, result.Term);
                    }
                }
                else if (result.Refusal == ProposeRefusal.Overloaded)
                {
                    proposal.Completion.TrySetException(new NodeOverloadedException(
                        $"{Id} holds {core.LastIndex - core.CommitIndex} entries that no majority has stored yet; retry once the followers catch up"));
                }
                else
                {
                    string? reason = result.Refusal == ProposeRefusal.TransferInProgress ? $"{Id} is handing leadership over; retry shortly" : null;
                    proposal.Completion.TrySetException(new NotLeaderException(Id, result.LeaderHint, reason));
                }
                break;
            case LogReadInput logRead:
                long first = Math.Max(logRead.From, core.FirstIndex);
                long last = Math.Min(core.LastIndex, first + logRead.Max - 1);
                LogEntry[] entries = new LogEntry[Math.Max(0, last - first + 1)];
                for (long i = first; i <= last; i++)
                {
                    entries[i - first] = core.EntryAt(i);
                }
                logRead.Completion.TrySetResult(entries);
                break;
            case ReadInput read:
                long requestId = ++_nextReadId;
                _readsAwaitingIndex[requestId] = read.Completion;
                _readDeadlines.Enqueue((requestId, _time.GetUtcNow() + _options.ReadIndexTimeout));
                _readAskedAt[requestId] = _time.GetUtcNow();
                CheckClock(core); // a lease is judged by the clock at the moment the read is served, not at the last tick
                core.ReadIndex(requestId);
                break;
            case AdminInput { Kind: AdminKind.TakeSnapshot } snapshot:
                StartSnapshot(core);
                if (_snapshotPending)
                {
                    _snapshotWaiters.Add(snapshot.Completion); // answered once it is stored
                }
                else
                {
                    _completions.Add(() => snapshot.Completion.TrySetResult()); // nothing new to snapshot
                }
                break;
            case SnapshotStoredInput stored:
                OnSnapshotStored(core, stored);
                break;
            case AdminInput admin:
                StartAdmin(core, admin);
                break;
        }
    }

    /// <summary>
    /// Hands an admin request to the core. A new leader refuses changes until it has committed in its term, which takes
    /// a round trip: such a request waits here (up to four election timeouts) instead of failing.
    /// </summary>
    private void StartAdmin(RaftCore core, AdminInput admin)
    {
        AdminResult answer = admin.Kind switch
        {
            AdminKind.AddServer => core.AddServer(admin.ServerId, admin.Address),
            AdminKind.RemoveServer => core.RemoveServer(admin.ServerId),
            _ => core.TransferLeadership(admin.ServerId),
        };
        if (answer.Accepted)
        {
            _admin.Add(new PendingAdmin(admin, core.Term));
            return;
        }
        admin.FirstRefusal ??= _time.GetUtcNow();
        TimeSpan patience = _options.TickInterval * _options.Raft.ElectionTicks * 4;
        if (answer.Status == AdminStatus.LeaderNotReady && _time.GetUtcNow() - admin.FirstRefusal < patience)
        {
            _adminRetries.Add(admin);
            return;
        }
        admin.Completion.TrySetException(new RaftAdminException(answer.Status, answer.Message, answer.LeaderHint));
    }

    private void RetryAdmin(RaftCore core)
    {
        if (_adminRetries.Count == 0)
        {
            return;
        }
        AdminInput[] waiting = [.. _adminRetries];
        _adminRetries.Clear();
        foreach (AdminInput admin in waiting)
        {
            StartAdmin(core, admin);
        }
    }

    /// <summary>
    /// Carries out Ready batches until there are none, or until inputs are waiting: a node applying a long backlog (a
    /// restart, a catch-up) still answers votes and appends between batches, as the core hands out committed entries
    /// in bounded batches (<see cref="RaftOptions.MaxCommittedEntriesPerReady"/>).
    /// </summary>
    private async Task CarryOutReadyAsync(RaftCore core, CancellationToken cancellationToken)
    {
        while (core.HasReady)
        {
            if (core.HasOnlyApplyWork && _inputs.Reader.TryPeek(out _))
            {
                return;
            }
            Ready ready = core.TakeReady();
            _readyInHand = ready;
            _readyTakenAt = Stopwatch.GetTimestamp();
            _tracer.Taken(ready);
            await _processor!.ProcessAsync(core, ready, cancellationToken);
            _readyInHand = null;
            _storageFull = null;
            CompleteReadsUpTo(core.AppliedIndex);
            if (ready.EntriesToPersist.Count > 0)
            {
                LogEntry last = ready.EntriesToPersist[^1];
                Raise(new EntriesAppended(Id, _time.GetUtcNow(), ready.EntriesToPersist[0].Index, last.Index, last.Term));
            }
        }
    }

    /// <summary>Answers decided so far go out now, after Status reflects them (see the loop).</summary>
    private void ReleaseCompletions(RaftCore core)
    {
        if (_completions.Count == 0)
        {
            return;
        }
        // Mid-batch the core has not counted what was just applied: the status says it, so callers see their write.
        RaftNodeStatus status = RaftNodeStatus.Of(core);
        _status = status.AppliedIndex < _lastApplied ? status with { AppliedIndex = _lastApplied } : status;
        foreach (Action complete in _completions)
        {
            complete();
        }
        _completions.Clear();
    }

    /// <summary>The node's side of carrying out a Ready: the transport, waiters and events.</summary>
    private sealed class ReadyHost(RaftNode node) : IReadyHost
    {
        public void Send(RaftMessage message)
        {
            if (node._crashed)
            {
                throw new OperationCanceledException($"{node.Id} crashed"); // stops the batch where it is
            }
            node._transport.Send(message);
        }

        public void OnApplied(LogEntry entry, byte[] result) => node.OnApplied(entry, result);

        public void OnSnapshotRestored(Snapshot snapshot)
        {
            node.FailProposalsUpTo(snapshot.Metadata.Index);
            node.Raise(new SnapshotInstalled(node.Id, node._time.GetUtcNow(), snapshot.Metadata.Index, snapshot.Metadata.Term, snapshot.Data.Length, node._core!.LeaderId)
            {
                Duration = Stopwatch.GetElapsedTime(node._readyTakenAt), // stored and restored: the batch began with it
            });
        }

        public void OnReadState(ReadState read) => node.OnReadState(read);

        public void OnNotice(RaftNotice notice) => node.OnNotice(notice);

        public async ValueTask WaitForStorageAsync(StorageFullException full, int attempt, CancellationToken cancellationToken)
        {
            node._storageFull = full;
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 * attempt)), node._time, cancellationToken);
        }

        public void AfterStep(ReadyStep step)
        {
            if (node._crashed)
            {
                throw new OperationCanceledException($"{node.Id} crashed");
            }
            node._tracer.AfterStep(step, node._readyInHand!);
            if (step == ReadyStep.AppliedWhileWriting)
            {
                // Writes committed earlier are answered now, not after this batch's own (unrelated) entries are durable.
                node.ReleaseCompletions(node._core!);
            }
        }
    }

    private void OnApplied(LogEntry entry, byte[] result)
    {
        _lastApplied = entry.Index;
        if (_proposals.Remove(entry.Index, out PendingProposal? waiter))
        {
            if (waiter.Term == entry.Term)
            {
                _completions.Add(() => waiter.Completion.TrySetResult(result));
            }
            else
            {
                _tracer.Dropped(entry.Index, "overwritten by a new leader's entry");
                waiter.Completion.TrySetException(new ProposalDroppedException(entry.Index, waiter.Term));
            }
        }
        _tracer.Applied(entry);
        Raise(new EntryApplied(Id, _time.GetUtcNow(), entry.Index, entry.Term, entry.Kind));
    }

    /// <summary>A snapshot replaced the log up to <paramref name="index"/>: proposals there were not applied here.</summary>
    private void FailProposalsUpTo(long index)
    {
        foreach (long pending in _proposals.Keys.Where(i => i <= index).ToList())
        {
            _proposals.Remove(pending, out PendingProposal? waiter);
            _tracer.Dropped(pending, "replaced by a snapshot from the leader");
            waiter!.Completion.TrySetException(new ProposalDroppedException(pending, waiter.Term));
        }
    }

    /// <summary>
    /// Starts a snapshot of the state as applied now: the state machine is captured here (cheaply), then serialized and
    /// stored off the loop; the core compacts when <see cref="SnapshotStoredInput"/> comes back. One at a time.
    /// </summary>
    private void StartSnapshot(RaftCore core)
    {
        if (_snapshotPending || core.AppliedIndex <= core.SnapshotIndex)
        {
            return;
        }
        _snapshotPending = true;
        SnapshotMetadata metadata = core.SnapshotMetadataAt(core.AppliedIndex);
        IStateCapture capture = _stateMachine.CaptureSnapshot();
        CancellationToken stopping = _stopping.Token;
        long started = Stopwatch.GetTimestamp();
        _snapshotTask = Task.Run(async () =>
        {
            try
            {
                using var buffer = new MemoryStream();
                await capture.WriteToAsync(buffer, stopping);
                var snapshot = new Snapshot(metadata, buffer.ToArray());
                await _store.SaveSnapshotAsync(snapshot, keepLaterEntries: true, stopping); // of applied state: the log goes on after it
                _inputs.Writer.TryWrite(new SnapshotStoredInput(snapshot, null, Stopwatch.GetElapsedTime(started)));
            }
            catch (Exception e)
            {
                _inputs.Writer.TryWrite(new SnapshotStoredInput(null, e, Stopwatch.GetElapsedTime(started)));
            }
        }, CancellationToken.None);
    }

    private void OnSnapshotStored(RaftCore core, SnapshotStoredInput stored)
    {
        _snapshotPending = false;
        if (stored.Error is { } error)
        {
            if (error is OperationCanceledException or ObjectDisposedException)
            {
                return; // stopping
            }
            if (error is StorageFullException)
            {
                // A snapshot is an optimisation: without room for it the log just stays longer. Tried again when due.
                foreach (TaskCompletionSource waiter in _snapshotWaiters)
                {
                    waiter.TrySetException(error);
                }
                _snapshotWaiters.Clear();
                return;
            }
            throw new IOException($"{Id} could not store a snapshot: {error.Message}", error);
        }
        Snapshot snapshot = stored.Snapshot!;
        // A newer snapshot from the leader may have been installed meanwhile: then this one is obsolete.
        if (snapshot.Metadata.Index > core.SnapshotIndex)
        {
            core.OnSnapshotTaken(snapshot);
            Raise(new SnapshotTaken(Id, _time.GetUtcNow(), snapshot.Metadata.Index, snapshot.Metadata.Term, snapshot.Data.Length) { Duration = stored.Duration });
        }
        foreach (TaskCompletionSource waiter in _snapshotWaiters)
        {
            _completions.Add(() => waiter.TrySetResult());
        }
        _snapshotWaiters.Clear();
    }

    /// <summary>
    /// A follower's read whose index has not come (its request or the answer was lost, as messages may be) asks the
    /// leader again every <see cref="ReadIndexRetryInterval"/>; one that gets no index within
    /// <see cref="RaftNodeOptions.ReadIndexTimeout"/> fails instead of waiting forever.
    /// </summary>
    private void ExpireReadIndexWaits(RaftCore core)
    {
        if (_readDeadlines.Count == 0)
        {
            return;
        }
        DateTimeOffset now = _time.GetUtcNow();
        if (core.Role != Role.Leader && core.LeaderId != null)
        {
            foreach ((long requestId, DateTimeOffset askedAt) in _readAskedAt.Where(r => now - r.Value >= ReadIndexRetryInterval).ToList())
            {
                _readAskedAt[requestId] = now;
                core.ReadIndex(requestId); // the leader answers each ask; the first answer completes the read
            }
        }
        while (_readDeadlines.TryPeek(out (long RequestId, DateTimeOffset Deadline) oldest))
        {
            if (_readsAwaitingIndex.ContainsKey(oldest.RequestId) && oldest.Deadline > now)
            {
                return; // deadlines grow with request ids: the rest are younger
            }
            _readDeadlines.Dequeue();
            _readAskedAt.Remove(oldest.RequestId);
            if (_readsAwaitingIndex.Remove(oldest.RequestId, out TaskCompletionSource? waiter))
            {
                waiter.TrySetException(new NotLeaderException(Id, core.LeaderId,
                    $"{Id} got no read index from {core.LeaderId ?? "a leader"} within {_options.ReadIndexTimeout.TotalMilliseconds:F0} ms; retry"));
            }
        }
    }

    /// <summary>How long a follower's read waits for its index before asking again: an election timeout, or a third of the read timeout if that is shorter.</summary>
    private TimeSpan ReadIndexRetryInterval =>
        TimeSpan.FromTicks(Math.Min(_options.TickInterval.Ticks * _options.Raft.ElectionTicks, _options.ReadIndexTimeout.Ticks / 3));

    private void OnReadState(ReadState read)
    {
        _readAskedAt.Remove(read.RequestId);
        if (!_readsAwaitingIndex.Remove(read.RequestId, out TaskCompletionSource? waiter))
        {
            return;
        }
        if (read.Ok)
        {
            _readsAwaitingApply.Add((read.Index, waiter));
        }
        else
        {
            waiter.TrySetException(new NotLeaderException(Id, read.LeaderHint, "no leader could confirm the read; retry on the leader"));
        }
    }

    private void CompleteReadsUpTo(long applied)
    {
        for (int i = _readsAwaitingApply.Count - 1; i >= 0; i--)
        {
            if (_readsAwaitingApply[i].Index <= applied)
            {
                TaskCompletionSource read = _readsAwaitingApply[i].Completion;
                _completions.Add(() => read.TrySetResult());
                _readsAwaitingApply.RemoveAt(i);
            }
        }
    }

    private void OnNotice(RaftNotice notice)
    {
        if (notice is not (CatchUpFailed or TransferAbandoned))
        {
            Raise(new ProblemDetected(Id, _time.GetUtcNow(), notice));
            return;
        }
        (AdminKind kind, string id, string message) = notice switch
        {
            CatchUpFailed failed => (AdminKind.AddServer, failed.ServerId, $"{failed.ServerId} did not catch up: {failed.Reason}"),
            TransferAbandoned abandoned => (AdminKind.TransferLeadership, abandoned.Target, $"{abandoned.Target} did not take over within an election timeout"),
            _ => (AdminKind.TakeSnapshot, "", notice.ToString()),
        };
        foreach (PendingAdmin pending in _admin.Where(a => a.Input.Kind == kind && a.Input.ServerId == id).ToList())
        {
            pending.Input.Completion.TrySetException(new RaftAdminException(AdminStatus.Abandoned, message, Id));
            _admin.Remove(pending);
        }
        Raise(new OperationAbandoned(Id, _time.GetUtcNow(), notice));
    }

    /// <summary>Admin requests finish when their outcome is committed (or visible), and fail if leadership moved on.</summary>
    private void CompleteAdminWaiters(RaftCore core)
    {
        foreach (PendingAdmin pending in _admin.ToList())
        {
            string id = pending.Input.ServerId;
            bool done = pending.Input.Kind switch
            {
                AdminKind.AddServer => core.CommittedConfiguration.IsVoter(id),
                AdminKind.RemoveServer => !core.CommittedConfiguration.IsMember(id),
                _ => core.LeaderId == id && (core.Term > pending.Term || id == Id), // to itself: it already leads
            };
            if (done)
            {
                _completions.Add(() => pending.Input.Completion.TrySetResult());
                _admin.Remove(pending);
            }
            else if (core.Term > pending.Term && (pending.Input.Kind != AdminKind.TransferLeadership || core.LeaderId is { } other && other != id))
            {
                // A new term began: this leader's change may or may not survive; the caller must check and retry.
                pending.Input.Completion.TrySetException(new RaftAdminException(AdminStatus.NotLeader, $"leadership changed before the request to {pending.Input.Kind} {id} was committed; check and retry", core.LeaderId));
                _admin.Remove(pending);
            }
        }
    }

    private void PublishStateChanges(RaftNodeStatus before, RaftNodeStatus after)
    {
        DateTimeOffset now = _time.GetUtcNow();
        if (after.Term != before.Term)
        {
            Raise(new TermChanged(Id, now, after.Term));
        }
        if (after.VotedFor != null && (after.VotedFor != before.VotedFor || after.Term != before.Term))
        {
            Raise(new VoteCast(Id, now, after.Term, after.VotedFor));
        }
        if (after.Role != before.Role)
        {
            Raise(new RoleChanged(Id, now, after.Role, after.Term));
        }
        if (after.LeaderId != before.LeaderId)
        {
            Raise(new LeaderChanged(Id, now, after.LeaderId, after.Term));
        }
        if (after.CommitIndex != before.CommitIndex)
        {
            Raise(new CommitAdvanced(Id, now, after.CommitIndex));
        }
        if (!after.Configuration.Equals(before.Configuration) || !after.CommittedConfiguration.Equals(before.CommittedConfiguration))
        {
            Raise(new ConfigurationChanged(Id, now, after.Configuration, after.Configuration.Equals(after.CommittedConfiguration)));
        }
    }

    private void Raise(RaftEvent raftEvent) => EventRaised?.Invoke(raftEvent);

    private void FailAllWaiters(Exception reason)
    {
        foreach (Action complete in _completions)
        {
            complete(); // answers that were already decided still go out
        }
        _completions.Clear();
        foreach (PendingProposal waiter in _proposals.Values)
        {
            waiter.Completion.TrySetException(reason);
        }
        _proposals.Clear();
        _tracer.Clear();
        foreach (TaskCompletionSource waiter in _readsAwaitingIndex.Values.Concat(_readsAwaitingApply.Select(r => r.Completion)))
        {
            waiter.TrySetException(reason);
        }
        _readsAwaitingIndex.Clear();
        _readDeadlines.Clear();
        _readAskedAt.Clear();
        _readsAwaitingApply.Clear();
        foreach (PendingAdmin pending in _admin)
        {
            pending.Input.Completion.TrySetException(reason);
        }
        _admin.Clear();
        foreach (TaskCompletionSource waiter in _snapshotWaiters)
        {
            waiter.TrySetException(reason);
        }
        _snapshotWaiters.Clear();
        foreach (AdminInput waiting in _adminRetries)
        {
            waiting.Completion.TrySetException(reason);
        }
        _adminRetries.Clear();
        while (_inputs.Reader.TryRead(out Input? input))
        {
            switch (input)
            {
                case ProposalInput proposal:
                    proposal.Completion.TrySetException(reason);
                    break;
                case ReadInput read:
                    read.Completion.TrySetException(reason);
                    break;
                case AdminInput admin:
                    admin.Completion.TrySetException(reason);
                    break;
                case LogReadInput logRead:
                    logRead.Completion.TrySetException(reason);
                    break;
            }
        }
    }

    private abstract record Input;

    private sealed record TickInput : Input
    {
        public static readonly TickInput Instance = new();
    }

    private sealed record StepInput(RaftMessage Message) : Input;

    /// <summary>What callers hand the node; bounded by <see cref="RaftNodeOptions.MaxQueuedRequests"/>.</summary>
    private abstract record RequestInput : Input;

    private sealed record ProposalInput(byte[] Command, TaskCompletionSource<byte[]> Completion, WriteTrace? Trace) : RequestInput;

    private sealed record ReadInput(TaskCompletionSource Completion) : RequestInput;

    /// <summary>A snapshot taken off the loop was stored (or failed).</summary>
    private sealed record SnapshotStoredInput(Snapshot? Snapshot, Exception? Error, TimeSpan Duration) : Input;

    private sealed record LogReadInput(long From, int Max, TaskCompletionSource<IReadOnlyList<LogEntry>> Completion) : RequestInput;

    private enum AdminKind
    {
        AddServer,
        RemoveServer,
        TransferLeadership,
        TakeSnapshot,
    }

    private sealed record AdminInput(AdminKind Kind, string ServerId) : RequestInput
    {
        public string? Address { get; init; }

        /// <summary>When the core first refused it as not ready (null: never).</summary>
        public DateTimeOffset? FirstRefusal { get; set; }

        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record PendingProposal(long Term, TaskCompletionSource<byte[]> Completion);

    private sealed record PendingAdmin(AdminInput Input, long Term);
}
