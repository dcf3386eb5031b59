namespace Raft.Engine.StateMachines;

/// <summary>
/// The replicated state machine. Every node applies the same committed commands in the same order, so
/// <see cref="Apply"/> must be deterministic: the same state and command always give the same state and result.
/// The host calls Apply from its one loop; reads from other threads are the implementation's to synchronise.
/// </summary>
public interface IStateMachine
{
    /// <summary>Applies the committed command at <paramref name="index"/> and returns the answer for its proposer.</summary>
    byte[] Apply(long index, byte[] command);

    /// <summary>
    /// Captures the whole state (client sessions included) as of now, for a snapshot. Called on the host's loop, which
    /// waits for it, so it must be cheap (a copy, or an immutable view); the capture is written out later, off the loop.
    /// </summary>
    IStateCapture CaptureSnapshot();

    /// <summary>
    /// Whether <paramref name="data"/> is a state this machine could restore: it is restored into a scratch instance,
    /// never into this one. Null when it is; otherwise why not. A node checks a snapshot received from the leader
    /// before it lets it replace anything (its log, its stored snapshot, its state).
    /// </summary>
    string? CheckSnapshot(byte[] data);

    /// <summary>Replaces the whole state with one written by an <see cref="IStateCapture"/>.</summary>
    ValueTask RestoreSnapshotAsync(Stream source, CancellationToken cancellationToken = default);
}

/// <summary>A point-in-time copy of a state machine's state; writing it may run on any thread, while the machine goes on.</summary>
public interface IStateCapture
{
    ValueTask WriteToAsync(Stream destination, CancellationToken cancellationToken = default);
}
