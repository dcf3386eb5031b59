using System.Security.Claims;
using Microsoft.AspNetCore.Components.Authorization;
using Raft.Dashboard.ServiceClient;

namespace Raft.Dashboard.Access;

/// <summary>
/// The commands one page may send, as its signed-in user: reads for everyone, every change only for an operator (the
/// page hides those controls from viewers; this refuses them even if a circuit sends the event anyway), and each change,
/// refused or not, recorded in the <see cref="AuditTrail"/>.
/// </summary>
public sealed class OperatorCommands(ClusterCommands cluster, AuthenticationStateProvider authentication, AuditTrail audit) : IClusterCommands
{
    public Task<CommandOutcome> GetAsync(string key) => cluster.GetAsync(key);

    public Task<CommandOutcome> PutAsync(string key, string value) => ActAsync($"put {Quote(key)}", null, () => cluster.PutAsync(key, value));

    public Task<CommandOutcome> PutToAsync(string nodeId, string key, string value) => ActAsync($"put {Quote(key)}", nodeId, () => cluster.PutToAsync(nodeId, key, value));

    public Task<CommandOutcome> DeleteAsync(string key) => ActAsync($"delete {Quote(key)}", null, () => cluster.DeleteAsync(key));

    public Task<CommandOutcome> CompareAndSwapAsync(string key, string? expected, string? value) => ActAsync($"compare-and-swap {Quote(key)}", null, () => cluster.CompareAndSwapAsync(key, expected, value));

    public Task<CommandOutcome> AddServerAsync() => ActAsync("add server", null, cluster.AddServerAsync);

    public Task<CommandOutcome> RemoveServerAsync(string id) => ActAsync("remove server", id, () => cluster.RemoveServerAsync(id));

    public Task<CommandOutcome> TransferLeadershipAsync(string id) => ActAsync("transfer leadership to", id, () => cluster.TransferLeadershipAsync(id));

    public Task<CommandOutcome> TakeSnapshotAsync(string id) => ActAsync("snapshot", id, () => cluster.TakeSnapshotAsync(id));

    public Task<CommandOutcome> CrashAsync(string id) => ActAsync("crash", id, () => cluster.CrashAsync(id));

    public Task<CommandOutcome> RestartAsync(string id) => ActAsync("restart", id, () => cluster.RestartAsync(id));

    public Task<CommandOutcome> CutLinkAsync(string a, string b) => ActAsync($"cut the link {a} - {b}", null, () => cluster.CutLinkAsync(a, b));

    public Task<CommandOutcome> HealLinkAsync(string a, string b) => ActAsync($"heal the link {a} - {b}", null, () => cluster.HealLinkAsync(a, b));

    public Task<CommandOutcome> IsolateAsync(string id) => ActAsync("isolate", id, () => cluster.IsolateAsync(id));

    public Task<CommandOutcome> HealNodeAsync(string id) => ActAsync("heal the links of", id, () => cluster.HealNodeAsync(id));

    public Task<CommandOutcome> HealAllAsync() => ActAsync("heal all links", null, cluster.HealAllAsync);

    /// <summary>Keys are named in the trail, values never (they may be anything a user stores).</summary>
    private static string Quote(string key) => $"\"{(key.Length <= 60 ? key : key[..60] + "…")}\"";

    private async Task<CommandOutcome> ActAsync(string action, string? target, Func<Task<CommandOutcome>> run)
    {
        ClaimsPrincipal user = (await authentication.GetAuthenticationStateAsync()).User;
        string name = DashboardAccess.NameOf(user);
        string role = DashboardAccess.RoleOf(user);
        if (role != DashboardRoles.Operator)
        {
            const string Refused = "refused: only an operator may change the cluster";
            audit.Record(new AuditRecord(DateTimeOffset.UtcNow, name, role, action, target, false, Refused));
            return CommandOutcome.Failed($"{name} is signed in as {role}: only an operator may change the cluster.");
        }
        CommandOutcome outcome = await run();
        audit.Record(new AuditRecord(DateTimeOffset.UtcNow, name, role, action, target, outcome.Ok, outcome.Text));
        return outcome;
    }
}
