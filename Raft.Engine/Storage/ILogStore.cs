using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Storage;

/// <summary>
/// Durable storage of a node's term, vote and log. The host calls it from one loop, never concurrently.
/// </summary>
public interface ILogStore : IAsyncDisposable
{
    /// <summary>Reads back everything that was saved, as it was after the last completed save.</summary>
    ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// One atomic, durable step: the hard state (when not null) and the entries, which replace any stored entries
    /// from the first one's index on (the follower's truncation of a conflicting suffix). When this returns the
    /// data survives a crash; if the process dies during the call, either all of it or none of it is there.
    /// </summary>
    ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default);

    /// <summary>
    /// Durably replaces the stored snapshot with <paramref name="snapshot"/> and drops the entries it covers: every entry
    /// up to its index, and every entry at all if the stored entry at its index does not have its term (a follower
    /// installing a leader's snapshot over a divergent log). Atomic like <see cref="SaveAsync"/>.
    /// </summary>
    ValueTask SaveSnapshotAsync(Snapshot snapshot, CancellationToken cancellationToken = default);
}
