using Raft.Engine.Hosting;
using Raft.Node.Hosting;
using Raft.Node.Transport;

namespace Raft.Dashboard.Cluster;

/// <summary>
/// The cluster's clock as the page controls it: pause, resume, one tick, one message, speed; and the messages in
/// flight. Only the embedded cluster has one: attached nodes run on their own clocks in other processes.
/// </summary>
public interface IClusterClock
{
    /// <summary>Null when the clock can be controlled; else why not, in words for the page.</summary>
    string? UnavailableReason { get; }

    bool Paused { get; }

    /// <summary>Simulated seconds per real second, 1 down to 0.05.</summary>
    double Speed { get; set; }

    /// <summary>One tick of the nodes' clocks (what "step one tick" moves on by).</summary>
    TimeSpan TickInterval { get; }

    /// <summary>The cluster's time now, on the same scale as <see cref="InFlightMessage.SentAt"/>.</summary>
    TimeSpan Now { get; }

    IReadOnlyList<InFlightMessage> InFlight { get; }

    /// <summary>Raised on pause, resume, steps, speed changes and every message held or delivered.</summary>
    event Action? Changed;

    void Pause();

    void Resume();

    void StepTick();

    /// <summary>Delivers the oldest message in flight now; false when none is.</summary>
    bool StepMessage();

    /// <summary>Who granted <paramref name="candidate"/> its (pre-)vote for <paramref name="term"/>, as the answers arrived.</summary>
    IReadOnlyCollection<string> VotesFor(string candidate, long term, bool preVote);

    /// <summary>Who paused or slowed the clock, and since when; null while it runs at real speed.</summary>
    ClockHold? Hold { get; }
}

/// <summary>Who stopped or slowed the cluster's clock: <see cref="Who"/> for the page, <see cref="Holder"/> (their page) to let go.</summary>
public sealed record ClockHold(string Who, DateTimeOffset Since, object? Holder = null);

/// <summary>
/// The one clock all pages share, with who holds it: a pause or a slowdown belongs to the page that made it, and is
/// undone when that page goes (<see cref="Release"/>), so a closed tab never leaves the cluster frozen for everyone.
/// </summary>
public interface ISharedClusterClock : IClusterClock
{
    void Pause(ClockHold by);

    void SetSpeed(double speed, ClockHold by);

    /// <summary>Resumes the clock and puts it back to real speed where <paramref name="holder"/> still holds it; what was undone, or null.</summary>
    string? Release(object holder);
}

/// <summary>The embedded cluster's clock and message gate, shared by all of its nodes.</summary>
public sealed class EmbeddedClusterClock : ISharedClusterClock, IDisposable
{
    public EmbeddedClusterClock(DashboardOptions options)
    {
        TickInterval = TimeSpan.FromMilliseconds(options.TickMs);
        var clock = new ControllableClock();
        // In teaching mode a message takes half a tick, so that at a slow speed it is seen travelling; else it goes at once.
        // Stepped (paused), every message takes a tick, so each step shows what the last one sent.
        var gate = new MessageGate(clock) { FlightTime = options.Teaching ? TickInterval / 2 : TimeSpan.Zero, PausedFlightTime = TickInterval };
        Shared = new SharedClusterTime(clock, gate);
        clock.Changed += () => Changed?.Invoke();
        gate.Changed += () => Changed?.Invoke();
        gate.Delivered += OnDelivered;
    }

    private readonly Lock _votesLock = new();
    private readonly Dictionary<(string Candidate, long Term, bool PreVote), HashSet<string>> _votes = [];

    /// <summary>Counts the grants that reach a candidate (the last few terms only).</summary>
    private void OnDelivered(Raft.Engine.Consensus.RaftMessage message)
    {
        if (message is not Raft.Engine.Consensus.RequestVoteResponse { Granted: true } vote)
        {
            return;
        }
        lock (_votesLock)
        {
            var key = (vote.To, vote.Term, vote.PreVote);
            if (!_votes.TryGetValue(key, out HashSet<string>? voters))
            {
                _votes[key] = voters = new HashSet<string>(StringComparer.Ordinal);
                foreach (var old in _votes.Keys.Where(k => k.Term < vote.Term - 5).ToList())
                {
                    _votes.Remove(old);
                }
            }
            voters.Add(vote.From);
        }
    }

