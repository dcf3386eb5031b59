using System.Diagnostics;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Engine.Hosting;

/// <summary>
/// Hosts a <see cref="RaftCore"/>: one loop feeds it ticks, messages and requests from its inbox and carries out its
/// <see cref="Ready"/> batches in Raft's order (<see cref="ReadyProcessor"/>). Proposals that arrive together are
/// persisted together (group commit). Callers wait in named parts: <see cref="ProposalWaiters"/> until their entry is
/// applied, <see cref="ReadWaiters"/> until their read is safe, <see cref="AdminRequests"/> until their change is
/// committed, <see cref="SnapshotScheduler"/> until their snapshot is stored.
/// </summary>
public sealed class RaftNode : IAsyncDisposable
{
    private readonly RaftNodeOptions _options;
    private readonly ILogStore _store;
    private readonly IStateMachine _stateMachine;
    private readonly ITransport _transport;
    private readonly TimeProvider _time;
    private readonly NodeInbox _inbox;
    private NodeLoop? _loop;
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
        _inbox = new NodeInbox(options.Id, options.MaxQueuedRequests, options.MaxQueuedMessages);
    }

    public string Id => _options.Id;

    /// <summary>Raised on the node's loop for every change; handlers must be quick and must not block.</summary>
    public event Action<RaftEvent>? EventRaised;

    public RaftNodeStatus Status => _loop?.Status ?? throw new InvalidOperationException("the node has not started");

    /// <summary>Completes when the loop ends; faulted if the node stopped because of an error (see <see cref="Failure"/>).</summary>
    public Task Completion => _loop?.Running ?? Task.CompletedTask;

    /// <summary>
    /// Why the node's loop died, or null while it runs. A failed node takes no more input: every call throws at once,
    /// every waiter was failed, and its host is expected to report it unhealthy and stop (Raft.Node exits non-zero).
    /// </summary>
    public Exception? Failure => _loop?.Failure;

    /// <summary>
    /// Set while the store is full: the node's write is retried until space returns (the node sends nothing that
    /// promises it meanwhile) and new proposals are refused at once with this exception.
    /// </summary>
    public StorageFullException? StorageProblem => _loop?.StorageProblem;

    /// <summary>Peer messages dropped because <see cref="RaftNodeOptions.MaxQueuedMessages"/> were already waiting.</summary>
    public long DroppedMessages => _inbox.DroppedMessages;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_loop != null)
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
        var core = new RaftCore(_options.Id, bootstrap, _options.Raft, state, random) { SnapshotCheck = _stateMachine.CheckSnapshot };
        _loop = new NodeLoop(_options, core, _store, _stateMachine, _transport, _time, _inbox, e => EventRaised?.Invoke(e));
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

    /// <summary>
    /// Hands a message from a peer to the node (called by the transport). When the loop is that far behind, the message
    /// is dropped, as the network might have: Raft resends what matters.
    /// </summary>
    public void Receive(RaftMessage message) => _inbox.Receive(message);

    /// <summary>
    /// Proposes a command and waits until it is applied, returning the state machine's answer.
    /// Throws <see cref="NotLeaderException"/> on a follower (or during a leadership transfer) and
    /// <see cref="ProposalDroppedException"/> when a new leader overwrote the entry.
    /// Cancelling stops the wait, not the proposal: it may still be applied.
    /// </summary>
    public async Task<byte[]> ProposeAsync(byte[] command, CancellationToken cancellationToken = default)
    {
        WriteTrace? trace = WriteTrace.Begin(Id);
        using Activity? span = trace?.Write;
        try
        {
            await RequireLeaderAsync(cancellationToken);
            if (StorageProblem is { } full)
            {
                throw full; // nothing was proposed: the caller may retry when the node's disk has room again
            }
            var proposal = new ProposalInput(command, trace);
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
    /// Writes are taken only by the leader. A server that knows the leader refuses at once, from its last status and
    /// without queueing behind its loop (during a failover clients knock often). One that knows none waits until an
    /// election names one (<see cref="RaftNodeOptions.LeaderWait"/>), so that its refusal can say where to go instead
    /// of sending the client round the members while the election runs.
    /// </summary>
    private async Task RequireLeaderAsync(CancellationToken cancellationToken)
    {
        NodeLoop loop = _loop ?? throw new InvalidOperationException("the node has not started");
        RaftNodeStatus status = loop.Status;
        if (status.Role == Role.Leader)
        {
            return;
        }
        TimeSpan patience = _options.LeaderWait ?? _options.TickInterval * (2 * _options.Raft.ElectionTicks);
        if (status.LeaderId is null && patience > TimeSpan.Zero)
        {
            status = await loop.LeaderNamedAsync(patience, cancellationToken);
            if (status.Role == Role.Leader)
            {
                return;
            }
        }
        throw new NotLeaderException(Id, status.LeaderId,
            status.LeaderId is null && patience > TimeSpan.Zero ? $"{Id} is not the leader and knows no leader: none was elected within {patience.TotalMilliseconds:F0} ms" : null);
    }

    /// <summary>
    /// A linearizable read barrier (ReadIndex): completes once this node's state machine reflects every write that
    /// completed before the call, so a read of it right after is linearizable. Works on followers too (the leader is
    /// asked for the index). Throws <see cref="NotLeaderException"/> when no leader can confirm it.
    /// </summary>
    public async Task LinearizableReadAsync(CancellationToken cancellationToken = default)
    {
        var read = new ReadInput();
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
        var read = new LogReadInput(from, max);
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
        if (Failure is { } failure)
        {
            throw new InvalidOperationException($"{Id} has failed and takes no more requests: {failure.Message}", failure);
        }
        _inbox.Enqueue(input);
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
        _loop?.Crash();
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
        if (_loop != null)
        {
            await _loop.DisposeAsync();
        }
        else
        {
            _inbox.Close();
            _inbox.FailWaiting(new ObjectDisposedException(nameof(RaftNode), "the node stopped"));
        }
    }
}
