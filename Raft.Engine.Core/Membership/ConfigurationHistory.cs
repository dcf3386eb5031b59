using Raft.Engine.Log;

namespace Raft.Engine.Membership;

/// <summary>
/// The configurations in a log: the one in force at the start of the log (from the snapshot or the bootstrap list)
/// and every configuration entry after it. A configuration takes effect as soon as it is appended, so the latest one
/// is in force; truncating its entry brings the previous one back.
/// </summary>
internal sealed class ConfigurationHistory(long baseIndex, ClusterConfiguration baseConfiguration)
{
    private readonly List<(long Index, ClusterConfiguration Configuration)> _entries = [];
    private (long Index, ClusterConfiguration Configuration) _base = (baseIndex, baseConfiguration);

    public ClusterConfiguration Latest => _entries.Count > 0 ? _entries[^1].Configuration : _base.Configuration;

    /// <summary>The index of the entry that set <see cref="Latest"/> (the base index if none did).</summary>
    public long LatestIndex => _entries.Count > 0 ? _entries[^1].Index : _base.Index;

    public void Append(LogEntry entry)
    {
        if (entry.Kind == EntryKind.Configuration)
        {
            _entries.Add((entry.Index, ClusterConfiguration.Decode(entry.Data)));
        }
    }

    /// <summary>The log lost its entries from <paramref name="index"/> on.</summary>
    public void TruncateFrom(long index) => _entries.RemoveAll(e => e.Index >= index);

    /// <summary>The configuration in force at <paramref name="index"/>.</summary>
    public ClusterConfiguration At(long index)
    {
        for (int i = _entries.Count - 1; i >= 0; i--)
        {
            if (_entries[i].Index <= index)
            {
                return _entries[i].Configuration;
            }
        }
        return _base.Configuration;
    }

    /// <summary>The log before <paramref name="index"/> is gone: what was in force there becomes the base.</summary>
    public void CompactTo(long index)
    {
        _base = (index, At(index));
        _entries.RemoveAll(e => e.Index <= index);
    }

    /// <summary>A snapshot replaced the log up to its index; entries after it (if the log kept them) still count.</summary>
    public void ResetTo(long index, ClusterConfiguration configuration)
    {
        _base = (index, configuration);
        _entries.RemoveAll(e => e.Index <= index);
    }
}
