using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Tests.Simulation;

/// <summary>A safety property of Raft (Figure 3 of the paper, and a few more) did not hold.</summary>
internal sealed class InvariantViolation(string property, string detail) : Exception($"{property}: {detail}")
{
    public string Property { get; } = property;
}

/// <summary>
/// Checks Raft's safety properties after every step of a simulated cluster, incrementally:
/// Election Safety, Leader Append-Only, Log Matching, Leader Completeness, State Machine Safety,
/// terms and commit indexes never decreasing, and entries applied in order without gaps.
/// Each log is mirrored as a chain of hashes (hash of an entry and everything before it), so comparing two
/// prefixes is comparing two numbers.
/// </summary>
internal sealed class InvariantChecker
{
    private readonly Dictionary<string, Mirror> _mirrors = new(StringComparer.Ordinal);
    private readonly Dictionary<long, string> _leaderOfTerm = [];
    private readonly Dictionary<(long Index, long Term), ulong> _chainOf = [];
    private readonly List<Committed> _committed = []; // index i at [i - 1]
    private readonly Dictionary<long, long> _highestCommittedByTerm = []; // commit term -> highest index committed in it
    private readonly List<ulong> _applied = []; // index i at [i - 1]: the chain of the first entry applied there
    private readonly Dictionary<(long Term, string Candidate), HashSet<string>> _votes = [];

    private sealed class Mirror
    {
        /// <summary>The log as last seen; null where the entry is known only by its chain (installed from a snapshot).</summary>
        public List<LogEntry?> Entries { get; } = [];
        public List<ulong> Chain { get; } = [];
        public long HighestTerm { get; set; }
        /// <summary>The highest term this server sent a message in: it acted on that term, so the term must be durable.</summary>
        public long HighestTermSent { get; set; }
        public long CommitIndex { get; set; }
        public long AppliedIndex { get; set; }
        public long LeaderTerm { get; set; } = -1;
    }

    private readonly record struct Committed(long Term, ulong Chain, long CommitTerm);

    public long CommittedCount => _committed.Count;
    public IReadOnlyDictionary<long, string> LeadersByTerm => _leaderOfTerm;

    /// <summary>Checks one server after it changed. Call before applying its newly committed entries.</summary>
    public void AfterStep(RaftCore core)
    {
        Mirror mirror = MirrorOf(core.Id);

        if (core.Term < mirror.HighestTerm)
        {
            throw new InvariantViolation("Terms never decrease", $"{core.Id} went from term {mirror.HighestTerm} to {core.Term}");
        }
        mirror.HighestTerm = core.Term;

        long truncatedAt = SyncLog(core, mirror);

        if (core.Role == Role.Leader)
        {
            if (_leaderOfTerm.TryGetValue(core.Term, out string? other) && other != core.Id)
            {
                throw new InvariantViolation("Election Safety", $"{other} and {core.Id} are both leaders of term {core.Term}");
            }
            if (mirror.LeaderTerm != core.Term)
            {
                CheckElection(core);
            }
            _leaderOfTerm[core.Term] = core.Id;
            if (mirror.LeaderTerm == core.Term && truncatedAt > 0)
            {
                throw new InvariantViolation("Leader Append-Only", $"leader {core.Id} of term {core.Term} lost its entries from index {truncatedAt}");
            }
            mirror.LeaderTerm = core.Term;
        }
        else
        {
            mirror.LeaderTerm = -1;
        }

        if (core.CommitIndex < mirror.CommitIndex)
        {
            throw new InvariantViolation("Commit index never decreases", $"{core.Id} went from {mirror.CommitIndex} to {core.CommitIndex}");
        }
        if (core.CommitIndex > mirror.CommitIndex)
        {
            mirror.CommitIndex = core.CommitIndex;
            RecordCommitted(core, mirror);
        }
        if (core.Role == Role.Leader)
        {
            CheckLeaderCompleteness(core.Id, mirror);
        }
    }

    /// <summary>Checks an entry a server is about to apply: in order, without gaps, and the same everywhere.</summary>
    public void OnApplied(string id, LogEntry entry)
    {
        Mirror mirror = MirrorOf(id);
        if (entry.Index != mirror.AppliedIndex + 1)
        {
            throw new InvariantViolation("Applied in order", $"{id} applied {entry.Index} after {mirror.AppliedIndex}");
        }
        mirror.AppliedIndex = entry.Index;
        if (entry.Index > mirror.CommitIndex)
        {
            throw new InvariantViolation("Only committed entries are applied", $"{id} applied {entry.Index} with commit index {mirror.CommitIndex}");
        }
        ulong chain = mirror.Chain[(int)entry.Index - 1];
        if (entry.Index <= _applied.Count)
        {
            if (_applied[(int)entry.Index - 1] != chain)
            {
                throw new InvariantViolation("State Machine Safety", $"{id} applied a different entry at index {entry.Index} than another server");
            }
        }
        else
        {
            _applied.Add(chain);
        }
    }

