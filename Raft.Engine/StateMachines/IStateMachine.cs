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

    /// <summary>Writes the whole state (client sessions included) to <paramref name="destination"/>.</summary>
    ValueTask WriteSnapshotAsync(Stream destination, CancellationToken cancellationToken = default);

    /// <summary>Replaces the whole state with one written by <see cref="WriteSnapshotAsync"/>.</summary>
    ValueTask RestoreSnapshotAsync(Stream source, CancellationToken cancellationToken = default);
}
