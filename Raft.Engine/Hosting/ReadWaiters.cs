using Raft.Engine.Consensus;

namespace Raft.Engine.Hosting;

/// <summary>
/// Linearizable reads in their two waits: first for a read index (from this node as leader, or asked of the leader),
/// then for this node to apply up to it. A follower's read whose index does not come (its request or the answer was
/// lost, as messages may be) is asked again every <paramref name="askAgainEvery"/>; one that gets no index within
/// <paramref name="timeout"/> fails with <see cref="NotLeaderException"/> instead of waiting forever.
/// </summary>
internal sealed class ReadWaiters(string nodeId, TimeProvider time, TimeSpan timeout, TimeSpan askAgainEvery, DeferredAnswers answers)
{
    private readonly Dictionary<long, TaskCompletionSource> _awaitingIndex = [];
    private readonly List<(long Index, TaskCompletionSource Completion)> _awaitingApply = [];
    /// <summary>Requests in the order made, each with the time after which it has waited too long.</summary>
    private readonly Queue<(long RequestId, DateTimeOffset Deadline)> _deadlines = new();
    /// <summary>When each read still waiting for its index last asked for it.</summary>
    private readonly Dictionary<long, DateTimeOffset> _askedAt = [];
    private long _lastRequestId;

    public int AwaitingApply => _awaitingApply.Count;

    /// <summary>Reads still waiting for their index: they are asked again and failed when overdue, on the loop's ticks.</summary>
    public bool AwaitingIndex => _awaitingIndex.Count > 0;

    /// <summary>Registers a read; the caller asks the core for an index under the returned request id.</summary>
    public long Begin(TaskCompletionSource completion)
    {
        long requestId = ++_lastRequestId;
        DateTimeOffset now = time.GetUtcNow();
        _awaitingIndex[requestId] = completion;
        _deadlines.Enqueue((requestId, now + timeout));
        _askedAt[requestId] = now;
        return requestId;
    }

    /// <summary>The reads that have waited for their index the ask-again interval since they last asked; each is marked asked now.</summary>
    public IReadOnlyList<long> DueToAskAgain()
    {
        if (_askedAt.Count == 0)
        {
            return []; // the common case, on every tick of every follower
        }
        DateTimeOffset now = time.GetUtcNow();
        List<long> due = [.. _askedAt.Where(r => now - r.Value >= askAgainEvery).Select(r => r.Key)];
        foreach (long requestId in due)
        {
            _askedAt[requestId] = now;
        }
        return due;
    }

    /// <summary>Fails the reads past their deadline that still have no index.</summary>
    public void FailOverdue(string? leaderId)
    {
        DateTimeOffset now = time.GetUtcNow();
        while (_deadlines.TryPeek(out (long RequestId, DateTimeOffset Deadline) oldest))
        {
            if (_awaitingIndex.ContainsKey(oldest.RequestId) && oldest.Deadline > now)
            {
                return; // deadlines grow with request ids: the rest are younger
            }
            _deadlines.Dequeue();
            _askedAt.Remove(oldest.RequestId);
            if (_awaitingIndex.Remove(oldest.RequestId, out TaskCompletionSource? waiter))
            {
                waiter.TrySetException(new NotLeaderException(nodeId, leaderId,
                    $"{nodeId} got no read index from {leaderId ?? "a leader"} within {timeout.TotalMilliseconds:F0} ms; retry"));
            }
        }
    }

    /// <summary>An index came (the first answer to any of the read's asks), or no leader could confirm one.</summary>
    public void OnReadState(ReadState read)
    {
        _askedAt.Remove(read.RequestId);
        if (!_awaitingIndex.Remove(read.RequestId, out TaskCompletionSource? waiter))
        {
            return;
        }
        if (read.Ok)
        {
            _awaitingApply.Add((read.Index, waiter));
        }
        else
        {
            waiter.TrySetException(new NotLeaderException(nodeId, read.LeaderHint, "no leader could confirm the read; retry on the leader"));
        }
    }

    /// <summary>This node has applied up to <paramref name="applied"/>: the reads whose index that covers are safe.</summary>
    public void CompleteUpTo(long applied)
    {
        for (int i = _awaitingApply.Count - 1; i >= 0; i--)
        {
            if (_awaitingApply[i].Index <= applied)
            {
                TaskCompletionSource read = _awaitingApply[i].Completion;
                answers.Add(() => read.TrySetResult());
                _awaitingApply.RemoveAt(i);
            }
        }
    }

    public void FailAll(Exception reason)
    {
        foreach (TaskCompletionSource waiter in _awaitingIndex.Values.Concat(_awaitingApply.Select(r => r.Completion)))
        {
            waiter.TrySetException(reason);
        }
        _awaitingIndex.Clear();
        _awaitingApply.Clear();
        _deadlines.Clear();
        _askedAt.Clear();
    }
}
