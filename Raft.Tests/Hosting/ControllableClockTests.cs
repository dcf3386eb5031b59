using Microsoft.Extensions.Time.Testing;
using Raft.Engine.Hosting;

namespace Raft.Tests.Hosting;

/// <summary>The clock a watched cluster shares: driven here by a fake real clock, so every step is exact.</summary>
public sealed class ControllableClockTests
{
    private static (FakeTimeProvider Real, ControllableClock Clock, List<TimeSpan> Fired) Ticking(TimeSpan every)
    {
        var real = new FakeTimeProvider();
        var clock = new ControllableClock(real, TimeSpan.FromMilliseconds(1));
        var fired = new List<TimeSpan>();
        clock.CreateTimer(_ => fired.Add(clock.Elapsed), null, every, every);
        return (real, clock, fired);
    }

    private static void RunReal(FakeTimeProvider real, int milliseconds)
    {
        for (int i = 0; i < milliseconds; i++)
        {
            real.Advance(TimeSpan.FromMilliseconds(1));
        }
    }

    [Fact]
    public void While_paused_no_timer_fires_however_much_real_time_passes()
    {
        var (real, clock, fired) = Ticking(TimeSpan.FromMilliseconds(10));
        RunReal(real, 35);
        Assert.Equal(3, fired.Count);
        clock.Pause();
        RunReal(real, 500);
        Assert.Equal(3, fired.Count);
        clock.Resume();
        RunReal(real, 10);
        Assert.Equal(4, fired.Count);
    }

    [Fact]
    public void A_step_fires_exactly_the_timers_due_within_it_in_order()
    {
        var (_, clock, fired) = Ticking(TimeSpan.FromMilliseconds(10));
        var other = new List<string>();
        clock.CreateTimer(_ => other.Add($"once at {clock.Elapsed.TotalMilliseconds}"), null, TimeSpan.FromMilliseconds(15), Timeout.InfiniteTimeSpan);
        clock.Pause();
        clock.Step(TimeSpan.FromMilliseconds(10));
        Assert.Equal([TimeSpan.FromMilliseconds(10)], fired);
        clock.Step(TimeSpan.FromMilliseconds(10));
        Assert.Equal([TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20)], fired);
        Assert.Equal(["once at 15"], other);
        Assert.Equal(TimeSpan.FromMilliseconds(20), clock.Elapsed);
        Assert.Throws<InvalidOperationException>(() => { clock.Resume(); clock.Step(TimeSpan.FromMilliseconds(1)); });
    }

    [Fact]
    public void At_a_twentieth_of_real_speed_a_tick_takes_twenty_times_as_long()
    {
        var (real, clock, fired) = Ticking(TimeSpan.FromMilliseconds(10));
        clock.Speed = 0.05;
        RunReal(real, 199);
        Assert.Empty(fired);
        RunReal(real, 2);
        Assert.Single(fired);
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.Speed = 0);
    }
}
