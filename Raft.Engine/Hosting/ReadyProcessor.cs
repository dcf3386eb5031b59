using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

namespace Raft.Engine.Hosting;

/// <summary>The points between the steps of carrying out a <see cref="Ready"/>, in order (see <see cref="ReadyProcessor"/>).</summary>
public enum ReadyStep
{
    /// <summary>The leader's replication messages left; its own write has not started.</summary>
    SentBeforePersist,
    /// <summary>The write started (not yet durable) and the already-durable committed entries were applied.</summary>
    AppliedWhileWriting,
    /// <summary>The snapshot, hard state and entries of the batch are durable.</summary>
    Persisted,
    /// <summary>The messages that promise what was persisted left.</summary>
    Sent,
    /// <summary>The snapshot was restored and every committed entry of the batch applied.</summary>
    Applied,
    /// <summary>Read states and notices were handed over and the core advanced.</summary>
    Advanced,
}

/// <summary>What the host does with the outcomes of a <see cref="Ready"/>: the network, waiters, events, checks.</summary>
public interface IReadyHost
{
    void Send(RaftMessage message);

    /// <summary>An entry was applied (no-op and configuration entries too, with an empty result).</summary>
    void OnApplied(LogEntry entry, byte[] result);

    /// <summary>The state machine was replaced by a snapshot from the leader.</summary>
    void OnSnapshotRestored(Snapshot snapshot);

    void OnReadState(ReadState read);

    void OnNotice(RaftNotice notice);

    /// <summary>
    /// The batch's write failed because the medium is full (nothing of it was written). Returns when it is worth trying
    /// again; the processor then repeats the same write (every write is idempotent), so the batch goes on as if it had
    /// only been slow.
    /// </summary>
    ValueTask WaitForStorageAsync(StorageFullException full, int attempt, CancellationToken cancellationToken);

    /// <summary>
    /// Called after each step. The simulation checks invariants here and crashes a server between any two steps (by
    /// throwing); a step whose write is not <see cref="ReadyStep.Persisted"/> yet is not durable.
    /// </summary>
    void AfterStep(ReadyStep step);
}

/// <summary>
/// Carries out the core's <see cref="Ready"/> batches in the order Raft needs (written once, with why: docs/ARCHITECTURE.md,
/// "Ready and Advance"; <see cref="ReadyStep"/> names the points between the steps). This one type is used by
/// <see cref="RaftNode"/> and by the simulation, so the ordering the 510 seeds check is the ordering that runs.
/// </summary>
public sealed class ReadyProcessor(ILogStore store, IStateMachine stateMachine, IReadyHost host)
{
    public async ValueTask ProcessAsync(RaftCore core, Ready ready, CancellationToken cancellationToken = default)
    {
        foreach (RaftMessage message in ready.MessagesBeforePersist)
        {
            host.Send(message);
        }
        host.AfterStep(ReadyStep.SentBeforePersist);

        // One durable write; it runs (on the store's writer) while already-durable entries are applied here.
        ValueTask write = WriteAsync(ready, cancellationToken);
        int early = ready.CommittedAlreadyDurable;
        for (int i = 0; i < early; i++)
        {
            Apply(ready.CommittedEntries[i]);
        }
        host.AfterStep(ReadyStep.AppliedWhileWriting);
        await write;
        host.AfterStep(ReadyStep.Persisted);

        foreach (RaftMessage message in ready.Messages)
        {
            host.Send(message);
        }
        host.AfterStep(ReadyStep.Sent);

        if (ready.SnapshotToInstall is { } installed)
        {
            await stateMachine.RestoreSnapshotAsync(new MemoryStream(installed.Data, writable: false), cancellationToken);
            host.OnSnapshotRestored(installed);
        }
        for (int i = early; i < ready.CommittedEntries.Count; i++)
        {
            Apply(ready.CommittedEntries[i]);
        }
        host.AfterStep(ReadyStep.Applied);

        foreach (ReadState read in ready.ReadStates ?? [])
        {
            host.OnReadState(read);
        }
        foreach (RaftNotice notice in ready.Notices ?? [])
        {
            host.OnNotice(notice);
        }
        core.Advance(ready);
        host.AfterStep(ReadyStep.Advanced);
    }

    private async ValueTask WriteAsync(Ready ready, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (ready.SnapshotToInstall is { } snapshot)
                {
                    await store.SaveSnapshotAsync(snapshot, ready.KeepStoredEntriesAfterSnapshot, cancellationToken);
                }
                if (ready.HardState != null || ready.EntriesToPersist.Count > 0)
                {
                    await store.SaveAsync(ready.HardState, ready.EntriesToPersist, cancellationToken);
                }
                return;
            }
            catch (StorageFullException full)
            {
                // Not a reason to die: the node stalls (sends nothing it has not persisted) until space returns.
                await host.WaitForStorageAsync(full, attempt, cancellationToken);
            }
        }
    }

    private void Apply(LogEntry entry)
    {
        byte[] result = entry.Kind == EntryKind.Command ? stateMachine.Apply(entry.Index, entry.Data) : [];
        host.OnApplied(entry, result);
    }
}
