namespace Raft.Engine.Hosting;

/// <summary>
/// Compares the core's ticks with the host's monotonic clock. A timer only says "it is time to look": a process that was
/// paused (SIGSTOP, a VM freeze, a long GC, a starved thread pool) gets one timer callback on resuming, not one per tick
/// it missed, so its core believes less time has passed than did, and a leader would go on serving lease reads from
/// before the pause while another leader had been elected. Timers keep their pace (a loaded machine then runs elections
/// slower, not more often); but whenever the core's clock has fallen behind wall time by more than the lease's drift
/// margin, the host voids the lease (<see cref="Consensus.RaftCore.VoidLease"/>), and checks that before every read.
/// </summary>
internal sealed class TickClock(TimeProvider time, TimeSpan tickInterval)
{
    private readonly long _start = time.GetTimestamp();
    private long _delivered;

    private long Elapsed => time.GetElapsedTime(_start).Ticks / tickInterval.Ticks;

    /// <summary>How many ticks of wall time the core has not been given.</summary>
    public long Behind => Math.Max(0, Elapsed - _delivered);

    /// <summary>One tick was given to the core.</summary>
    public void Delivered() => _delivered = Math.Min(_delivered + 1, Elapsed);

    /// <summary>The lease was voided: the core's clock counts from now again.</summary>
    public void Resync() => _delivered = Elapsed;
}
