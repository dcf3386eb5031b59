using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Storage;

/// <summary>Everything a node keeps across a crash: term, vote, the latest snapshot and the log after it.</summary>
public sealed record PersistentState(HardState HardState, IReadOnlyList<LogEntry> Entries, Snapshot? Snapshot = null)
{
    public static PersistentState Empty { get; } = new(new HardState(0, null), []);
}
