using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Storage;

/// <summary>An in-memory <see cref="ILogStore"/> for tests and for state that may be lost. "Reopening" it is loading again.</summary>
public sealed class MemoryLogStore : ILogStore
{
    private readonly Lock _lock = new();
    private readonly List<LogEntry> _entries = [];
    private HardState _hardState = new(0, null);

    public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return ValueTask.FromResult(new PersistentState(_hardState, [.. _entries]));
        }
    }

    public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (entries.Count > 0)
            {
                long first = entries[0].Index;
                if (first < 1 || first > _entries.Count + 1)
                {
                    throw new ArgumentException($"entries start at {first}, after a gap in a log of {_entries.Count}", nameof(entries));
                }
                _entries.RemoveRange((int)(first - 1), _entries.Count - (int)(first - 1));
                _entries.AddRange(entries);
            }
            if (hardState is { } state)
            {
                _hardState = state;
            }
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
