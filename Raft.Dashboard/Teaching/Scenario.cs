using Raft.Dashboard.Cluster;
using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;
using Raft.Node.Transport;

namespace Raft.Dashboard.Teaching;

/// <summary>
/// One moment of a guided scenario: what the page does on entering it (<see cref="Action"/>), what it says about what
/// happened, and what the user can try before going on.
/// </summary>
public sealed record ScenarioStep(string Title, string Narration, Func<ScenarioContext, Task>? Action = null, string? TryIt = null);

/// <summary>A short narrated sequence of steps that the page performs on the embedded cluster.</summary>
public sealed record Scenario(string Id, string Title, string Summary, IReadOnlyList<ScenarioStep> Steps);

/// <summary>What a scenario's actions can do: drive the clock, act on the cluster, and wait until it shows something.</summary>
/// <remarks><paramref name="stopping"/> is cancelled when the page closes the scenario or goes: its waits end there.</remarks>
public sealed class ScenarioContext(IClusterClock clock, IClusterCommands commands, IClusterMonitor monitor, CancellationToken stopping = default)
{
    /// <summary>How long an action waits for the cluster to show what it expects before it says it could not.</summary>
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    public IClusterClock Clock => clock;
    public IClusterCommands Commands => commands;
    public ClusterSnapshot Cluster => monitor.Current;
    public IReadOnlyList<InFlightMessage> InFlight => clock.InFlight;

    /// <summary>The node a scenario is about (the old leader, the new one, ...), by the name its steps give it.</summary>
    public Dictionary<string, string> Roles { get; } = new(StringComparer.Ordinal);

    public string Role(string name) => Roles.TryGetValue(name, out string? id) ? id : throw new InvalidOperationException($"the scenario has no {name} yet");

    /// <summary>Waits, with the clock running as it is, until <paramref name="condition"/> holds.</summary>
    public async Task WaitUntilAsync(Func<ScenarioContext, bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow + Patience;
        while (!condition(this))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the cluster did not show {what} within {Patience.TotalSeconds:F0} s");
            }
            await Task.Delay(50, stopping);
        }
    }

    /// <summary>A leader every member agrees on, and its id.</summary>
    public async Task<string> StableLeaderAsync()
    {
        await WaitUntilAsync(c => c.Cluster.Leader is { } l && c.AllFollow(l.Id), "one leader known to every member");
        return Cluster.Leader!.Id;
    }

    /// <summary>
    /// Pauses the clock under a leader every member agrees on, and returns it. A leader seen a moment before the pause can
    /// have lost its place meanwhile (on a loaded machine a heartbeat comes late and an election starts); the pause is
    /// kept only if that leader still leads in the same term once the monitor has heard everything sent before it, else
    /// the clock runs again and it tries anew.
    /// </summary>
    public async Task<string> PauseUnderStableLeaderAsync()
    {
        for (int attempt = 1; ; attempt++)
        {
            string leader = await StableLeaderAsync();
            long term = Cluster[leader]?.Status?.Term ?? 0;
            await PauseAsync();
            await Task.Delay(250, stopping); // paused, nothing changes; what happened before the pause reaches the monitor
            if (Cluster.Leader is { } l && l.Id == leader && l.Status!.Term == term && AllFollow(leader))
            {
                return leader;
            }
            if (attempt == 5)
            {
                throw new InvalidOperationException("the cluster kept changing leaders; start the scenario again when it is calm");
            }
            clock.Resume();
        }
    }

    private bool AllFollow(string leader) => Cluster.Members.Where(m => m.Connected).All(m => m.Status?.LeaderId == leader);

    /// <summary>Pauses the clock and lets what is in flight settle on screen.</summary>
    public async Task PauseAsync()
    {
        stopping.ThrowIfCancellationRequested();
        clock.Pause();
        await Task.Delay(150, stopping);
    }

    public void Run(double speed)
    {
        stopping.ThrowIfCancellationRequested();
        clock.Speed = speed;
        clock.Resume();
    }

    /// <summary>
    /// With the clock paused: moves it on one tick at a time (each tick also lands what the last one sent) until
    /// <paramref name="condition"/> holds, as a user pressing "Step 1 tick" would.
    /// </summary>
    public async Task StepUntilAsync(Func<ScenarioContext, bool> condition, string what, int maxTicks = 400)
    {
        for (int i = 0; i < maxTicks; i++)
        {
            if (condition(this))
            {
                return;
            }
            clock.StepTick();
            await Task.Delay(40, stopping); // the nodes act on the tick; the monitor hears of it
        }
        await WaitUntilAsync(condition, what); // a last look, in case the monitor was behind
    }

    public bool AnyInFlight(string kind, string? from = null) =>
        InFlight.Any(m => Components.Controls.MessagesInFlight.Kind(m.Message) == kind && (from is null || m.Message.From == from));

    public string? RoleOf(string id) => Cluster[id] is { Connected: true, Status: { } s } ? s.Role : null;

    /// <summary>Crashes the node the scenario calls <paramref name="name"/> and waits until the page shows it down.</summary>
    public async Task CrashAsync(string name)
    {
        await ExpectOkAsync(commands.CrashAsync(Role(name)));
        await WaitUntilAsync(x => x.RoleOf(x.Role(name)) is null, $"the {name} down");
    }

    /// <summary>
    /// Sends a write straight to the node called <paramref name="name"/> (no redirect) and waits until it is in that node's
    /// log; returns the write, which is answered only once it is applied (if ever).
    /// </summary>
    public async Task<Task<CommandOutcome>> AppendAtAsync(string name, string key, string value)
    {
        long last = Cluster[Role(name)]?.Status?.LastIndex ?? 0;
        Task<CommandOutcome> put = commands.PutToAsync(Role(name), key, value);
        await WaitUntilAsync(x => x.Cluster[x.Role(name)]?.Status?.LastIndex > last || put.IsCompleted, $"the write in the {name}'s log");
        if (put.IsCompleted && !put.Result.Ok)
        {
            throw new InvalidOperationException($"the {name} refused the write: {put.Result.Text}");
        }
        return put;
    }

    /// <summary>
    /// Runs an admin action that must reach the leader, as a user would: if leadership moved meanwhile (a loaded machine
    /// can hold an election at any moment), waits for the new leader and tries again, at most three times.
    /// </summary>
    public async Task ExpectOkUnderLeaderAsync(Func<Task<CommandOutcome>> action)
    {
        for (int attempt = 1; ; attempt++)
        {
            CommandOutcome outcome = await action();
            if (outcome.Ok)
            {
                return;
            }
            bool leaderMoved = outcome.Text.Contains("not the leader", StringComparison.OrdinalIgnoreCase)
                || outcome.Text.Contains("no leader is known", StringComparison.OrdinalIgnoreCase)
                || outcome.Text.Contains("leadership changed", StringComparison.OrdinalIgnoreCase);
            if (!leaderMoved || attempt == 3)
            {
                throw new InvalidOperationException(outcome.Text);
            }
            await StableLeaderAsync();
        }
    }

    public static async Task ExpectOkAsync(Task<CommandOutcome> action)
    {
        CommandOutcome outcome = await action;
        if (!outcome.Ok)
        {
            throw new InvalidOperationException(outcome.Text);
        }
    }
}
