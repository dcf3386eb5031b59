using System.Text.Json;
using Raft.Node.Hosting;

namespace Raft.Dashboard.Cluster;

/// <summary>
/// The dashboard's own cluster: real nodes (Kestrel, gRPC, SQLite files under <see cref="DashboardOptions.DataDir"/>) on
/// loopback, in this process. Their ports are recorded in the data folder so that a restart recovers the same cluster.
/// </summary>
public sealed class EmbeddedCluster : INodeDirectory, IHostedService, IAsyncDisposable
{
    private const string LayoutFile = "cluster.json";
    private readonly DashboardOptions _options;
    private readonly ILogger<EmbeddedCluster> _logger;
    private readonly ILoggerFactory _logs;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<string, WebApplication> _running = new(StringComparer.Ordinal);
    private Layout _layout = new("", []);

    /// <param name="LastNodeNumber">The highest node number ever given out, retired ones included.</param>
    private sealed record Layout(string InitialMembers, List<LayoutNode> Nodes, int LastNodeNumber = 0);

    private sealed record LayoutNode(string Id, string GrpcUrl, string HttpUrl, bool Joined);

    private readonly EmbeddedClusterClock _clock;

    public EmbeddedCluster(DashboardOptions options, EmbeddedClusterClock clock, ILoggerFactory logs)
    {
        _options = options;
        _clock = clock;
        _logs = logs;
        _logger = logs.CreateLogger<EmbeddedCluster>();
    }

    public string DataDirectory => Path.GetFullPath(_options.DataDir);
    public IReadOnlyList<NodeEndpoint> Nodes => _layout.Nodes.Select(n => new NodeEndpoint(n.Id, n.GrpcUrl, n.HttpUrl)).ToList();
    public bool CanManageNodes => true;

    /// <summary>Whether the cluster was found in its data folder at start (else it was made there).</summary>
    public bool Recovered { get; private set; }
    public IReadOnlySet<string> Stopped => _layout.Nodes.Select(n => n.Id).Where(id => !_running.ContainsKey(id)).ToHashSet();

