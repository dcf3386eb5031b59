using Raft.Engine.Consensus;

namespace Raft.Node.Transport;

/// <summary>
/// The engine answers a peer's request with a separate message, after persisting what the answer depends on. The
/// peer service holds the request's RPC open until that answer comes out of the engine and returns it as the reply.
/// Answers are self-describing (match index, rejected index, term), so any open request of the same kind from the
/// same peer may carry it: pairing is first in, first out, and an answer with no open request is dropped (a lost message).
/// </summary>
public sealed class ReplyCorrelator
{
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Peer, Type Kind), Queue<TaskCompletionSource<RaftMessage>>> _open = [];

    /// <summary>Opens a wait for the next answer of type <typeparamref name="T"/> to <paramref name="peer"/>.</summary>
    public TaskCompletionSource<RaftMessage> Expect<T>(string peer) where T : RaftMessage
    {
        var waiter = new TaskCompletionSource<RaftMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (!_open.TryGetValue((peer, typeof(T)), out var queue))
            {
                queue = new Queue<TaskCompletionSource<RaftMessage>>();
                _open[(peer, typeof(T))] = queue;
            }
            queue.Enqueue(waiter);
        }
        return waiter;
    }

    /// <summary>Hands an answer from the engine to the oldest open request it can answer; false if there is none.</summary>
    public bool TryComplete(RaftMessage answer)
    {
        lock (_lock)
        {
            if (!_open.TryGetValue((answer.To, answer.GetType()), out var queue))
            {
                return false;
            }
            while (queue.TryDequeue(out TaskCompletionSource<RaftMessage>? waiter))
            {
                if (waiter.TrySetResult(answer))
                {
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>Waits for the answer; null if none came in time (the request then counts as unanswered).</summary>
    public static async Task<RaftMessage?> WaitAsync(TaskCompletionSource<RaftMessage> waiter, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await waiter.Task.WaitAsync(timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            waiter.TrySetCanceled(cancellationToken);
            return null;
        }
    }
}
