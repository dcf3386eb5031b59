using System.Diagnostics;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Storage;

namespace Raft.Node.Metrics;

/// <summary>Records how many entries each durable save carries (one fsync each) and how long it takes.</summary>
public sealed class MeteredLogStore(ILogStore inner, NodeMetrics metrics) : ILogStore
{
    public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) => inner.LoadAsync(cancellationToken);

    public async ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
    {
        long start = Stopwatch.GetTimestamp();
        await inner.SaveAsync(hardState, entries, cancellationToken);
        metrics.Persisted(entries.Count, Stopwatch.GetElapsedTime(start));
    }

    public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default) => inner.SaveSnapshotAsync(snapshot, keepLaterEntries, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
