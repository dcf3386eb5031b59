namespace Raft.Engine.Hosting;

/// <summary>
/// Turns the host's monotonic clock into the core's ticks. A timer only says "it is time to look": a process that was
/// paused (SIGSTOP, a VM freeze, a long GC, a starved thread pool) gets one timer callback on resuming, not one per
/// tick it missed, and a core counting callbacks would believe no time had passed, so a leader would go on serving lease
/// reads from before the pause while another leader had been elected. Counting ticks from the clock instead, the core
/// hears of every tick of wall time (<see cref="Consensus.RaftCore.Tick(int)"/>), and a long gap voids its lease.
/// </summary>
internal sealed class TickClock(TimeProvider time, TimeSpan tickInterval)
{
    private readonly long _start = time.GetTimestamp();
    private long _delivered;

    /// <summary>The ticks of wall time that have passed since the last call (0 when a whole tick has not).</summary>
    public int TakeElapsedTicks()
    {
        long elapsed = time.GetElapsedTime(_start).Ticks / tickInterval.Ticks;
        long due = elapsed - _delivered;
        if (due <= 0)
        {
            return 0;
        }
        _delivered = elapsed;
        return (int)Math.Min(due, int.MaxValue);
    }
}
