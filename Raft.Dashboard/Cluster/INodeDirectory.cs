namespace Raft.Dashboard.Cluster;

/// <summary>The nodes the dashboard knows how to reach, and (for the embedded cluster) the power to start and stop them.</summary>
public interface INodeDirectory
{
    IReadOnlyList<NodeEndpoint> Nodes { get; }

    /// <summary>Whether this dashboard runs the nodes itself (crash, restart and new servers are possible).</summary>
    bool CanManageNodes { get; }

    /// <summary>Nodes that are stopped ("crashed") but can be restarted.</summary>
    IReadOnlySet<string> Stopped { get; }

    event Action? Changed;

    Task CrashAsync(string id);

    Task RestartAsync(string id);

    /// <summary>Starts a new, empty node that waits to be added to the cluster.</summary>
    Task<NodeEndpoint> StartNewNodeAsync();

    /// <summary>Stops a node that left the cluster and forgets it.</summary>
    Task RetireAsync(string id);
}

/// <summary>A fixed list of nodes run by someone else (docker compose): the dashboard only watches and talks to them.</summary>
public sealed class StaticNodeDirectory(IReadOnlyList<NodeEndpoint> nodes) : INodeDirectory
{
    private const string Refusal = "this dashboard is attached to a cluster it does not run: start and stop nodes where they run (e.g. docker compose)";

    public IReadOnlyList<NodeEndpoint> Nodes { get; } = nodes;
    public bool CanManageNodes => false;
    public IReadOnlySet<string> Stopped { get; } = new HashSet<string>();

    public event Action? Changed
    {
        add { }
        remove { }
    }

    public Task CrashAsync(string id) => throw new InvalidOperationException(Refusal);

    public Task RestartAsync(string id) => throw new InvalidOperationException(Refusal);

    public Task<NodeEndpoint> StartNewNodeAsync() => throw new InvalidOperationException(Refusal);

    public Task RetireAsync(string id) => Task.CompletedTask;
}
