namespace Raft.Dashboard.ServiceClient;

/// <summary>The answer to a user's action, to show as it is: what happened, who served it, any redirects, or why it was refused.</summary>
public sealed record CommandOutcome(bool Ok, string Text, string? ServedBy = null, IReadOnlyList<string>? Redirects = null)
{
    public static CommandOutcome Failed(string text) => new(false, text);
}

/// <summary>What a user can do to the cluster. Every method answers with an outcome; none throws for a refusal.</summary>
public interface IClusterCommands
{
    Task<CommandOutcome> PutAsync(string key, string value);

    /// <summary>A put sent to one node, which answers it itself (a follower refuses, naming its leader).</summary>
    Task<CommandOutcome> PutToAsync(string nodeId, string key, string value);
    Task<CommandOutcome> GetAsync(string key);
    Task<CommandOutcome> DeleteAsync(string key);
    Task<CommandOutcome> CompareAndSwapAsync(string key, string? expected, string? value);
    Task<CommandOutcome> AddServerAsync();
    Task<CommandOutcome> RemoveServerAsync(string id);
    Task<CommandOutcome> TransferLeadershipAsync(string id);
    Task<CommandOutcome> TakeSnapshotAsync(string id);
    Task<CommandOutcome> CrashAsync(string id);
    Task<CommandOutcome> RestartAsync(string id);
    Task<CommandOutcome> CutLinkAsync(string a, string b);
    Task<CommandOutcome> HealLinkAsync(string a, string b);
    Task<CommandOutcome> IsolateAsync(string id);
    /// <summary>Heals one node's links: its isolation and its cuts, and the other nodes' cuts of it; other links stay as they are.</summary>
    Task<CommandOutcome> HealNodeAsync(string id);
    Task<CommandOutcome> HealAllAsync();
}
