namespace Raft.Engine.Hosting;

/// <summary>
/// A clock that can be paused, stepped and slowed down at run time, for nodes that a person watches (the dashboard's
/// teaching mode): give the same instance to every <see cref="RaftNode"/> of a cluster and the whole cluster's time
/// stands still, steps or crawls together. While paused no timer fires: no tick, so no election and no heartbeat.
/// Time runs as real time multiplied by <see cref="Speed"/>; <see cref="Step"/> moves a paused clock on by a given
/// amount, firing the timers due on the way in order.
/// </summary>
public sealed class ControllableClock : TimeProvider, IDisposable
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _real;
    private readonly DateTimeOffset _origin;
    private readonly List<ClockTimer> _timers = [];
    private readonly ITimer _driver;
    private TimeSpan _elapsed;
    private long _realMark;
    private double _speed = 1;
    private bool _paused;
    private long _sequence;

    /// <param name="real">The clock it follows while running (the system's by default).</param>
    /// <param name="resolution">How often it looks at the real clock to fire what is due.</param>
    public ControllableClock(TimeProvider? real = null, TimeSpan? resolution = null)
    {
        _real = real ?? System;
        _origin = _real.GetUtcNow();
        _realMark = _real.GetTimestamp();
        TimeSpan every = resolution ?? TimeSpan.FromMilliseconds(2);
        _driver = _real.CreateTimer(_ => Advance(TimeSpan.Zero), null, every, every);
    }

    public bool Paused
    {
        get
        {
            lock (_lock)
            {
                return _paused;
            }
        }
    }

    /// <summary>Simulated seconds per real second, in (0, 1]: 0.05 is one twentieth of real speed.</summary>
    public double Speed
    {
        get
        {
            lock (_lock)
            {
                return _speed;
            }
        }
        set
        {
            if (!(value is > 0 and <= 1))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "the speed must be in (0, 1]");
            }
            lock (_lock)
            {
                Sync();
                _speed = value;
            }
            Changed?.Invoke();
        }
    }

    /// <summary>Raised when the clock is paused, resumed, stepped or changes speed.</summary>
    public event Action? Changed;

    /// <summary>How much time has passed on this clock since it was made.</summary>
    public TimeSpan Elapsed
    {
        get
        {
            lock (_lock)
            {
                Sync();
                return _elapsed;
            }
        }
    }

    public override DateTimeOffset GetUtcNow() => _origin + Elapsed;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Elapsed.Ticks;

    public void Pause()
    {
        lock (_lock)
        {
            Sync();
            _paused = true;
        }
        Changed?.Invoke();
    }

    public void Resume()
    {
        lock (_lock)
        {
            Sync();
            _paused = false;
        }
        Changed?.Invoke();
    }

    /// <summary>Moves a paused clock on by <paramref name="by"/>, firing every timer due on the way, in order.</summary>
    public void Step(TimeSpan by)
    {
        if (by < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(by), by, "time only moves forward");
        }
        lock (_lock)
        {
            if (!_paused)
            {
                throw new InvalidOperationException("pause the clock before stepping it");
            }
        }
        Advance(by);
        Changed?.Invoke();
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ClockTimer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    public void Dispose() => _driver.Dispose();

    /// <summary>Brings <see cref="_elapsed"/> up to the real clock (scaled), unless paused. Call under the lock.</summary>
    private void Sync()
    {
        long now = _real.GetTimestamp();
        if (!_paused)
        {
            _elapsed += _real.GetElapsedTime(_realMark, now) * _speed;
        }
        _realMark = now;
    }

    /// <summary>Fires what is due, one timer at a time (a callback may change timers), after adding <paramref name="step"/>.</summary>
    private void Advance(TimeSpan step)
    {
        TimeSpan target;
        lock (_lock)
        {
            Sync();
            target = _elapsed + step;
        }
        while (true)
        {
            ClockTimer? due;
            lock (_lock)
            {
                due = _timers.Where(t => t.Due <= target).MinBy(t => (t.Due, t.Sequence));
                if (due is null)
                {
                    _elapsed = target > _elapsed ? target : _elapsed; // another caller may have stepped further meanwhile
                    return;
                }
                _elapsed = due.Due > _elapsed ? due.Due : _elapsed; // a stepped timer sees the time it was due at
                if (due.Period > TimeSpan.Zero)
                {
                    due.Due += due.Period;
                    due.Sequence = ++_sequence;
                }
                else
                {
                    _timers.Remove(due);
                }
            }
            due.Fire();
        }
    }

    private sealed class ClockTimer(ControllableClock clock, TimerCallback callback, object? state) : ITimer
    {
        public TimeSpan Due { get; set; }
        public TimeSpan Period { get; private set; }
        public long Sequence { get; set; }

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._lock)
            {
                clock._timers.Remove(this);
                if (dueTime == Timeout.InfiniteTimeSpan)
                {
                    return true;
                }
                clock.Sync();
                Due = clock._elapsed + dueTime;
                Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
                Sequence = ++clock._sequence;
                clock._timers.Add(this);
            }
            return true;
        }

        public void Dispose()
        {
            lock (clock._lock)
            {
                clock._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
