using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Storage;

namespace Raft.Tests.Simulation;

/// <summary>
/// A simulated disk: writes are staged until <see cref="Sync"/> (the moment the host's await of the write returns, as
/// fsync would), and a crash before that loses them, or keeps them, as the seed decides, each write whole or not at all.
/// What a restarted server loads, and what the checkers call stored, is only what was synced or survived.
/// </summary>
internal sealed class SimDisk : ILogStore
{
    private readonly MemoryLogStore _durable = new();
    private readonly List<Func<ValueTask>> _unsynced = [];

    public int UnsyncedWrites => _unsynced.Count;

    public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) => _durable.LoadAsync(cancellationToken);

    public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
    {
        _unsynced.Add(() => _durable.SaveAsync(hardState, entries, cancellationToken));
        return ValueTask.CompletedTask;
    }

    public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default)
    {
        _unsynced.Add(() => _durable.SaveSnapshotAsync(snapshot, keepLaterEntries, cancellationToken));
        return ValueTask.CompletedTask;
    }

    /// <summary>Makes every staged write durable, in order.</summary>
    public void Sync()
    {
        foreach (Func<ValueTask> write in _unsynced)
        {
            write().AsTask().GetAwaiter().GetResult();
        }
        _unsynced.Clear();
    }

    /// <summary>The power goes: each staged write is lost with <paramref name="lossRate"/>, and every write after a lost one too.</summary>
    public void Crash(Random random, double lossRate)
    {
        int kept = 0;
        while (kept < _unsynced.Count && random.NextDouble() >= lossRate)
        {
            kept++;
        }
        _unsynced.RemoveRange(kept, _unsynced.Count - kept);
        Sync();
    }

    public long? TermAt(long index) => _durable.TermAt(index);

    /// <summary>Durable entries after <paramref name="index"/> vanish: a write-ahead log deleted or restored from backup.</summary>
    public void LoseEntriesAfter(long index) => _durable.LoseEntriesAfter(index);

    public long SnapshotIndex => _durable.SnapshotIndex;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
