namespace Raft.Engine.Log;

/// <summary>
/// The core's view of the log: every entry after the compaction point (the last snapshot, less a margin kept
/// for followers that are slightly behind), in memory.
/// Indexes start at 1; index 0 with term 0 is the empty prefix every log shares.
/// </summary>
internal sealed class RaftLog
{
    private readonly List<LogEntry> _entries = [];

    public RaftLog(long compactedIndex, long compactedTerm, IEnumerable<LogEntry> entries)
    {
        CompactedIndex = compactedIndex;
        CompactedTerm = compactedTerm;
        foreach (LogEntry entry in entries)
        {
            Append(entry);
        }
    }

    public long CompactedIndex { get; private set; }
    public long CompactedTerm { get; private set; }
    public long FirstIndex => CompactedIndex + 1;
    public long LastIndex => CompactedIndex + _entries.Count;
    public long LastTerm => _entries.Count == 0 ? CompactedTerm : _entries[^1].Term;

    /// <summary>The term of the entry at <paramref name="index"/>, or null when the log does not hold it.</summary>
    public long? TermAt(long index)
    {
        if (index == CompactedIndex)
        {
            return CompactedTerm;
        }
        if (index < CompactedIndex || index > LastIndex)
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

    /// <summary>The <see cref="LogEntry.Size"/> of the entries from <paramref name="from"/> up to <paramref name="to"/> (inclusive).</summary>
    public long BytesOf(long from, long to)
    {
        long bytes = 0;
        for (long i = from; i <= to; i++)
        {
            bytes += Get(i).Size;
        }
        return bytes;
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
        if (index <= CompactedIndex)
        {
            throw new InvalidOperationException($"truncation at {index} would cut into the snapshot at {CompactedIndex}");
        }
        if (index <= LastIndex)
        {
            _entries.RemoveRange((int)(index - FirstIndex), (int)(LastIndex - index + 1));
        }
    }

    /// <summary>Drops the entries up to <paramref name="index"/>, which a snapshot now covers.</summary>
    public void CompactTo(long index)
    {
        if (index <= CompactedIndex)
        {
            return;
        }
        long term = TermAt(index) ?? throw new ArgumentOutOfRangeException(nameof(index), index, $"log holds {FirstIndex}..{LastIndex}");
        _entries.RemoveRange(0, (int)(index - CompactedIndex));
        CompactedIndex = index;
        CompactedTerm = term;
    }

    /// <summary>
    /// Makes a received snapshot the base of the log: a suffix that agrees with the snapshot's last entry is kept
    /// (section 7: "if an existing entry has the same index and term, retain the entries following it"), the rest discarded.
    /// Returns whether the suffix was kept.
    /// </summary>
    public bool ResetTo(long index, long term)
    {
        bool keep = TermAt(index) == term;
        if (keep)
        {
            CompactTo(index);
            return true;
        }
        _entries.Clear();
        CompactedIndex = index;
        CompactedTerm = term;
        return false;
    }

    /// <summary>The last configuration entry at or below <paramref name="atOrBelow"/>, or null if the log holds none.</summary>
    public LogEntry? LastConfigurationEntry(long atOrBelow)
    {
        for (long i = Math.Min(atOrBelow, LastIndex); i >= FirstIndex; i--)
        {
            LogEntry entry = Get(i);
            if (entry.Kind == EntryKind.Configuration)
            {
                return entry;
            }
        }
        return null;
    }

    /// <summary>Raft's "at least as up-to-date" comparison (section 5.4.1): last term first, then length.</summary>
    public bool IsUpToDate(long lastIndex, long lastTerm) =>
        lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

    /// <summary>The first index of the term of the entry at <paramref name="index"/>: the follower's conflict hint.</summary>
    public long FirstIndexOfTermAt(long index)
    {
        long term = TermAt(index) ?? throw new ArgumentOutOfRangeException(nameof(index));
        long first = index;
        while (first - 1 > CompactedIndex && TermAt(first - 1) == term)
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
