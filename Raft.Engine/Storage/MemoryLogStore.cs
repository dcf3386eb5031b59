using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Storage;

/// <summary>
/// An in-memory <see cref="ILogStore"/> for tests and for state that may be lost. "Reopening" it is loading again.
/// Its methods are the interface's, so they are named *Async, but every one completes before it returns: there is
/// nothing to wait for (the simulator relies on it).
/// </summary>
public sealed class MemoryLogStore : ILogStore
{
    private readonly Lock _lock = new();
    private readonly List<LogEntry> _entries = [];
    private HardState _hardState = new(0, null);
    private Snapshot? _snapshot;

    private long FirstIndex => _entries.Count > 0 ? _entries[0].Index : (_snapshot?.Metadata.Index ?? 0) + 1;

    public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(new PersistentState(_hardState, [.. _entries], _snapshot));
        }
    }

    public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (entries.Count > 0)
            {
                long first = entries[0].Index;
                long last = FirstIndex + _entries.Count - 1;
                if (first < FirstIndex || first > last + 1)
                {
                    throw new ArgumentException($"entries start at {first}; the stored log holds {FirstIndex}..{last}", nameof(entries));
                }
                int keep = (int)(first - FirstIndex);
                _entries.RemoveRange(keep, _entries.Count - keep);
                _entries.AddRange(entries);
            }
            if (hardState is { } state)
            {
                _hardState = state;
            }
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            SnapshotMetadata metadata = snapshot.Metadata;
            if (_snapshot != null && metadata.Index <= _snapshot.Metadata.Index)
            {
                return ValueTask.CompletedTask; // not newer than the one stored (see ILogStore)
            }
            if (keepLaterEntries)
            {
                _entries.RemoveAll(e => e.Index <= metadata.Index);
            }
            else
            {
                _entries.Clear();
            }
            _snapshot = snapshot;
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>The stored term at <paramref name="index"/> (the snapshot's last entry included), or null: a cheap probe for checkers.</summary>
    public long? TermAt(long index)
    {
        lock (_lock)
        {
            if (_snapshot?.Metadata.Index == index)
            {
                return _snapshot.Metadata.Term;
            }
            long offset = index - FirstIndex;
            return offset >= 0 && offset < _entries.Count ? _entries[(int)offset].Term : null;
        }
    }

    /// <summary>The index of the stored snapshot, or 0.</summary>
    public long SnapshotIndex
    {
        get
        {
            lock (_lock)
            {
                return _snapshot?.Metadata.Index ?? 0;
            }
        }
    }

    /// <summary>Drops every entry after <paramref name="index"/>, as a disk that lost its latest writes would (tests).</summary>
    public void LoseEntriesAfter(long index)
    {
        lock (_lock)
        {
            _entries.RemoveAll(e => e.Index > index);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
