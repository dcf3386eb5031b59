using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.Model;
using Raft.Client;
using Raft.Client.Events;

namespace Raft.Dashboard.ServiceClient;

/// <summary>
/// Subscribes to every node's event hub (SignalR .NET client, automatic reconnect) and keeps the cluster's view model:
/// each node's status and a window of its log, an event timeline and the commit rate. Change notifications are
/// throttled to <see cref="RenderInterval"/> so that thousands of commits per second do not flood the browser.
/// </summary>
public sealed class ClusterMonitor : IClusterMonitor, IHostedService, IAsyncDisposable
{
    public static readonly TimeSpan RenderInterval = TimeSpan.FromMilliseconds(100);
    private const int LogWindow = 5000;
    private const int TimelineLength = 500;
    private readonly INodeDirectory _directory;
    private readonly ILogger<ClusterMonitor> _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly LinkedList<TimelineEvent> _timeline = new();
    private readonly Queue<(DateTimeOffset At, long Commit)> _commitSamples = new();
    private ClusterSnapshot _current = ClusterSnapshot.Empty;
    private bool _dirty;
    private Timer? _renderTimer;

    private readonly NodeCredentials _credentials;

    public ClusterMonitor(INodeDirectory directory, ILogger<ClusterMonitor> logger, NodeCredentials? credentials = null)
    {
        _directory = directory;
        _logger = logger;
        _credentials = credentials ?? NodeCredentials.None;
    }

    public ClusterSnapshot Current => _current;

