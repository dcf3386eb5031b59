namespace Raft.Engine.Log;

/// <summary>
/// The core's view of the log: every entry after the last snapshot, in memory.
/// Indexes start at 1; index 0 with term 0 is the empty prefix every log shares.
/// </summary>
internal sealed class RaftLog
{
    private readonly List<LogEntry> _entries = [];

    public RaftLog(long snapshotIndex, long snapshotTerm, IEnumerable<LogEntry> entries)
    {
        SnapshotIndex = snapshotIndex;
        SnapshotTerm = snapshotTerm;
        foreach (LogEntry entry in entries)
        {
            Append(entry);
        }
    }

    public long SnapshotIndex { get; private set; }
    public long SnapshotTerm { get; private set; }
    public long FirstIndex => SnapshotIndex + 1;
    public long LastIndex => SnapshotIndex + _entries.Count;
    public long LastTerm => _entries.Count == 0 ? SnapshotTerm : _entries[^1].Term;

    /// <summary>The term of the entry at <paramref name="index"/>, or null when the log does not hold it.</summary>
    public long? TermAt(long index)
    {
        if (index == SnapshotIndex)
        {
            return SnapshotTerm;
        }
        if (index < SnapshotIndex || index > LastIndex)
        {
            return null;
        }
        return _entries[(int)(index - FirstIndex)].Term;
    }

    public bool Matches(long index, long term) => TermAt(index) == term;

    public LogEntry Get(long index)
    {
        if (index < FirstIndex || index > LastIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"log holds {FirstIndex}..{LastIndex}");
        }
        return _entries[(int)(index - FirstIndex)];
    }

    /// <summary>Entries from <paramref name="from"/> up to <paramref name="to"/> (inclusive), capped by count and bytes (at least one entry).</summary>
    public IReadOnlyList<LogEntry> Slice(long from, long to, int maxCount = int.MaxValue, long maxBytes = long.MaxValue)
    {
        to = Math.Min(to, LastIndex);
        var result = new List<LogEntry>();
        long bytes = 0;
        for (long i = from; i <= to && result.Count < maxCount; i++)
        {
            LogEntry entry = Get(i);
            bytes += entry.Size;
            if (result.Count > 0 && bytes > maxBytes)
            {
                break;
            }
            result.Add(entry);
        }
        return result;
    }

    public void Append(LogEntry entry)
    {
        if (entry.Index != LastIndex + 1)
        {
            throw new InvalidOperationException($"append of index {entry.Index} after last index {LastIndex}");
        }
        if (entry.Term < LastTerm)
        {
            throw new InvalidOperationException($"append of term {entry.Term} after term {LastTerm}");
        }
        _entries.Add(entry);
    }

    /// <summary>Removes the entry at <paramref name="index"/> and every entry after it.</summary>
    public void TruncateFrom(long index)
    {
        if (index <= SnapshotIndex)
        {
            throw new InvalidOperationException($"truncation at {index} would cut into the snapshot at {SnapshotIndex}");
        }
        if (index <= LastIndex)
        {
            _entries.RemoveRange((int)(index - FirstIndex), (int)(LastIndex - index + 1));
        }
    }

    /// <summary>Raft's "at least as up-to-date" comparison (section 5.4.1): last term first, then length.</summary>
    public bool IsUpToDate(long lastIndex, long lastTerm) =>
        lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

    /// <summary>The first index of the term of the entry at <paramref name="index"/>: the follower's conflict hint.</summary>
    public long FirstIndexOfTermAt(long index)
    {
        long term = TermAt(index) ?? throw new ArgumentOutOfRangeException(nameof(index));
        long first = index;
        while (first - 1 > SnapshotIndex && TermAt(first - 1) == term)
        {
            first--;
        }
        return first;
    }

    /// <summary>The last index at or below <paramref name="atOrBelow"/> holding <paramref name="term"/>, or null.</summary>
    public long? LastIndexOfTerm(long term, long atOrBelow)
    {
        for (long i = Math.Min(atOrBelow, LastIndex); i >= FirstIndex; i--)
        {
            long t = TermAt(i)!.Value;
            if (t == term)
            {
                return i;
            }
            if (t < term)
            {
                return null; // terms only grow along the log
            }
        }
        return null;
    }
}
