using Raft.Dashboard.Model;

namespace Raft.Dashboard.ServiceClient;

/// <summary>
/// The cluster as components see it: the latest snapshot and a change notification that fires at most every
/// <see cref="ClusterMonitor.RenderInterval"/>, however fast the cluster changes. Components never speak SignalR themselves.
/// </summary>
public interface IClusterMonitor
{
    ClusterSnapshot Current { get; }

    event Action? Changed;

    /// <summary>A node's key-value contents as it has applied them (a stale read of that node).</summary>
    Task<IReadOnlyList<KeyValuePair<string, string>>> ReadDataAsync(string nodeId, CancellationToken cancellationToken = default);
}
