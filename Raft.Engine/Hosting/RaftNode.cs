using System.Threading.Channels;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Engine.Hosting;

/// <summary>
/// Hosts a <see cref="RaftCore"/>: one loop feeds it ticks, messages and proposals from a channel and carries out its
/// <see cref="Ready"/> batches in Raft's order (persist, then send, then apply, then advance). Proposals that arrive
/// together are persisted together (group commit). Client waits complete when their entry is applied.
/// </summary>
public sealed class RaftNode : IAsyncDisposable
{
    private readonly RaftNodeOptions _options;
    private readonly ILogStore _store;
    private readonly IStateMachine _stateMachine;
    private readonly ITransport _transport;
    private readonly TimeProvider _time;
    private readonly Channel<Input> _inputs = Channel.CreateUnbounded<Input>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<long, PendingProposal> _pending = [];
    private readonly CancellationTokenSource _stopping = new();
    private RaftCore? _core;
    private Task? _loop;
    private ITimer? _ticker;
    private volatile RaftNodeStatus? _status;

    public RaftNode(RaftNodeOptions options, ILogStore store, IStateMachine stateMachine, ITransport transport, TimeProvider? time = null)
    {
        _options = options;
        _store = store;
        _stateMachine = stateMachine;
        _transport = transport;
        _time = time ?? TimeProvider.System;
    }

    public string Id => _options.Id;

    /// <summary>Raised on the node's loop for every change; handlers must be quick and must not block.</summary>
    public event Action<RaftEvent>? EventRaised;

    public RaftNodeStatus Status => _status ?? throw new InvalidOperationException("the node has not started");

    /// <summary>Completes when the loop ends; faulted if the node stopped because of an error.</summary>
    public Task Completion => _loop ?? Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_core != null)
        {
            throw new InvalidOperationException("already started");
        }
        PersistentState state = await _store.LoadAsync(cancellationToken);
        var random = new Random(_options.RandomSeed ?? Random.Shared.Next());
        _core = new RaftCore(_options.Id, new ClusterConfiguration(_options.Members), _options.Raft, state, random);
        _status = RaftNodeStatus.Of(_core);
        _loop = Task.Run(RunAsync, CancellationToken.None);
        _ticker = _time.CreateTimer(_ => _inputs.Writer.TryWrite(TickInput.Instance), null, _options.TickInterval, _options.TickInterval);
    }

    /// <summary>Hands a message from a peer to the node (called by the transport).</summary>
    public void Receive(RaftMessage message) => _inputs.Writer.TryWrite(new StepInput(message));

    /// <summary>
    /// Proposes a command and waits until it is applied, returning the state machine's answer.
    /// Throws <see cref="NotLeaderException"/> on a follower and <see cref="ProposalDroppedException"/> when a new leader
    /// overwrote the entry. Cancelling stops the wait, not the proposal: it may still be applied.
    /// </summary>
    public async Task<byte[]> ProposeAsync(byte[] command, CancellationToken cancellationToken = default)
    {
        var proposal = new ProposalInput(command, new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_inputs.Writer.TryWrite(proposal), this);
        return await proposal.Completion.Task.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
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
        }
        FailPending(new ObjectDisposedException(nameof(RaftNode), "the node stopped"));
        _stopping.Dispose();
    }

    private async Task RunAsync()
    {
        RaftCore core = _core!;
        ChannelReader<Input> reader = _inputs.Reader;
        CancellationToken stopping = _stopping.Token;
        try
        {
            while (await reader.WaitToReadAsync(stopping))
            {
                RaftNodeStatus before = _status!;
                // Take everything that is waiting: proposals that arrive together go out and to disk together.
                for (int taken = 0; taken < 4096 && reader.TryRead(out Input? input); taken++)
                {
                    Feed(core, input);
                }
                await CarryOutReadyAsync(core, stopping);
                RaftNodeStatus after = RaftNodeStatus.Of(core);
                _status = after;
                PublishStateChanges(before, after);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            FailPending(e);
            throw;
        }
    }

    private void Feed(RaftCore core, Input input)
    {
        switch (input)
        {
            case TickInput:
                core.Tick();
                break;
            case StepInput step:
                core.Step(step.Message);
                break;
            case ProposalInput proposal:
                ProposeResult result = core.Propose(proposal.Command);
                if (result.Accepted)
                {
                    _pending[result.Index] = new PendingProposal(result.Term, proposal.Completion);
                }
                else
                {
                    proposal.Completion.TrySetException(new NotLeaderException(core.Id, result.LeaderHint));
                }
                break;
        }
    }

    private async Task CarryOutReadyAsync(RaftCore core, CancellationToken cancellationToken)
    {
        while (core.HasReady)
        {
            Ready ready = core.TakeReady();
            // 1. Persist before anything that depends on it leaves this node.
            if (ready.HardState != null || ready.EntriesToPersist.Count > 0)
            {
                await _store.SaveAsync(ready.HardState, ready.EntriesToPersist, cancellationToken);
            }
            // 2. Send.
            foreach (RaftMessage message in ready.Messages)
            {
                _transport.Send(message);
            }
            // 3. Apply committed entries in order.
            foreach (LogEntry entry in ready.CommittedEntries)
            {
                Apply(entry);
            }
            // 4. Let the core know.
            core.Advance(ready);

            if (ready.EntriesToPersist.Count > 0)
            {
                LogEntry last = ready.EntriesToPersist[^1];
                Raise(new EntriesAppended(Id, _time.GetUtcNow(), ready.EntriesToPersist[0].Index, last.Index, last.Term));
            }
        }
    }

    private void Apply(LogEntry entry)
    {
        byte[] result = entry.Kind == EntryKind.Command ? _stateMachine.Apply(entry.Index, entry.Data) : [];
        if (_pending.Remove(entry.Index, out PendingProposal? waiter))
        {
            if (waiter.Term == entry.Term)
            {
                waiter.Completion.TrySetResult(result);
            }
            else
            {
                waiter.Completion.TrySetException(new ProposalDroppedException(entry.Index, waiter.Term));
            }
        }
        Raise(new EntryApplied(Id, _time.GetUtcNow(), entry.Index, entry.Term, entry.Kind));
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
    }

    private void Raise(RaftEvent raftEvent) => EventRaised?.Invoke(raftEvent);

    private void FailPending(Exception reason)
    {
        foreach (PendingProposal waiter in _pending.Values)
        {
            waiter.Completion.TrySetException(reason);
        }
        _pending.Clear();
        while (_inputs.Reader.TryRead(out Input? input))
        {
            if (input is ProposalInput proposal)
            {
                proposal.Completion.TrySetException(reason);
            }
        }
    }

    private abstract record Input;

    private sealed record TickInput : Input
    {
        public static readonly TickInput Instance = new();
    }

    private sealed record StepInput(RaftMessage Message) : Input;

    private sealed record ProposalInput(byte[] Command, TaskCompletionSource<byte[]> Completion) : Input;

    private sealed record PendingProposal(long Term, TaskCompletionSource<byte[]> Completion);
}
