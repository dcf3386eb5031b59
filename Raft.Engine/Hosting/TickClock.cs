namespace Raft.Engine.Hosting;

/// <summary>
/// The core's ticks against the host's monotonic clock. The loop does not wake every tick: it sleeps until the next
/// tick at which the core has work (<see cref="Consensus.RaftCore.TicksUntilDue"/>), and whenever it wakes (that timer,
/// or anything arriving) it gives the core the ticks that have passed up to that planned wake-up (<see cref="TakeDue"/>).
/// Ticks past the plan are not given: a timer that fires late (SIGSTOP, a VM freeze, a long GC, a starved thread pool)
/// makes the core's clock run slow, so a loaded machine runs elections slower, not more often. That lag is counted
/// (<see cref="Behind"/>); past the lease's drift margin the host voids the lease
/// (<see cref="Consensus.RaftCore.VoidLease"/>), for a leader whose clock fell behind could otherwise serve lease reads
/// from before the pause while another leader had been elected.
/// </summary>
internal sealed class TickClock(TimeProvider time, TimeSpan tickInterval)
{
    private readonly long _start = time.GetTimestamp();
    /// <summary>The wall tick the core's clock stands at: the last tick given, with lags forgotten by <see cref="Resync"/>.</summary>
    private long _at;
    /// <summary>The wall tick the loop planned to wake at.</summary>
    private long _wakeAt = 1;
    private long _behind;

    private long Elapsed => time.GetElapsedTime(_start).Ticks / tickInterval.Ticks;

    /// <summary>How many ticks of wall time the core has not been given since the lease was last voided.</summary>
    public long Behind => _behind;

    /// <summary>The ticks to give the core now: those passed up to the planned wake-up. Time past it counts as lag.</summary>
    public int TakeDue()
    {
        long now = Elapsed;
        long reach = Math.Min(now, _wakeAt);
        int due = (int)Math.Max(0, reach - _at);
        _at += due;
        if (now > _wakeAt && now > _at)
        {
            _behind += now - _at; // late: these ticks are not given, and the clock goes on from now
            _at = now;
        }
        return due;
    }

    /// <summary>The loop will sleep until <paramref name="ticks"/> after the core's present tick; returns how long from now that is.</summary>
    public TimeSpan Plan(int ticks)
    {
        _wakeAt = _at + ticks;
        TimeSpan until = (tickInterval * _wakeAt) - time.GetElapsedTime(_start);
        // Timers count whole milliseconds: rounded up, so that the wake-up does not come just before its tick.
        return TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(until.TotalMilliseconds)));
    }

    /// <summary>The lease was voided: its lag counts from now again.</summary>
    public void Resync() => _behind = 0;
}