    public event Action? Changed;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _directory.Changed += SyncSubscriptions;
        SyncSubscriptions();
        _renderTimer = new Timer(_ => Flush(), null, RenderInterval, RenderInterval);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        _directory.Changed -= SyncSubscriptions;
        if (_renderTimer != null)
        {
            await _renderTimer.DisposeAsync();
        }
        List<Subscription> all;
        lock (_lock)
        {
            all = [.. _subscriptions.Values];
            _subscriptions.Clear();
        }
        foreach (Subscription subscription in all)
        {
            await subscription.DisposeAsync();
        }
    }

    public async Task<IReadOnlyList<KeyValuePair<string, string>>> ReadDataAsync(string nodeId, CancellationToken cancellationToken = default)
    {
        Subscription? subscription;
        lock (_lock)
        {
            _subscriptions.TryGetValue(nodeId, out subscription);
        }
        if (subscription is null || subscription.Connection.State != HubConnectionState.Connected)
        {
            return [];
        }
        return await subscription.Connection.InvokeAsync<List<KeyValuePair<string, string>>>(HubContract.GetData, cancellationToken);
    }

    /// <summary>Starts a subscription for each node the directory knows and drops the ones it forgot.</summary>
    private void SyncSubscriptions()
    {
        IReadOnlyList<NodeEndpoint> nodes = _directory.Nodes;
        List<Subscription> removed;
        lock (_lock)
        {
            foreach (NodeEndpoint node in nodes.Where(n => !_subscriptions.ContainsKey(n.Id)))
            {
                var subscription = new Subscription(this, node);
                _subscriptions[node.Id] = subscription;
                subscription.Start();
            }
            removed = _subscriptions.Values.Where(s => nodes.All(n => n.Id != s.Endpoint.Id)).ToList();
            foreach (Subscription gone in removed)
            {
                _subscriptions.Remove(gone.Endpoint.Id);
            }
        }
        foreach (Subscription gone in removed)
        {
            _ = gone.DisposeAsync().AsTask();
        }
        MarkDirty();
    }

    private void MarkDirty()
    {
        lock (_lock)
        {
            _dirty = true;
        }
    }

    /// <summary>At most once per interval: build a fresh snapshot and tell the components.</summary>
    private void Flush()
    {
        lock (_lock)
        {
            if (!_dirty)
            {
                return;
            }
            _dirty = false;
            IReadOnlySet<string> stopped = _directory.Stopped;
            var nodes = _subscriptions.Values.OrderBy(s => s.Endpoint.Id, StringComparer.Ordinal).Select(s => s.Snapshot(stopped.Contains(s.Endpoint.Id))).ToList();
            _current = new ClusterSnapshot(nodes, [.. _timeline], CommitRate(nodes), _directory.CanManageNodes);
        }
        try
        {
            Changed?.Invoke();
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            _logger.LogDebug("a subscriber failed: {Error}", e.Message);
        }
    }

    /// <summary>Commits per second over the last two seconds, from the leader's commit index.</summary>
    private double CommitRate(List<NodeSnapshot> nodes)
    {
        long commit = nodes.Where(n => n.IsLeader).Select(n => n.Status!.CommitIndex).DefaultIfEmpty(-1).Max();
        if (commit < 0)
        {
            return 0;
        }
        DateTimeOffset now = DateTimeOffset.UtcNow;
        _commitSamples.Enqueue((now, commit));
        while (_commitSamples.Count > 1 && now - _commitSamples.Peek().At > TimeSpan.FromSeconds(2))
        {
            _commitSamples.Dequeue();
        }
        (DateTimeOffset firstAt, long firstCommit) = _commitSamples.Peek();
        double seconds = (now - firstAt).TotalSeconds;
        return seconds > 0.2 && commit >= firstCommit ? (commit - firstCommit) / seconds : 0;
    }

    /// <summary>Shows what a user did (the audit trail's record of it) in the timeline, among the cluster's own events.</summary>
    public void AddOperatorAction(TimelineEvent action)
    {
        lock (_lock)
        {
            AddTimelineEvent(action);
        }
        MarkDirty();
    }

    private void AddToTimeline(string nodeId, Change change) => AddTimelineEvent(new TimelineEvent(change.At, nodeId, change.Kind, change.Text));

    private void AddTimelineEvent(TimelineEvent e)
    {
        _timeline.AddFirst(e);
        while (_timeline.Count > TimelineLength)
        {
            _timeline.RemoveLast();
        }
    }

    /// <summary>One node's hub connection and what it has told us.</summary>
    private sealed class Subscription(ClusterMonitor monitor, NodeEndpoint endpoint) : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stopping = new();
        private readonly List<LogEntryView> _log = [];
        private StatusView? _status;
        private long _seq;
        private bool _connected;

        public NodeEndpoint Endpoint { get; } = endpoint;

        public HubConnection Connection { get; } = new HubConnectionBuilder()
            .WithUrl(endpoint.HttpUrl.TrimEnd('/') + HubContract.Path, hub =>
            {
                if (monitor._credentials.Token is { } token)
                {
                    hub.AccessTokenProvider = () => Task.FromResult<string?>(token);
                }
                if (monitor._credentials.CaFile is { } ca)
                {
                    hub.HttpMessageHandlerFactory = _ => ChannelOptions.Handler(ca);
                }
            })
            .WithAutomaticReconnect(new RetryForever())
            .Build();

        public void Start()
        {
            Connection.On<ChangeBatch>(HubContract.Changes, Apply);
            Connection.On(HubContract.Reset, () => _ = LoadAsync());
            Connection.Reconnected += _ => LoadAsync();
            Connection.Reconnecting += _ => SetConnected(false);
            Connection.Closed += _ => SetConnected(false);
            _ = ConnectAsync();
        }

        private Task SetConnected(bool connected)
        {
            lock (monitor._lock)
            {
                _connected = connected;
            }
            monitor.MarkDirty();
            return Task.CompletedTask;
        }

        /// <summary>Keeps trying until the node's hub answers (a node may be down or still starting).</summary>
        private async Task ConnectAsync()
        {
            while (!_stopping.IsCancellationRequested)
            {
                try
                {
                    await Connection.StartAsync(_stopping.Token);
                    await LoadAsync();
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or InvalidOperationException or System.Net.WebSockets.WebSocketException)
                {
                    await SetConnected(false);
                    try
                    {
                        await Task.Delay(500, _stopping.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            }
        }

        private async Task LoadAsync()
        {
            try
            {
                FullState state = await Connection.InvokeAsync<FullState>(HubContract.GetState, _stopping.Token);
                lock (monitor._lock)
                {
                    _seq = state.Seq;
                    _status = state.Status;
                    _log.Clear();
                    _log.AddRange(state.LogTail);
                    _connected = true;
                }
                monitor.MarkDirty();
            }
            catch (Exception e) when (e is HubException or InvalidOperationException or OperationCanceledException or IOException)
            {
                monitor._logger.LogDebug("loading {Node} failed: {Error}", Endpoint.Id, e.Message);
            }
        }

        private void Apply(ChangeBatch batch)
        {
            lock (monitor._lock)
            {
                _status = batch.Status;
                _connected = true;
                foreach (Change change in batch.Changes.Where(c => c.Seq > _seq))
                {
                    _seq = change.Seq;
                    switch (change.Kind)
                    {
                        case "appended":
                            AppendToWindow(change);
                            break;
                        case "commit":
                        case "applied":
                            break;
                        default:
                            monitor.AddToTimeline(Endpoint.Id, change);
                            break;
                    }
                }
            }
            monitor.MarkDirty();
        }

        private void AppendToWindow(Change change)
        {
            IReadOnlyList<LogEntryView> entries = change.Entries ?? [];
            if (entries.Count == 0)
            {
                return;
            }
            long first = entries[0].Index;
            int cut = _log.FindIndex(e => e.Index >= first);
            if (cut >= 0)
            {
                _log.RemoveRange(cut, _log.Count - cut); // a truncation, or a repeat
            }
            if (_log.Count > 0 && _log[^1].Index + 1 != first)
            {
                _log.Clear(); // a gap (the batch was capped): keep the window contiguous
            }
            _log.AddRange(entries);
            if (_log.Count > LogWindow)
            {
                _log.RemoveRange(0, _log.Count - LogWindow);
            }
        }

        public NodeSnapshot Snapshot(bool stopped) =>
            new(Endpoint.Id, Endpoint.GrpcUrl, Endpoint.HttpUrl, _connected && !stopped, stopped, _status, [.. _log]);

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync();
            await Connection.DisposeAsync();
            _stopping.Dispose();
        }

        private sealed class RetryForever : IRetryPolicy
        {
            public TimeSpan? NextRetryDelay(RetryContext retryContext) => TimeSpan.FromMilliseconds(Math.Min(2000, 200 * (retryContext.PreviousRetryCount + 1)));
        }
    }
}
