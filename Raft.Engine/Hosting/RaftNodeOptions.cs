using Raft.Engine.Consensus;

namespace Raft.Engine.Hosting;

/// <summary>How to run one <see cref="RaftNode"/>: its id, the initial members, the tick, queue limits and the Raft timing (<see cref="Raft"/>).</summary>
public sealed record RaftNodeOptions
{
    public required string Id { get; init; }

    /// <summary>
    /// The ids of the initial voters, this node included, used when the node starts with no state. Empty for a server
    /// that joins an existing cluster: it waits as a non-member until the leader adds it.
    /// </summary>
    public required IReadOnlyCollection<string> Members { get; init; }

    /// <summary>Where the initial members can be reached (id to address), recorded in the bootstrap configuration.</summary>
    public IReadOnlyDictionary<string, string>? Addresses { get; init; }

    public RaftOptions Raft { get; init; } = new();

    /// <summary>The length of one core tick. With the default 10 ms, elections time out after 150-300 ms.</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Client requests (proposals, reads, admin calls) handed to the node and not yet taken by its loop, at most; more
    /// are refused at once with <see cref="NodeOverloadedException"/>, so a flood cannot grow the node's memory.
    /// </summary>
    public int MaxQueuedRequests { get; init; } = 10_000;

    /// <summary>Peer messages waiting for the loop, at most; more are dropped (Raft repairs lost messages by itself).</summary>
    public int MaxQueuedMessages { get; init; } = 10_000;

    /// <summary>
    /// How long a linearizable read on a follower waits for the leader's answer to its read-index request before it
    /// fails (a lost answer would otherwise keep the waiter forever).
    /// </summary>
    public TimeSpan ReadIndexTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// How long a write to a server that knows no leader (an election is running) waits for one to be named before it
    /// is refused; then it is refused with the new leader's name, or taken here if this server won. Null: the longest
    /// election timeout (twice <see cref="RaftOptions.ElectionTicks"/> ticks); zero: refused at once.
    /// </summary>
    public TimeSpan? LeaderWait { get; init; }

    /// <summary>Seed of the core's random source (election timeouts); null picks one.</summary>
    public int? RandomSeed { get; init; }
}
