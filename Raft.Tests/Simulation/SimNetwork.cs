using Raft.Engine.Consensus;

namespace Raft.Tests.Simulation;

/// <summary>How unreliable the simulated network and servers are. All probabilities are per event.</summary>
internal sealed record FaultProfile
{
    public double DropRate { get; init; }
    public double DuplicateRate { get; init; }
    /// <summary>Each message takes between 0 and this many ticks; varying delays reorder messages.</summary>
    public int MaxDelayTicks { get; init; }
    public double CrashRatePerTick { get; init; }
    public double RestartRatePerTick { get; init; }
    /// <summary>When a crash is due, the chance that it hits between two steps of the server's next batch instead.</summary>
    public double CrashMidBatchRate { get; init; }
    /// <summary>At a crash, the chance that each write the host had started but not seen durable is lost.</summary>
    public double UnsyncedWriteLossRate { get; init; }
    /// <summary>
    /// How far a server's clock may run from the cluster's: each server (each incarnation) ticks at a rate drawn from
    /// [1 - drift, 1 + drift] ticks per cluster tick, so timeouts, heartbeats and leases run at different speeds.
    /// </summary>
    public double ClockDrift { get; init; }
    public double PartitionRatePerTick { get; init; }
    /// <summary>
    /// A nemesis aimed at membership changes: when a leader's voter set has just changed, the chance that it is cut off
    /// from everyone but the server whose vote changed, so the new configuration is stranded on a minority.
    /// </summary>
    public double IsolateLeaderAfterVoterChangeRate { get; init; }
    public double HealRatePerTick { get; init; }
    public double ProposalRatePerTick { get; init; }
    /// <summary>Chance that a proposal is a retry of an earlier command of the same client session.</summary>
    public double RetryRate { get; init; }
    /// <summary>Per tick, per idle recorded client: chance it starts an operation (put, get by ReadIndex, delete, cas).</summary>
    public double ClientOperationRatePerTick { get; init; }
    public double MembershipChangeRatePerTick { get; init; }
    public double TransferRatePerTick { get; init; }
    /// <summary>Chance per tick that a random server snapshots on demand (besides the automatic threshold).</summary>
    public double SnapshotRatePerTick { get; init; }

    public static FaultProfile None { get; } = new();

    /// <summary>The profile CI runs: 10% loss, duplication, heavy reordering, partitions, crashes.</summary>
    public static FaultProfile Heavy { get; } = new()
    {
        DropRate = 0.10,
        DuplicateRate = 0.05,
        MaxDelayTicks = 8,
        CrashRatePerTick = 0.002,
        RestartRatePerTick = 0.02,
        CrashMidBatchRate = 0.3,
        UnsyncedWriteLossRate = 0.5,
        // Within what the lease assumes: two clocks 10% apart lose 1.5 of an election timeout's 15 ticks; the margin is 3.
        ClockDrift = 0.05,
        PartitionRatePerTick = 0.004,
        HealRatePerTick = 0.006,
        ProposalRatePerTick = 0.3,
        RetryRate = 0.1,
        ClientOperationRatePerTick = 0.1,
        MembershipChangeRatePerTick = 0.003,
        TransferRatePerTick = 0.002,
        SnapshotRatePerTick = 0.002,
    };
}

/// <summary>Messages in flight, delivered in order of (delivery tick, send order); links can be cut one way or both.</summary>
internal sealed class SimNetwork(Random random)
{
    private readonly PriorityQueue<RaftMessage, (long Tick, long Sequence)> _inFlight = new();
    private readonly HashSet<(string From, string To)> _cut = [];
    private long _sequence;

    public FaultProfile Faults { get; set; } = FaultProfile.None;
    public int InFlight => _inFlight.Count;
    public long Sent { get; private set; }
    public long Dropped { get; private set; }

    public void Send(RaftMessage message, long now)
    {
        Sent++;
        if (Faults.DropRate > 0 && random.NextDouble() < Faults.DropRate)
        {
            Dropped++;
            return;
        }
        Enqueue(message, now);
        if (Faults.DuplicateRate > 0 && random.NextDouble() < Faults.DuplicateRate)
        {
            Enqueue(message, now);
        }
    }

    private void Enqueue(RaftMessage message, long now)
    {
        int delay = Faults.MaxDelayTicks > 0 ? random.Next(Faults.MaxDelayTicks + 1) : 0;
        _inFlight.Enqueue(message, (now + delay, _sequence++));
    }

    /// <summary>The next message due at or before <paramref name="now"/>; messages on cut links are dropped on arrival.</summary>
    public bool TryTakeDue(long now, out RaftMessage message)
    {
        while (_inFlight.TryPeek(out message!, out (long Tick, long Sequence) due) && due.Tick <= now)
        {
            _inFlight.Dequeue();
            if (!_cut.Contains((message.From, message.To)))
            {
                return true;
            }
            Dropped++;
        }
        message = null!;
        return false;
    }

    public bool IsCut(string from, string to) => _cut.Contains((from, to));

    public void CutOneWay(string from, string to) => _cut.Add((from, to));

    public void Cut(string a, string b)
    {
        _cut.Add((a, b));
        _cut.Add((b, a));
    }

    public void HealAll() => _cut.Clear();

    public void Heal(string a, string b)
    {
        _cut.Remove((a, b));
        _cut.Remove((b, a));
    }

    public bool HasCuts => _cut.Count > 0;

    /// <summary>Forgets every message in flight from <paramref name="from"/> (used by scripted scenarios).</summary>
    public void DropInFlightFrom(string from)
    {
        var keep = new List<(RaftMessage, (long, long))>();
        while (_inFlight.TryDequeue(out RaftMessage? message, out (long, long) priority))
        {
            if (message.From != from)
            {
                keep.Add((message, priority));
            }
        }
        foreach ((RaftMessage message, (long, long) priority) in keep)
        {
            _inFlight.Enqueue(message, priority);
        }
    }
}