    /// <summary>A restarted server starts with its durable state: volatile commit and applied indexes start over.</summary>
    public void OnRestart(string id, long durableTerm)
    {
        Mirror mirror = MirrorOf(id);
        // A term the server never persisted may be lost with a crash, but never one it acted on.
        if (durableTerm < mirror.HighestTermSent)
        {
            throw new InvariantViolation("Terms never decrease", $"{id} restarted in term {durableTerm} after sending messages in term {mirror.HighestTermSent}");
        }
        mirror.HighestTerm = durableTerm;
        mirror.CommitIndex = 0;
        mirror.AppliedIndex = 0;
        mirror.LeaderTerm = -1;
    }

    private Mirror MirrorOf(string id)
    {
        if (!_mirrors.TryGetValue(id, out Mirror? mirror))
        {
            mirror = new Mirror();
            _mirrors[id] = mirror;
        }
        return mirror;
    }

    /// <summary>Brings the mirror up to date with the core's log; returns the index where it was truncated, or 0.</summary>
    private long SyncLog(RaftCore core, Mirror mirror)
    {
        long truncatedAt = 0;
        int compacted = (int)core.FirstIndex - 1;
        if (compacted > 0 && (mirror.Chain.Count < compacted || mirror.Chain[compacted - 1] != CommittedChain(compacted)))
        {
            // The core holds no entries up to `compacted`: it installed a snapshot, which must be the committed prefix.
            if (_committed.Count < compacted)
            {
                throw new InvariantViolation("Snapshots hold committed state", $"{core.Id} holds a snapshot up to {compacted} but only {_committed.Count} entries are committed");
            }
            int same = 0;
            while (same < Math.Min(mirror.Chain.Count, compacted) && mirror.Chain[same] == _committed[same].Chain)
            {
                same++;
            }
            if (same < mirror.Chain.Count)
            {
                truncatedAt = same + 1;
            }
            mirror.Entries.RemoveRange(same, mirror.Entries.Count - same);
            mirror.Chain.RemoveRange(same, mirror.Chain.Count - same);
            for (int i = same; i < compacted; i++)
            {
                mirror.Entries.Add(null);
                mirror.Chain.Add(_committed[i].Chain);
            }
        }

        // A step changes a log only by cutting a suffix and appending: find the longest unchanged prefix from the top.
        int unchanged = (int)Math.Min(mirror.Entries.Count, core.LastIndex);
        while (unchanged > compacted && !ReferenceEquals(mirror.Entries[unchanged - 1], core.EntryAt(unchanged)))
        {
            unchanged--;
        }
        if (unchanged < mirror.Entries.Count)
        {
            truncatedAt = truncatedAt == 0 ? unchanged + 1 : Math.Min(truncatedAt, unchanged + 1);
        }
        if (truncatedAt > 0 && truncatedAt <= mirror.CommitIndex)
        {
            throw new InvariantViolation("Committed entries are never removed", $"{core.Id} lost committed entry {truncatedAt}");
        }
        mirror.Entries.RemoveRange(unchanged, mirror.Entries.Count - unchanged);
        mirror.Chain.RemoveRange(unchanged, mirror.Chain.Count - unchanged);
        for (long index = unchanged + 1; index <= core.LastIndex; index++)
        {
            LogEntry entry = core.EntryAt(index);
            ulong chain = ChainHash(index == 1 ? 0 : mirror.Chain[^1], entry);
            mirror.Entries.Add(entry);
            mirror.Chain.Add(chain);
            if (_chainOf.TryGetValue((index, entry.Term), out ulong known))
            {
                if (known != chain)
                {
                    throw new InvariantViolation("Log Matching", $"{core.Id} holds an entry at index {index} term {entry.Term} whose prefix differs from another server's");
                }
            }
            else
            {
                _chainOf[(index, entry.Term)] = chain;
            }
        }
        return truncatedAt;
    }

    private ulong CommittedChain(int index) => index <= _committed.Count ? _committed[index - 1].Chain : 0;

