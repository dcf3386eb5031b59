using System.Globalization;
using Raft.Dashboard.ServiceClient;

namespace Raft.Dashboard.Model;

/// <summary>A safety property of Raft that what the dashboard saw breaks, with the evidence.</summary>
public sealed record SafetyViolation(string Property, string Evidence);

/// <summary>
/// Checks, from everything the dashboard observes of all nodes, the safety properties of Raft (Figure 3 of the
/// paper): Election Safety (at most one leader per term), Log Matching (one entry per index and term), State Machine
/// Safety (never two different entries committed at one index), and that terms and commit indexes never go back.
/// Each node's status and log come from its own ordered event stream, so what is checked is what that node said.
/// A violation is kept for good: a banner shows it until the page is restarted.
/// </summary>
public sealed class SafetyAuditor : IDisposable
{
    /// <summary>How far below the highest committed index entries are remembered (older ones cannot change anyway).</summary>
    private const long Window = 20_000;

    private readonly Lock _lock = new();
    private readonly IClusterMonitor? _monitor;
    private readonly Dictionary<long, string> _leaderOfTerm = [];
    private readonly Dictionary<(long Index, long Term), (string Entry, string Node)> _entries = [];
    private readonly Dictionary<long, (long Term, string Entry, string Node)> _committed = [];
    private readonly Dictionary<string, long> _terms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _commits = new(StringComparer.Ordinal);
    private readonly List<SafetyViolation> _violations = [];
    private long _highestCommitted;

    /// <param name="monitor">Audited on every change it reports; null to feed <see cref="Observe"/> by hand.</param>
    public SafetyAuditor(IClusterMonitor? monitor = null)
    {
        _monitor = monitor;
        if (monitor != null)
        {
            monitor.Changed += OnChanged;
        }
    }

    public IReadOnlyList<SafetyViolation> Violations
    {
        get
        {
            lock (_lock)
            {
                return [.. _violations];
            }
        }
    }

    public event Action? ViolationFound;

    private void OnChanged() => Observe(_monitor!.Current);

    public void Observe(ClusterSnapshot cluster)
    {
        int before;
        lock (_lock)
        {
            before = _violations.Count;
            // A node that left the cluster is forgotten: a new, empty server may be given its name.
            foreach (string gone in _terms.Keys.Where(id => cluster[id] is null).ToList())
            {
                _terms.Remove(gone);
                _commits.Remove(gone);
            }
            foreach (NodeSnapshot node in cluster.Nodes)
            {
                if (!node.Connected || node.Status is not { } status)
                {
                    _commits.Remove(node.Id); // the commit index is volatile: a restarted node starts again from its snapshot
                    continue;
                }
                CheckMonotonic(node.Id, status.Term, status.CommitIndex);
                if (status.Role == "Leader")
                {
                    CheckOneLeader(node.Id, status.Term);
                }
                foreach (var entry in node.Log)
                {
                    CheckEntry(node.Id, entry.Index, entry.Term, $"{entry.Kind} {entry.Summary}", committed: entry.Index <= Math.Min(status.CommitIndex, status.AppliedIndex));
                }
            }
            Forget();
        }
        if (Violations.Count > before)
        {
            ViolationFound?.Invoke();
        }
    }

    private void Violate(string property, string evidence)
    {
        if (!_violations.Any(v => v.Property == property && v.Evidence == evidence))
        {
            _violations.Add(new SafetyViolation(property, evidence));
        }
    }

    private void CheckMonotonic(string node, long term, long commit)
    {
        if (_terms.TryGetValue(node, out long seenTerm) && term < seenTerm)
        {
            Violate("Terms never decrease", $"{node} went from term {seenTerm} back to {term}");
        }
        _terms[node] = Math.Max(term, seenTerm);
        if (_commits.TryGetValue(node, out long seenCommit) && commit < seenCommit)
        {
            Violate("Commit indexes never decrease", $"{node} went from commit index {seenCommit} back to {commit} without restarting");
        }
        _commits[node] = Math.Max(commit, seenCommit);
    }

    private void CheckOneLeader(string node, long term)
    {
        if (_leaderOfTerm.TryGetValue(term, out string? other) && other != node)
        {
            Violate("Election Safety", $"{other} and {node} were both leader of term {term}");
            return;
        }
        _leaderOfTerm[term] = node;
    }

    private void CheckEntry(string node, long index, long term, string entry, bool committed)
    {
        if (_entries.TryGetValue((index, term), out var seen) && seen.Entry != entry)
        {
            Violate("Log Matching", string.Create(CultureInfo.InvariantCulture,
                $"index {index} of term {term} is \"{seen.Entry}\" on {seen.Node} but \"{entry}\" on {node}"));
        }
        else
        {
            _entries[(index, term)] = (entry, node);
        }
        if (!committed)
        {
            return;
        }
        if (_committed.TryGetValue(index, out var applied) && (applied.Term != term || applied.Entry != entry))
        {
            Violate("State Machine Safety", string.Create(CultureInfo.InvariantCulture,
                $"index {index} was committed as \"{applied.Entry}\" (term {applied.Term}) on {applied.Node} but as \"{entry}\" (term {term}) on {node}"));
        }
        else
        {
            _committed[index] = (term, entry, node);
            _highestCommitted = Math.Max(_highestCommitted, index);
        }
    }

    /// <summary>Bounded memory: what lies far below every commit index is settled and no longer needed.</summary>
    private void Forget()
    {
        long below = _highestCommitted - Window;
        if (below <= 0 || _committed.Count < 2 * Window)
        {
            return;
        }
        foreach (long index in _committed.Keys.Where(i => i < below).ToList())
        {
            _committed.Remove(index);
        }
        foreach (var key in _entries.Keys.Where(k => k.Index < below).ToList())
        {
            _entries.Remove(key);
        }
    }

    public void Dispose()
    {
        if (_monitor != null)
        {
            _monitor.Changed -= OnChanged;
        }
    }
}