    public IReadOnlyCollection<string> VotesFor(string candidate, long term, bool preVote)
    {
        lock (_votesLock)
        {
            return _votes.TryGetValue((candidate, term, preVote), out HashSet<string>? voters) ? [.. voters.Order(StringComparer.Ordinal)] : [];
        }
    }

    /// <summary>What every embedded node is given.</summary>
    public SharedClusterTime Shared { get; }

    public string? UnavailableReason => null;
    public bool Paused => Shared.Clock.Paused;

    public double Speed
    {
        get => Shared.Clock.Speed;
        set => SetSpeed(value, new ClockHold("someone", DateTimeOffset.UtcNow));
    }

    public TimeSpan TickInterval { get; }
    public TimeSpan Now => Shared.Clock.Elapsed;
    public IReadOnlyList<InFlightMessage> InFlight => Shared.Gate.InFlight;

    public event Action? Changed;

    private readonly Lock _holdLock = new();
    private ClockHold? _pausedBy;
    private ClockHold? _slowedBy;

    public ClockHold? Hold
    {
        get
        {
            lock (_holdLock)
            {
                return Paused ? _pausedBy : _slowedBy;
            }
        }
    }

    public void Pause() => Pause(new ClockHold("someone", DateTimeOffset.UtcNow));

    public void Pause(ClockHold by)
    {
        lock (_holdLock)
        {
            // The last to pause holds the pause (a scenario pausing a clock another page paused takes it over).
            _pausedBy = by;
            Shared.Clock.Pause();
        }
    }

    public void Resume()
    {
        lock (_holdLock)
        {
            _pausedBy = null;
            Shared.Clock.Resume();
        }
    }

    public void SetSpeed(double speed, ClockHold by)
    {
        lock (_holdLock)
        {
            _slowedBy = speed < 1 ? by : null;
            Shared.Clock.Speed = Math.Clamp(speed, 0.05, 1);
        }
    }

    public string? Release(object holder)
    {
        var undone = new List<string>();
        lock (_holdLock)
        {
            if (_pausedBy?.Holder == holder && Shared.Clock.Paused)
            {
                _pausedBy = null;
                Shared.Clock.Resume();
                undone.Add("resumed the clock it had paused");
            }
            if (_slowedBy?.Holder == holder)
            {
                _slowedBy = null;
                Shared.Clock.Speed = 1;
                undone.Add("set the clock it had slowed back to real speed");
            }
        }
        return undone.Count == 0 ? null : string.Join(" and ", undone); // the clock said it changed
    }

    public void StepTick() => Shared.Clock.Step(TickInterval);

    public bool StepMessage() => Shared.Gate.DeliverNext();

    public void Dispose() => Shared.Clock.Dispose();
}

/// <summary>Attach mode: the nodes' clocks are their own; the page hides the controls and says why.</summary>
public sealed class UnavailableClusterClock : ISharedClusterClock
{
    public string? UnavailableReason =>
        "Pause, step and speed need the dashboard's own cluster (run it without --nodes): these nodes run in other processes on their own clocks.";

    public bool Paused => false;

    public double Speed
    {
        get => 1;
        set => throw new InvalidOperationException(UnavailableReason);
    }

    public TimeSpan TickInterval => TimeSpan.Zero;
    public TimeSpan Now => TimeSpan.Zero;
    public IReadOnlyList<InFlightMessage> InFlight => [];

    public event Action? Changed
    {
        add { }
        remove { }
    }

    public void Pause() => throw new InvalidOperationException(UnavailableReason);

    public void Resume() => throw new InvalidOperationException(UnavailableReason);

    public void StepTick() => throw new InvalidOperationException(UnavailableReason);

    public bool StepMessage() => throw new InvalidOperationException(UnavailableReason);

    public IReadOnlyCollection<string> VotesFor(string candidate, long term, bool preVote) => [];

    public ClockHold? Hold => null;

    public void Pause(ClockHold by) => throw new InvalidOperationException(UnavailableReason);

    public void SetSpeed(double speed, ClockHold by) => throw new InvalidOperationException(UnavailableReason);

    public string? Release(object holder) => null;
}