    /// <summary>
    /// A server's state machine was replaced by a snapshot up to <paramref name="index"/> (installed from the leader, or
    /// restored at restart): never an older state than it had, and only committed state.
    /// </summary>
    public void OnSnapshotApplied(string id, long index, long term)
    {
        Mirror mirror = MirrorOf(id);
        if (index <= mirror.AppliedIndex)
        {
            throw new InvariantViolation("Snapshots never go back", $"{id} installed a snapshot at {index} over applied state at {mirror.AppliedIndex}");
        }
        if (index > _committed.Count || _committed[(int)index - 1].Term != term)
        {
            throw new InvariantViolation("Snapshots hold committed state", $"{id} applied a snapshot at {index} (term {term}) that is not the committed prefix");
        }
        mirror.AppliedIndex = index;
    }

    /// <summary>Records every vote granted, so that each election can be checked against the winner's configuration.</summary>
    public void OnSent(RaftMessage message)
    {
        if (message is not RequestVote { PreVote: true } and not RequestVoteResponse { PreVote: true })
        {
            Mirror sender = MirrorOf(message.From); // pre-votes carry a term the sender does not hold
            sender.HighestTermSent = Math.Max(sender.HighestTermSent, message.Term);
        }
        if (message is RequestVoteResponse { Granted: true, PreVote: false })
        {
            if (!_votes.TryGetValue((message.Term, message.To), out HashSet<string>? voters))
            {
                voters = new HashSet<string>(StringComparer.Ordinal);
                _votes[(message.Term, message.To)] = voters;
            }
            voters.Add(message.From);
        }
    }

    /// <summary>A leader was elected by a majority of the voters of its configuration: learners' votes never count.</summary>
    private void CheckElection(RaftCore leader)
    {
        HashSet<string> granted = _votes.GetValueOrDefault((leader.Term, leader.Id)) ?? [];
        int votes = leader.Configuration.Voters.Count(v => v == leader.Id || granted.Contains(v));
        if (votes < leader.Configuration.QuorumSize)
        {
            throw new InvariantViolation("Elections need a majority of voters", $"{leader.Id} leads term {leader.Term} with {votes} votes of the voters in {leader.Configuration} (granted by {string.Join(",", granted)})");
        }
    }

    private void RecordCommitted(RaftCore core, Mirror mirror)
    {
        long commit = mirror.CommitIndex;
        long overlap = Math.Min(commit, _committed.Count);
        if (overlap > 0 && _committed[(int)overlap - 1].Chain != mirror.Chain[(int)overlap - 1])
        {
            throw new InvariantViolation("State Machine Safety", $"{core.Id} committed a different entry at index {overlap} than was committed before");
        }
        for (long index = _committed.Count + 1; index <= commit; index++)
        {
            _committed.Add(new Committed(mirror.Entries[(int)index - 1]!.Term, mirror.Chain[(int)index - 1], core.Term));
            _highestCommittedByTerm[core.Term] = index;
        }
        foreach ((string id, Mirror other) in _mirrors)
        {
            if (other.LeaderTerm > 0)
            {
                CheckLeaderCompleteness(id, other);
            }
        }
    }

    /// <summary>Leader Completeness: an entry committed in a term is in the log of every leader of a later term.</summary>
    private void CheckLeaderCompleteness(string id, Mirror leader)
    {
        long mustHave = 0;
        foreach ((long term, long index) in _highestCommittedByTerm)
        {
            if (term < leader.LeaderTerm)
            {
                mustHave = Math.Max(mustHave, index);
            }
        }
        if (mustHave == 0)
        {
            return;
        }
        if (leader.Entries.Count < mustHave || leader.Chain[(int)mustHave - 1] != _committed[(int)mustHave - 1].Chain)
        {
            throw new InvariantViolation("Leader Completeness", $"leader {id} of term {leader.LeaderTerm} lacks committed entry {mustHave}");
        }
    }

    private static ulong ChainHash(ulong previous, LogEntry entry)
    {
        // FNV-1a over the previous link, the entry's identity and its bytes.
        const ulong Prime = 1099511628211;
        ulong hash = 14695981039346656037 ^ previous;
        hash = (hash ^ (ulong)entry.Index) * Prime;
        hash = (hash ^ (ulong)entry.Term) * Prime;
        hash = (hash ^ (ulong)entry.Kind) * Prime;
        foreach (byte b in entry.Data)
        {
            hash = (hash ^ b) * Prime;
        }
        return hash;
    }
}
