using Microsoft.AspNetCore.Components.Authorization;
using Raft.Dashboard.Cluster;
using Raft.Node.Transport;

namespace Raft.Dashboard.Access;

/// <summary>
/// The cluster clock as one page may drive it: everyone sees it, only an operator moves it. Pausing, resuming and
/// changing the speed are recorded in the <see cref="AuditTrail"/>; single ticks and messages are not (a lesson steps
/// hundreds of them, and they only move time forward).
/// </summary>
public sealed class OperatorClock(IClusterClock clock, AuthenticationStateProvider authentication, AuditTrail audit) : IClusterClock
{
    public string? UnavailableReason => clock.UnavailableReason;

    public bool Paused => clock.Paused;

    public TimeSpan TickInterval => clock.TickInterval;

    public TimeSpan Now => clock.Now;

    public IReadOnlyList<InFlightMessage> InFlight => clock.InFlight;

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
            if (Allowed($"set the clock's speed to {value:0.##}x", audited: Math.Abs(value - clock.Speed) > 1e-9))
            {
                clock.Speed = value;
            }
        }
    }

    public void Pause()
    {
        if (Allowed("pause the clock", audited: !clock.Paused))
        {
            clock.Pause();
        }
    }

    public void Resume()
    {
        if (Allowed("resume the clock", audited: clock.Paused))
        {
            clock.Resume();
        }
    }

    public void StepTick()
    {
        if (Allowed("step one tick", audited: false))
        {
            clock.StepTick();
        }
    }

    public bool StepMessage() => Allowed("deliver one message", audited: false) && clock.StepMessage();

    public IReadOnlyCollection<string> VotesFor(string candidate, long term, bool preVote) => clock.VotesFor(candidate, term, preVote);

    /// <summary>
    /// Whether the page's user is an operator. The clock's calls are synchronous; a circuit's authentication state is
    /// known from its start, so an answer that is not there yet counts as no (and an event handler never throws).
    /// </summary>
    private bool Allowed(string action, bool audited)
    {
        Task<AuthenticationState> state = authentication.GetAuthenticationStateAsync();
        var user = state.IsCompletedSuccessfully ? state.Result.User : null;
        string name = user is null ? "unknown" : DashboardAccess.NameOf(user);
        string role = user is null ? "nobody" : DashboardAccess.RoleOf(user);
        bool allowed = role == DashboardRoles.Operator;
        if (audited || !allowed)
        {
            audit.Record(new AuditRecord(DateTimeOffset.UtcNow, name, role, action, null, allowed, allowed ? "done" : "refused: only an operator may move the clock"));
        }
        return allowed;
    }
}
