using System.Diagnostics;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Engine.Hosting;

/// <summary>
/// The loop of a <see cref="RaftNode"/>, and everything only it touches: the core, the parts callers wait in, the
/// clock. It takes what is waiting in the inbox, feeds it to the core, carries out the core's <see cref="Ready"/>
/// batches (<see cref="ReadyProcessor"/>), and then answers callers and raises events, in that order.
/// </summary>
internal sealed class NodeLoop : IAsyncDisposable
{
    private readonly RaftNodeOptions _options;
    private readonly ITransport _transport;
    private readonly TimeProvider _time;
    private readonly NodeInbox _inbox;
    private readonly RaftCore _core;
    private readonly ReadyProcessor _processor;
    private readonly Action<RaftEvent> _raise;
    private readonly CancellationTokenSource _stopping = new();
    private readonly WriteTracer _tracer;
    private readonly TickClock _clock;

    private readonly DeferredAnswers _answers = new();
    private readonly ProposalWaiters _proposals;
    private readonly ReadWaiters _reads;
    private readonly AdminRequests _admin;
    private readonly SnapshotScheduler _snapshots;
    /// <summary>The highest index applied, counted as entries are applied (the core counts it when the batch advances).</summary>
    private long _lastApplied;
    /// <summary>The Ready being carried out, and when it was taken.</summary>
    private Ready? _readyInHand;
    private long _readyTakenAt;
    /// <summary>When this node last took an append or a snapshot from the leader it knows.</summary>
    private DateTimeOffset? _lastHeardFromLeader;
    private readonly ITimer _ticker;
    private readonly Task _running;
    private volatile RaftNodeStatus _status;
    /// <summary>Completed (and replaced) when the leader in <see cref="Status"/> changes, and when the loop ends.</summary>
    private TaskCompletionSource _leaderChanged = NewSignal();
    private volatile Exception? _failure;
    private volatile StorageFullException? _storageFull;
    private volatile bool _crashed;

    /// <summary>Starts the loop and its ticker over a core made from the node's stored state.</summary>
    public NodeLoop(RaftNodeOptions options, RaftCore core, ILogStore store, IStateMachine stateMachine, ITransport transport,
        TimeProvider time, NodeInbox inbox, Action<RaftEvent> raise)
    {
        _options = options;
        _core = core;
        _transport = transport;
        _time = time;
        _inbox = inbox;
        _raise = raise;
        _tracer = new WriteTracer(options.Id);
        TimeSpan electionTimeout = options.TickInterval * options.Raft.ElectionTicks;
        _proposals = new ProposalWaiters(options.Id, _tracer, _answers);
        // A follower's read asks the leader again after an election timeout, or a third of the read timeout if shorter.
        _reads = new ReadWaiters(options.Id, time, options.ReadIndexTimeout, TimeSpan.FromTicks(Math.Min(electionTimeout.Ticks, options.ReadIndexTimeout.Ticks / 3)), _answers);
        _admin = new AdminRequests(options.Id, time, patience: electionTimeout * 4, _answers);
        _snapshots = new SnapshotScheduler(options.Id, store, stateMachine, inbox, _answers);
        _processor = new ReadyProcessor(store, stateMachine, new ReadyHost(this));
        _status = RaftNodeStatus.Of(core);
        _clock = new TickClock(time, options.TickInterval);
        // One-shot, re-armed after every batch for the core's next deadline (see TickClock).
        _ticker = time.CreateTimer(_ => inbox.Tick(), null, _clock.Plan(1), Timeout.InfiniteTimeSpan);
        _running = Task.Run(RunAsync, CancellationToken.None);
    }

    private string Id => _options.Id;

    public RaftNodeStatus Status => _status;

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void SignalLeaderChanged() => Interlocked.Exchange(ref _leaderChanged, NewSignal()).TrySetResult();

