using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;
using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Hosting;

/// <summary>
/// The node's one input channel, read by its loop alone: ticks, peer messages, callers' requests and results of work
/// done off the loop. Requests and peer messages are bounded separately (<see cref="RaftNodeOptions"/>): a request past
/// its bound is refused at once, a peer message past its bound is dropped, as the network might have (Raft resends).
/// </summary>
internal sealed class NodeInbox(string nodeId, int maxRequests, int maxMessages)
{
    private readonly Channel<NodeInput> _channel = Channel.CreateUnbounded<NodeInput>(new UnboundedChannelOptions { SingleReader = true });
    private int _queuedRequests;
    private int _queuedMessages;
    private long _droppedMessages;

    public long DroppedMessages => Interlocked.Read(ref _droppedMessages);

    /// <summary>Something is waiting to be taken.</summary>
    public bool HasWaiting => _channel.Reader.TryPeek(out _);

    public void Tick() => _channel.Writer.TryWrite(TickInput.Instance);

    public void Receive(RaftMessage message)
    {
        if (Interlocked.Increment(ref _queuedMessages) > maxMessages || !_channel.Writer.TryWrite(new StepInput(message)))
        {
            Interlocked.Decrement(ref _queuedMessages);
            Interlocked.Increment(ref _droppedMessages);
        }
    }

    public void Enqueue(RequestInput request)
    {
        if (Interlocked.Increment(ref _queuedRequests) > maxRequests)
        {
            Interlocked.Decrement(ref _queuedRequests);
            throw new NodeOverloadedException($"{nodeId} already has {maxRequests} requests waiting; retry later");
        }
        if (!_channel.Writer.TryWrite(request))
        {
            Interlocked.Decrement(ref _queuedRequests);
            throw new ObjectDisposedException(nameof(RaftNode));
        }
    }

    /// <summary>A result of the node's own work off the loop (never bounded: the node started it).</summary>
    public void Post(NodeInput input) => _channel.Writer.TryWrite(input);

    public ValueTask<bool> WaitAsync(CancellationToken cancellationToken) => _channel.Reader.WaitToReadAsync(cancellationToken);

    public bool TryTake([NotNullWhen(true)] out NodeInput? input)
    {
        if (!_channel.Reader.TryRead(out NodeInput? taken))
        {
            input = null;
            return false;
        }
        if (taken is RequestInput)
        {
            Interlocked.Decrement(ref _queuedRequests);
        }
        else if (taken is StepInput)
        {
            Interlocked.Decrement(ref _queuedMessages);
        }
        input = taken;
        return true;
    }

    /// <summary>No more input: later writes fail (requests with <see cref="ObjectDisposedException"/>).</summary>
    public void Close(Exception? reason = null) => _channel.Writer.TryComplete(reason);

    /// <summary>Fails every request still waiting (the node stopped or failed).</summary>
    public void FailWaiting(Exception reason)
    {
        while (_channel.Reader.TryRead(out NodeInput? input))
        {
            (input as RequestInput)?.Fail(reason);
        }
    }
}

internal abstract record NodeInput;

internal sealed record TickInput : NodeInput
{
    public static readonly TickInput Instance = new();
}

internal sealed record StepInput(RaftMessage Message) : NodeInput;

/// <summary>A snapshot taken off the loop was stored (or failed).</summary>
internal sealed record SnapshotStoredInput(Snapshot? Snapshot, Exception? Error, TimeSpan Duration) : NodeInput;

/// <summary>What callers hand the node; bounded by <see cref="RaftNodeOptions.MaxQueuedRequests"/>.</summary>
internal abstract record RequestInput : NodeInput
{
    public abstract void Fail(Exception reason);
}

internal sealed record ProposalInput(byte[] Command, WriteTrace? Trace) : RequestInput
{
    public TaskCompletionSource<byte[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void Fail(Exception reason) => Completion.TrySetException(reason);
}

internal sealed record ReadInput : RequestInput
{
    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void Fail(Exception reason) => Completion.TrySetException(reason);
}

internal sealed record LogReadInput(long From, int Max) : RequestInput
{
    public TaskCompletionSource<IReadOnlyList<LogEntry>> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void Fail(Exception reason) => Completion.TrySetException(reason);
}

internal enum AdminKind
{
    AddServer,
    RemoveServer,
    TransferLeadership,
    TakeSnapshot,
}

internal sealed record AdminInput(AdminKind Kind, string ServerId) : RequestInput
{
    public string? Address { get; init; }

    /// <summary>When the core first refused it as not ready (null: never).</summary>
    public DateTimeOffset? FirstRefusal { get; set; }

    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void Fail(Exception reason) => Completion.TrySetException(reason);
}
