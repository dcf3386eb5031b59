using Microsoft.AspNetCore.Components;
using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;

namespace Raft.Dashboard.Components.Controls;

/// <summary>A component that renders the cluster snapshot and re-renders when the monitor says it changed (at most every 100 ms).</summary>
public abstract class ClusterComponentBase : ComponentBase, IDisposable
{
    [Inject]
    protected IClusterMonitor Monitor { get; set; } = null!;

    protected ClusterSnapshot Cluster => Monitor.Current;

    protected override void OnInitialized() => Monitor.Changed += OnClusterChanged;

    private void OnClusterChanged() => _ = InvokeAsync(async () =>
    {
        await OnClusterChangedAsync();
        StateHasChanged();
    });

    /// <summary>Work to do before re-rendering after a change (for example a throttled refresh).</summary>
    protected virtual Task OnClusterChangedAsync() => Task.CompletedTask;

    public void Dispose()
    {
        Monitor.Changed -= OnClusterChanged;
        OnDispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>What a component started besides its subscription to the monitor (timers, other subscriptions).</summary>
    protected virtual void OnDispose()
    {
    }
}