    /// <summary>
    /// The status once it names a leader, or as it is after <paramref name="patience"/> (or when the loop ends).
    /// Written by the loop and read here without a lock: the signal is read before the status, and the loop swaps it
    /// only after publishing the status, so a change between the two reads completes the signal held.
    /// </summary>
    public async Task<RaftNodeStatus> LeaderNamedAsync(TimeSpan patience, CancellationToken cancellationToken)
    {
        using var giveUp = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task expired = Task.Delay(patience, _time, giveUp.Token);
        try
        {
            while (true)
            {
                Task changed = Volatile.Read(ref _leaderChanged).Task;
                RaftNodeStatus status = _status;
                if (status.LeaderId != null || _running.IsCompleted || _failure != null)
                {
                    return status;
                }
                if (await Task.WhenAny(changed, expired) == expired)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    return _status;
                }
            }
        }
        finally
        {
            await giveUp.CancelAsync(); // the delay's timer goes with it
        }
    }

    /// <inheritdoc cref="RaftNode.Completion"/>
    public Task Running => _running;

    /// <inheritdoc cref="RaftNode.Failure"/>
    public Exception? Failure => _failure;

    /// <inheritdoc cref="RaftNode.StorageProblem"/>
    public StorageFullException? StorageProblem => _storageFull;

    /// <summary>From now on the loop sends, applies and answers nothing (see <see cref="RaftNode.CrashAsync"/>).</summary>
    public void Crash() => _crashed = true;

    /// <summary>Stops the ticker and the loop, waits for them and for a snapshot in flight, and fails every waiter.</summary>
    public async ValueTask DisposeAsync()
    {
        await _ticker.DisposeAsync();
        _inbox.Close();
        await _stopping.CancelAsync();
        try
        {
            await _running;
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception) when (_failure != null || _crashed)
        {
            // already reported through Failure and Completion, or the node was crashed on purpose
        }
        await _snapshots.StoppedAsync();
        FailAllWaiters(new ObjectDisposedException(nameof(RaftNode), "the node stopped"));
        _stopping.Dispose();
    }

    private void Raise(RaftEvent raftEvent) => _raise(raftEvent);

    private async Task RunAsync()
    {
        RaftCore core = _core;
        CancellationToken stopping = _stopping.Token;
        Activity.Current = null; // the loop's work belongs to no caller's trace (spans it emits name their parent)
        try
        {
            // Work left over (committed entries not yet applied) keeps the loop going without new inputs.
            while (core.HasReady || await _inbox.WaitAsync(stopping))
            {
                RaftNodeStatus before = _status;
                // Take everything that is waiting: proposals that arrive together go out and to disk together.
                for (int taken = 0; taken < 4096 && _inbox.TryTake(out NodeInput? input); taken++)
                {
                    Feed(core, input, stopping);
                }
                if (!_tracer.Idle)
                {
                    _tracer.FollowersProgressed(core.Followers); // replies just stepped may have moved them
                }
                await CarryOutReadyAsync(core, stopping);
                foreach (AdminInput admin in _admin.TakeNotReady())
                {
                    _admin.Start(core, admin);
                }
                await CarryOutReadyAsync(core, stopping);
                if (core.IsSnapshotDue)
                {
                    _snapshots.Start(core, stopping);
                }
                _admin.CompleteDecided(core.CommittedConfiguration, core.Term, core.LeaderId);
                PlanNextWake(core);
                RaftNodeStatus after = RaftNodeStatus.Of(core, _lastHeardFromLeader);
                _status = after;
                if (after.LeaderId != before.LeaderId)
                {
                    SignalLeaderChanged();
                }
                _answers.Release(); // only now, so that what callers read from Status is at least as new as their answer
                StateChangeEvents.Raise(before, after, _time.GetUtcNow(), _raise);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException && !_crashed)
        {
            // Fail fast and visibly: no more inputs (they would pile up unread), no more ticks, every waiter answered.
            _failure = e;
            _inbox.Close(e);
            _ticker.Dispose();
            FailAllWaiters(e);
            throw;
        }
    }

    private void Feed(RaftCore core, NodeInput input, CancellationToken stopping)
    {
        GiveDueTicks(core); // whatever arrived is stepped after the time that passed before it
        switch (input)
        {
            case TickInput:
                if (core.Role != Role.Leader && core.LeaderId != null)
                {
                    foreach (long requestId in _reads.DueToAskAgain())
                    {
                        core.ReadIndex(requestId); // the leader answers each ask; the first answer completes the read
                    }
                }
                _reads.FailOverdue(core.LeaderId);
                break;
            case StepInput step:
                core.Step(step.Message);
                if (step.Message is AppendEntries or InstallSnapshot && step.Message.From == core.LeaderId)
                {
                    _lastHeardFromLeader = _time.GetUtcNow();
                }
                break;
            case ProposalInput proposal:
                _proposals.Propose(core, proposal);
                break;
            case ReadInput read:
                long readId = _reads.Begin(read.Completion);
                core.ReadIndex(readId); // a lease is judged by the clock at the moment the read is served (just given)
                break;
            case LogReadInput logRead:
                logRead.Completion.TrySetResult(ReadLog(core, logRead.From, logRead.Max));
                break;
            case AdminInput { Kind: AdminKind.TakeSnapshot } snapshot:
                _snapshots.Requested(core, snapshot.Completion, stopping);
                break;
            case AdminInput admin:
                _admin.Start(core, admin);
                break;
            case SnapshotStoredInput stored when _snapshots.Stored(core, stored) is { } taken:
                Raise(new SnapshotTaken(Id, _time.GetUtcNow(), taken.Metadata.Index, taken.Metadata.Term, taken.Data.Length) { Duration = stored.Duration });
                break;
        }
    }

    private static LogEntry[] ReadLog(RaftCore core, long from, int max)
    {
        long first = Math.Max(from, core.FirstIndex);
        long last = Math.Min(core.LastIndex, first + max - 1);
        var entries = new LogEntry[Math.Max(0, last - first + 1)];
        for (long i = first; i <= last; i++)
        {
            entries[i - first] = core.EntryAt(i);
        }
        return entries;
    }

    /// <summary>
    /// Gives the core the ticks passed up to the loop's planned wake-up. Its clock may lag wall time (a pause, a stall):
    /// past the lease's drift margin the lease it measures in ticks may have run out, so it is voided until a round
    /// sent from now on is answered.
    /// </summary>
    private void GiveDueTicks(RaftCore core)
    {
        int due = _clock.TakeDue();
        if (_clock.Behind > _options.Raft.LeaseDriftMarginTicks)
        {
            core.VoidLease();
            _clock.Resync();
        }
        for (int i = 0; i < due; i++)
        {
            core.Tick();
        }
    }

    /// <summary>
    /// Sleeps the ticker until the core's next deadline; every tick while reads wait for their index or admin requests
    /// are under way (the host checks their deadlines on ticks).
    /// </summary>
    private void PlanNextWake(RaftCore core)
    {
        int ticks = _reads.AwaitingIndex || _admin.Waiting > 0 ? 1 : core.TicksUntilDue;
        _ticker.Change(_clock.Plan(ticks), Timeout.InfiniteTimeSpan);
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
            if (core.HasOnlyApplyWork && _inbox.HasWaiting)
            {
                return;
            }
            Ready ready = core.TakeReady();
            _readyInHand = ready;
            _readyTakenAt = Stopwatch.GetTimestamp();
            _tracer.Taken(ready);
            await _processor.ProcessAsync(core, ready, cancellationToken);
            _readyInHand = null;
            _storageFull = null;
            _reads.CompleteUpTo(core.AppliedIndex);
            if (ready.EntriesToPersist.Count > 0)
            {
                LogEntry last = ready.EntriesToPersist[^1];
                Raise(new EntriesAppended(Id, _time.GetUtcNow(), ready.EntriesToPersist[0].Index, last.Index, last.Term));
            }
        }
    }

    /// <summary>Answers decided so far go out now, mid-batch, after Status reflects them (see the loop).</summary>
    private void ReleaseAnswersEarly(RaftCore core)
    {
        if (!_answers.Any)
        {
            return;
        }
        // Mid-batch the core has not counted what was just applied: the status says it, so callers see their write.
        RaftNodeStatus status = RaftNodeStatus.Of(core, _lastHeardFromLeader);
        _status = status.AppliedIndex < _lastApplied ? status with { AppliedIndex = _lastApplied } : status;
        _answers.Release();
    }

    private void FailAllWaiters(Exception reason)
    {
        _answers.Release(); // answers that were already decided still go out
        SignalLeaderChanged(); // writes waiting for a leader see the node end
        _proposals.FailAll(reason);
        _reads.FailAll(reason);
        _admin.FailAll(reason);
        _snapshots.FailAll(reason);
        _inbox.FailWaiting(reason);
    }

    /// <summary>The node's side of carrying out a Ready: the transport, the waiters and events.</summary>
    private sealed class ReadyHost(NodeLoop node) : IReadyHost
    {
        public void Send(RaftMessage message)
        {
            if (node._crashed)
            {
                throw new OperationCanceledException($"{node.Id} crashed"); // stops the batch where it is
            }
            node._transport.Send(message);
        }

        public void OnApplied(LogEntry entry, byte[] result)
        {
            node._lastApplied = entry.Index;
            node._proposals.Applied(entry, result);
            node._tracer.Applied(entry);
            node.Raise(new EntryApplied(node.Id, node._time.GetUtcNow(), entry.Index, entry.Term, entry.Kind));
        }

        public void OnSnapshotRestored(Snapshot snapshot)
        {
            node._proposals.DropUpTo(snapshot.Metadata.Index);
            node.Raise(new SnapshotInstalled(node.Id, node._time.GetUtcNow(), snapshot.Metadata.Index, snapshot.Metadata.Term, snapshot.Data.Length, node._core.LeaderId)
            {
                Duration = Stopwatch.GetElapsedTime(node._readyTakenAt), // stored and restored: the batch began with it
            });
        }

        public void OnReadState(ReadState read) => node._reads.OnReadState(read);

        public void OnNotice(RaftNotice notice)
        {
            if (notice is CatchUpFailed or TransferAbandoned)
            {
                node._admin.Abandoned(notice);
                node.Raise(new OperationAbandoned(node.Id, node._time.GetUtcNow(), notice));
            }
            else
            {
                node.Raise(new ProblemDetected(node.Id, node._time.GetUtcNow(), notice));
            }
        }

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
                node.ReleaseAnswersEarly(node._core);
            }
        }
    }
}
