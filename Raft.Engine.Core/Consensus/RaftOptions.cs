namespace Raft.Engine.Consensus;

/// <summary>
/// Settings of one core. Time is counted in ticks; the host decides how long a tick is
/// (10 ms by default, which makes the defaults a 150-300 ms election timeout and a 50 ms heartbeat).
/// </summary>
public sealed record RaftOptions
{
    /// <summary>The minimum election timeout; each timeout is drawn from [ElectionTicks, 2 * ElectionTicks).</summary>
    public int ElectionTicks { get; init; } = 15;

    public int HeartbeatTicks { get; init; } = 5;

    /// <summary>A node that could not win an election does not raise terms (dissertation 9.6).</summary>
    public bool PreVote { get; init; } = true;

    /// <summary>A leader that has not heard from a majority within an election timeout steps down,
    /// and a follower that heard from a live leader within that time ignores vote requests.</summary>
    public bool CheckQuorum { get; init; } = true;

    /// <summary>
    /// Leader lease reads (off by default): a leader answers a linearizable read from its commit index without a
    /// heartbeat round while a majority answered one within an election timeout less <see cref="LeaseDriftMarginTicks"/>.
    /// It assumes the servers' clocks (tick rates) differ by less than that margin over an election timeout, and
    /// requires CheckQuorum; a restarted server then also waits an election timeout before it votes. The lease runs from
    /// when the answered round was sent, on the leader's clock; whenever its ticks fall behind the host's monotonic clock by
    /// more than the drift margin (a paused process gets one timer callback on resuming, not one per tick), the host voids
    /// it (<see cref="RaftCore.VoidLease"/>) until a round sent after that is answered.
    /// </summary>
    public bool LeaseReads { get; init; }

    /// <summary>How much shorter than an election timeout the lease is, for clock drift (see <see cref="LeaseReads"/>).</summary>
    public int LeaseDriftMarginTicks { get; init; } = 3;

    public int MaxEntriesPerMessage { get; init; } = 256;

    public long MaxBytesPerMessage { get; init; } = 1024 * 1024;

    /// <summary>How many AppendEntries with entries may be in flight to one follower that is in step.</summary>
    public int MaxInflightMessages { get; init; } = 64;

    /// <summary>A snapshot is due when at least this many entries were applied since the last one (and see <see cref="SnapshotLogRatio"/>).</summary>
    public int SnapshotThreshold { get; init; } = 1000;

    /// <summary>
    /// ... and when those entries hold at least this many times the bytes of the last snapshot. A snapshot costs the
    /// size of the state, so taking one only after as many bytes of log keeps its cost per byte written bounded however
    /// large the state grows (at 100,000 keys a snapshot every 1,000 entries took most of the CPU). 0: count only.
    /// </summary>
    public double SnapshotLogRatio { get; init; } = 1.0;

    /// <summary>
    /// ... or when the entries applied since the last snapshot hold at least this many bytes, however few they are,
    /// so that a log of large entries stays bounded in bytes too (the ratio rule still applies).
    /// </summary>
    public long SnapshotLogBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>
    /// A leader refuses new proposals (<see cref="ProposeRefusal.Overloaded"/>) while the entries it holds that are not
    /// yet committed take more than this many bytes: without a majority its log would otherwise grow until memory
    /// runs out. One entry is always accepted, however large.
    /// </summary>
    public long MaxUncommittedBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>A snapshot received in chunks that grows past this many bytes is refused (<see cref="SnapshotRefused"/>) and dropped.</summary>
    public long MaxSnapshotBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>Entries kept in memory behind a new snapshot, so followers slightly behind need no InstallSnapshot.</summary>
    public int EntriesKeptAfterSnapshot { get; init; } = 200;

    public int SnapshotChunkSize { get; init; } = 64 * 1024;

    /// <summary>
    /// At most this many committed entries per Ready, so that applying a long backlog (after a restart) is interleaved
    /// with the node's other work instead of stalling its votes and acknowledgements for seconds.
    /// </summary>
    public int MaxCommittedEntriesPerReady { get; init; } = 1024;

    /// <summary>How many catch-up rounds a new server gets before AddServer gives up (dissertation 4.2.1).</summary>
    public int MaxCatchUpRounds { get; init; } = 10;

    /// <summary>
    /// For a server that starts with no configuration and waits to be added: the servers (the cluster's voters when it
    /// is started) whose AppendEntries and InstallSnapshot it takes before it knows the cluster. Empty: it takes them from
    /// any sender, which only an authenticated transport makes safe.
    /// </summary>
    public IReadOnlySet<string> JoinFrom { get; init; } = new HashSet<string>();

    public void Validate()
    {
        if (HeartbeatTicks < 1)
        {
            throw new ArgumentException("HeartbeatTicks must be at least 1.");
        }
        if (ElectionTicks <= HeartbeatTicks)
        {
            throw new ArgumentException("ElectionTicks must be greater than HeartbeatTicks.");
        }
        if (LeaseReads && (!CheckQuorum || LeaseDriftMarginTicks < 0 || LeaseDriftMarginTicks >= ElectionTicks))
        {
            throw new ArgumentException("LeaseReads needs CheckQuorum and a drift margin shorter than the election timeout.");
        }
        if (MaxEntriesPerMessage < 1 || MaxBytesPerMessage < 1 || MaxInflightMessages < 1 || SnapshotChunkSize < 1 || SnapshotThreshold < 1 || MaxCommittedEntriesPerReady < 1
            || EntriesKeptAfterSnapshot < 0 || MaxCatchUpRounds < 1 || SnapshotLogRatio < 0 || double.IsNaN(SnapshotLogRatio)
            || SnapshotLogBytes < 1 || MaxUncommittedBytes < 1 || MaxSnapshotBytes < 1 || MaxSnapshotBytes > Array.MaxLength)
        {
            throw new ArgumentException("Message and inflight limits must be positive.");
        }
    }
}

/// <summary>
/// Test-only switches that turn off one Raft rule each, so tests can show the simulation catches the bug.
/// Never set outside tests.
/// </summary>
internal sealed record RuleSwitches
{
    public static readonly RuleSwitches Safe = new();

    /// <summary>Figure 2: commit only entries of the leader's current term by counting replicas (the Figure 8 rule).</summary>
    public bool CommitOnlyCurrentTermByCounting { get; init; } = true;

    /// <summary>The vote is persisted before the grant is sent.</summary>
    public bool PersistVote { get; init; } = true;

    /// <summary>A voter compares logs before granting (section 5.4.1).</summary>
    public bool CheckCandidateLogUpToDate { get; init; } = true;

    /// <summary>A leader changes the configuration only after committing an entry of its own term (the 2015 fix).</summary>
    public bool ChangeOnlyAfterOwnTermCommit { get; init; } = true;

    /// <summary>Votes and acknowledgements leave only after what they promise is persisted (only a leader's replication goes early).</summary>
    public bool PromiseOnlyWhenDurable { get; init; } = true;

    /// <summary>A read index is answered only after a majority confirms this node still leads.</summary>
    public bool ConfirmReadsWithQuorum { get; init; } = true;
}
