using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Storage;

/// <summary>
/// Durable storage of a node's term, vote and log. Calls may overlap (the host's loop saves while a snapshot taken in
/// the background is stored): an implementation carries them out in the order they were made.
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
    /// up to its index, and, unless <paramref name="keepLaterEntries"/>, every entry after it too (a follower installing
    /// a leader's snapshot over a divergent log; the core decides, see <see cref="Ready.KeepStoredEntriesAfterSnapshot"/>;
    /// a snapshot the node took of its own applied state keeps them). Atomic like <see cref="SaveAsync"/>. A snapshot not
    /// newer than the stored one is ignored (a background snapshot may finish after a newer one from the leader was installed).
    /// </summary>
    ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default);
}
