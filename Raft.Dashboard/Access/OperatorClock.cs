using Microsoft.AspNetCore.Components.Authorization;
using Raft.Dashboard.Cluster;
using Raft.Node.Transport;

namespace Raft.Dashboard.Access;

/// <summary>
/// The cluster clock as one page (one circuit) may drive it: everyone sees it, only an operator moves it. Pausing,
/// resuming and changing the speed are recorded in the <see cref="AuditTrail"/>; single ticks and messages are not (a
/// lesson steps hundreds of them, and they only move time forward). A pause or a slowdown made here is this page's:
/// when the page goes (its circuit is disposed: the tab closed, or it stayed disconnected), it is undone and audited.
/// </summary>
public sealed class OperatorClock(ISharedClusterClock clock, AuthenticationStateProvider authentication, AuditTrail audit) : IClusterClock, IDisposable
{
    private bool _disposed;

    public string? UnavailableReason => clock.UnavailableReason;

    public bool Paused => clock.Paused;

    public TimeSpan TickInterval => clock.TickInterval;

    public TimeSpan Now => clock.Now;

    public IReadOnlyList<InFlightMessage> InFlight => clock.InFlight;

    public ClockHold? Hold => clock.Hold;

    public event Action? Changed
    {
        add => clock.Changed += value;
        remove => clock.Changed -= value;
    }

    public double Speed
    {
        get => clock.Speed;
        set
        {
            if (Allowed($"set the clock's speed to {value:0.##}x", audited: Math.Abs(value - clock.Speed) > 1e-9) is { } by)
            {
                clock.SetSpeed(value, by);
            }
        }
    }

    public void Pause()
    {
        if (Allowed("pause the clock", audited: !clock.Paused) is { } by)
        {
            clock.Pause(by);
        }
    }

    public void Resume()
    {
        if (Allowed("resume the clock", audited: clock.Paused) is not null)
        {
            clock.Resume();
        }
    }

    public void StepTick()
    {
        if (Allowed("step one tick", audited: false) is not null)
        {
            clock.StepTick();
        }
    }

    public bool StepMessage() => Allowed("deliver one message", audited: false) is not null && clock.StepMessage();

    public IReadOnlyCollection<string> VotesFor(string candidate, long term, bool preVote) => clock.VotesFor(candidate, term, preVote);

    /// <summary>
    /// Whether the page's user is an operator: the hold they would take, or null. The clock's calls are synchronous; a
    /// circuit's authentication state is known from its start, so an answer that is not there yet counts as no (and an
    /// event handler never throws). A page that is gone moves nothing (a scenario step still running after it, say).
    /// </summary>
    private ClockHold? Allowed(string action, bool audited)
    {
        if (_disposed)
        {
            return null;
        }
        (string name, string role) = User();
        bool allowed = role == DashboardRoles.Operator;
        if (audited || !allowed)
        {
            audit.Record(new AuditRecord(DateTimeOffset.UtcNow, name, role, action, null, allowed, allowed ? "done" : "refused: only an operator may move the clock"));
        }
        return allowed ? new ClockHold(name, DateTimeOffset.UtcNow, Holder: this) : null;
    }

    private (string Name, string Role) User()
    {
        Task<AuthenticationState> state = authentication.GetAuthenticationStateAsync();
        var user = state.IsCompletedSuccessfully ? state.Result.User : null;
        return user is null ? ("unknown", "nobody") : (DashboardAccess.NameOf(user), DashboardAccess.RoleOf(user));
    }

    /// <summary>The page is gone: what it paused resumes, what it slowed runs at real speed again.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        (string name, string role) = ("unknown", "nobody");
        try
        {
            (name, role) = User();
        }
        catch (ObjectDisposedException)
        {
            // the circuit's other services went first: the audit says "unknown"
        }
        _disposed = true;
        if (clock.Release(this) is { } undone)
        {
            audit.Record(new AuditRecord(DateTimeOffset.UtcNow, name, role, "close the page", null, true, undone));
        }
    }
}
