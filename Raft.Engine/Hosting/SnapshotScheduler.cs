using System.Diagnostics;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Engine.Hosting;

/// <summary>
/// Takes this node's own snapshots, one at a time: the state machine is captured on the loop (cheaply), then serialized
/// and stored off it, and the result comes back through the inbox as a <see cref="SnapshotStoredInput"/>, where the
/// core compacts its log. Callers of <see cref="RaftNode.TakeSnapshotAsync"/> are answered when it is stored.
/// </summary>
internal sealed class SnapshotScheduler(string nodeId, ILogStore store, IStateMachine stateMachine, NodeInbox inbox, DeferredAnswers answers)
{
    private readonly List<TaskCompletionSource> _waiters = [];
    private Task _running = Task.CompletedTask;

    /// <summary>A snapshot was started and its result has not been handled yet.</summary>
    public bool InProgress { get; private set; }

    /// <summary>Starts a snapshot of the state as applied now, unless one is running or nothing was applied since the last.</summary>
    public void Start(RaftCore core, CancellationToken stopping)
    {
        if (InProgress || core.AppliedIndex <= core.SnapshotIndex)
        {
            return;
        }
        InProgress = true;
        SnapshotMetadata metadata = core.SnapshotMetadataAt(core.AppliedIndex);
        IStateCapture capture = stateMachine.CaptureSnapshot();
        long started = Stopwatch.GetTimestamp();
        _running = Task.Run(async () =>
        {
            try
            {
                using var buffer = new MemoryStream();
                await capture.WriteToAsync(buffer, stopping);
                var snapshot = new Snapshot(metadata, buffer.ToArray());
                await store.SaveSnapshotAsync(snapshot, keepLaterEntries: true, stopping); // of applied state: the log goes on after it
                inbox.Post(new SnapshotStoredInput(snapshot, null, Stopwatch.GetElapsedTime(started)));
            }
            catch (Exception e)
            {
                inbox.Post(new SnapshotStoredInput(null, e, Stopwatch.GetElapsedTime(started)));
            }
        }, CancellationToken.None);
    }

    /// <summary>A caller asked for a snapshot now: answered once it is stored, or at once if there is nothing new.</summary>
    public void Requested(RaftCore core, TaskCompletionSource completion, CancellationToken stopping)
    {
        Start(core, stopping);
        if (InProgress)
        {
            _waiters.Add(completion);
        }
        else
        {
            answers.Add(() => completion.TrySetResult());
        }
    }

    /// <summary>The snapshot came back stored (the core compacts) or failed. Returns the snapshot taken, if the core used it.</summary>
    public Snapshot? Stored(RaftCore core, SnapshotStoredInput stored)
    {
        InProgress = false;
        if (stored.Error is { } error)
        {
            if (error is OperationCanceledException or ObjectDisposedException)
            {
                return null; // stopping
            }
            if (error is StorageFullException)
            {
                // A snapshot is an optimisation: without room for it the log just stays longer. Tried again when due.
                FailAll(error);
                return null;
            }
            throw new IOException($"{nodeId} could not store a snapshot: {error.Message}", error);
        }
        Snapshot snapshot = stored.Snapshot!;
        // A newer snapshot from the leader may have been installed meanwhile: then this one is obsolete.
        bool used = snapshot.Metadata.Index > core.SnapshotIndex;
        if (used)
        {
            core.OnSnapshotTaken(snapshot);
        }
        foreach (TaskCompletionSource waiter in _waiters)
        {
            answers.Add(() => waiter.TrySetResult());
        }
        _waiters.Clear();
        return used ? snapshot : null;
    }

    /// <summary>Completes when the snapshot running off the loop (if any) has finished; never throws.</summary>
    public Task StoppedAsync() => _running;

    public void FailAll(Exception reason)
    {
        foreach (TaskCompletionSource waiter in _waiters)
        {
            waiter.TrySetException(reason);
        }
        _waiters.Clear();
    }
}