    public event Action? Changed;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_options.Fresh && Directory.Exists(DataDirectory))
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        Directory.CreateDirectory(DataDirectory);
        string layoutPath = Path.Combine(DataDirectory, LayoutFile);
        Recovered = File.Exists(layoutPath);
        if (Recovered)
        {
            _layout = JsonSerializer.Deserialize<Layout>(await File.ReadAllTextAsync(layoutPath, cancellationToken))!;
            if (_options.NodePorts != 0)
            {
                _logger.LogWarning("--node-ports {Base} is not used: the cluster recovered from {Folder} keeps the ports recorded there (--fresh starts over)", _options.NodePorts, DataDirectory);
            }
        }
        else
        {
            var nodes = Enumerable.Range(1, _options.Size).Select(i => NewNode(i, joined: false)).ToList();
            _layout = new Layout(string.Join(",", nodes.Select(n => $"{n.Id}={n.GrpcUrl}")), nodes);
            await SaveLayoutAsync();
        }
        foreach (LayoutNode node in _layout.Nodes)
        {
            await StartNodeAsync(node);
        }
        Console.WriteLine($"Embedded cluster: {string.Join(", ", _layout.Nodes.Select(n => $"{n.Id} at {n.GrpcUrl}"))}; data in {DataDirectory}");
        Changed?.Invoke();
    }

    /// <summary>Node number k, on the ports <see cref="DashboardOptions.NodePorts"/> gives it, else on free ones.</summary>
    private LayoutNode NewNode(int number, bool joined)
    {
        if (_options.NodePorts == 0)
        {
            return new LayoutNode($"n{number}", Url(LoopbackPorts.Next()), Url(LoopbackPorts.Next()), joined);
        }
        if (number > _options.MaxNodeNumber)
        {
            throw new InvalidOperationException($"n{number} would need ports above 65535 (--node-ports {_options.NodePorts})");
        }
        int grpc = _options.NodePorts + (2 * (number - 1));
        return new LayoutNode($"n{number}", Url(grpc), Url(grpc + 1), joined);
    }

    private static string Url(int port) => $"http://127.0.0.1:{port}";

    private async Task SaveLayoutAsync() =>
        await File.WriteAllTextAsync(Path.Combine(DataDirectory, LayoutFile), JsonSerializer.Serialize(_layout));

    private async Task StartNodeAsync(LayoutNode node)
    {
        string dataDir = Path.Combine(DataDirectory, node.Id);
        // The first members only bootstrap an empty node: one with a store knows its configuration (perhaps changed
        // since by Add or Remove server), and would warn on every restart that it ignores them.
        bool bootstrap = !node.Joined && !File.Exists(Path.Combine(dataDir, "raft.db"));
        var options = new NodeOptions
        {
            Id = node.Id,
            GrpcUrl = node.GrpcUrl,
            HttpUrl = node.HttpUrl,
            Members = bootstrap ? _layout.InitialMembers : "",
            // A new member takes replication only from the nodes that were there before it (the leader among them).
            Join = node.Joined ? string.Join(",", _layout.Nodes.Where(n => n.Id != node.Id).Select(n => n.Id)) : "",
            DataDir = dataDir,
            EnableFaultInjection = true,
            TickMs = _options.TickMs,
        };
        WebApplication app = NodeApp.Build(options, builder =>
        {
            // The node's warnings go where the dashboard's own logs go, under the node's category and id.
            builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Warning).AddProvider(new ForwardedLogs(_logs, node.Id));
            builder.Services.AddSingleton(_clock.Shared); // one clock and one message gate for the whole cluster
        });
        await app.StartAsync();
        _running[node.Id] = app;
        // A node whose engine failed stops its own host: show it as crashed (restartable), not as running.
        ClusterMember member = app.Services.GetRequiredService<ClusterMember>();
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            if (member.Failure != null)
            {
                _ = Task.Run(() => OnNodeFailedAsync(node.Id, app, member.Failure));
            }
        });
    }

    private async Task OnNodeFailedAsync(string id, WebApplication app, Exception failure)
    {
        await _lock.WaitAsync();
        try
        {
            if (_running.TryGetValue(id, out WebApplication? running) && running == app)
            {
                await StopNodeAsync(id);
                _logger.LogError("{Node} failed and is down: {Error}", id, failure.Message);
            }
        }
        finally
        {
            _lock.Release();
        }
        Changed?.Invoke();
    }

    private async Task StopNodeAsync(string id, bool crash = false)
    {
        if (_running.Remove(id, out WebApplication? app))
        {
            if (crash)
            {
                // As a kill leaves it: queued writes dropped, nothing more sent or answered; then the host goes.
                await app.Services.GetRequiredService<Raft.Node.Hosting.ClusterMember>().CrashAsync();
            }
            // A crash, not a shutdown: do not wait for open connections (hub subscribers, peer streams) to drain.
            await app.StopAsync(new CancellationToken(canceled: true));
            await app.DisposeAsync();
            _clock.Shared.Gate.Forget(id); // what it had sent dies with it; what was sent to it finds no one
        }
    }

    public async Task CrashAsync(string id)
    {
        await _lock.WaitAsync();
        try
        {
            if (!_running.ContainsKey(id))
            {
                throw new InvalidOperationException($"{id} is not running");
            }
            await StopNodeAsync(id, crash: true);
            _logger.LogInformation("crashed {Node}", id);
        }
        finally
        {
            _lock.Release();
        }
        Changed?.Invoke();
    }

    public async Task RestartAsync(string id)
    {
        await _lock.WaitAsync();
        try
        {
            LayoutNode node = _layout.Nodes.FirstOrDefault(n => n.Id == id) ?? throw new InvalidOperationException($"{id} is not a node of this cluster");
            if (_running.ContainsKey(id))
            {
                throw new InvalidOperationException($"{id} is already running");
            }
            await StartNodeAsync(node);
        }
        finally
        {
            _lock.Release();
        }
        Changed?.Invoke();
    }

    public async Task<NodeEndpoint> StartNewNodeAsync()
    {
        LayoutNode node;
        await _lock.WaitAsync();
        try
        {
            // A node id is never given out twice: a retired server may still be in some node's configuration or
            // log (a change that failed half way), and a new, empty server under its id would pass for it. The
            // highest id in the layout covers layout files written before LastNodeNumber existed.
            int next = Math.Max(_layout.LastNodeNumber, _layout.Nodes.Select(n => int.TryParse(n.Id.AsSpan(1), out int k) ? k : 0).DefaultIfEmpty(0).Max()) + 1;
            node = NewNode(next, joined: true);
            _layout = _layout with { LastNodeNumber = next };
            _layout.Nodes.Add(node);
            await SaveLayoutAsync();
            await StartNodeAsync(node);
        }
        finally
        {
            _lock.Release();
        }
        Changed?.Invoke();
        return new NodeEndpoint(node.Id, node.GrpcUrl, node.HttpUrl);
    }

    public async Task RetireAsync(string id)
    {
        await _lock.WaitAsync();
        try
        {
            await StopNodeAsync(id);
            _layout.Nodes.RemoveAll(n => n.Id == id);
            await SaveLayoutAsync();
        }
        finally
        {
            _lock.Release();
        }
        Changed?.Invoke();
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (string id in _running.Keys.ToList())
        {
            await StopNodeAsync(id);
        }
    }
}

/// <summary>An embedded node's loggers, writing to the dashboard's: "Raft.Node.Hosting.ClusterMember[n1]".</summary>
internal sealed class ForwardedLogs(ILoggerFactory target, string nodeId) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => target.CreateLogger($"{categoryName}[{nodeId}]");

    public void Dispose()
    {
    }
}
