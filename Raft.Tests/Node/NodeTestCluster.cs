using System.Diagnostics;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Raft.Client;
using Raft.Node.Hosting;
using Raft.Protocol;

namespace Raft.Tests.Node;

/// <summary>Free loopback ports for real Kestrel hosts (outside the ephemeral range: see <see cref="LoopbackPorts"/>).</summary>
internal static class Ports
{
    public static int Free() => LoopbackPorts.Next();
}

/// <summary>One member's addresses and data folder, for in-process hosts and child processes alike.</summary>
internal sealed record MemberSpec(string Id, string GrpcUrl, string HttpUrl, string DataDir, string? PeerUrl = null)
{
    /// <param name="peerScheme">null: peers share the gRPC endpoint; "http" or "https": a peer endpoint of its own.</param>
    public static MemberSpec Create(string id, string folder, string? peerScheme = null) =>
        new(id, $"http://127.0.0.1:{Ports.Free()}", $"http://127.0.0.1:{Ports.Free()}", Path.Combine(folder, id),
            peerScheme is null ? null : $"{peerScheme}://127.0.0.1:{Ports.Free()}");

    /// <summary>Where peers reach this member (what --members and AddServer name).</summary>
    public string PeerAddress => PeerUrl ?? GrpcUrl;

    public NodeOptions Options(string members, Action<NodeOptions>? tweak = null)
    {
        var options = new NodeOptions
        {
            Id = Id, GrpcUrl = GrpcUrl, HttpUrl = HttpUrl, PeerUrl = PeerUrl, DataDir = DataDir, Members = members, EnableFaultInjection = true,
        };
        tweak?.Invoke(options);
        return options;
    }

    public string[] Arguments(string members) =>
        ["--id", Id, "--grpc-url", GrpcUrl, "--http-url", HttpUrl, "--data-dir", DataDir, "--members", members, "--enable-fault-injection", "true"];
}

/// <summary>
/// Real nodes on loopback, each a full web host (Kestrel, gRPC over h2c, SignalR, SQLite files in a temporary folder),
/// in this process. Nodes can be stopped and started again from their data folders, and more can be added.
/// </summary>
internal sealed class NodeTestCluster : IAsyncDisposable
{
    private readonly Dictionary<string, WebApplication> _running = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly Action<NodeOptions>? _tweak;

    private readonly string? _peerScheme;
    private readonly Action<WebApplicationBuilder>? _configure;

    /// <param name="peerScheme">null: peers share the gRPC endpoint; "http" or "https": each member has a peer endpoint of its own.</param>
    /// <param name="configure">Applied to each member's host builder (as a host embedding a node would).</param>
    public NodeTestCluster(int size, Action<NodeOptions>? tweak = null, string? peerScheme = null, Action<WebApplicationBuilder>? configure = null)
    {
        _tweak = tweak;
        _configure = configure;
        _peerScheme = peerScheme;
        Folder = Directory.CreateTempSubdirectory("raft-nodes-").FullName;
        Specs = Enumerable.Range(1, size).Select(i => MemberSpec.Create($"n{i}", Folder, peerScheme)).ToList();
        InitialMembers = string.Join(",", Specs.Select(s => $"{s.Id}={s.PeerAddress}"));
    }

    public string Folder { get; }
    public List<MemberSpec> Specs { get; }
    public string InitialMembers { get; }
    public IEnumerable<string> Endpoints => Specs.Where(s => _running.ContainsKey(s.Id)).Select(s => s.GrpcUrl);

    public MemberSpec this[string id] => Specs.Single(s => s.Id == id);

    public async Task StartAllAsync()
    {
        foreach (MemberSpec spec in Specs)
        {
            await StartAsync(spec.Id);
        }
    }

    /// <summary>Starts (or restarts) a member; <paramref name="members"/> defaults to the initial list ("" joins an existing cluster).</summary>
    public async Task StartAsync(string id, string? members = null)
    {
        MemberSpec spec = this[id];
        WebApplication app = NodeApp.Build(spec.Options(members ?? InitialMembers, _tweak), builder =>
        {
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            _configure?.Invoke(builder);
        });
        await app.StartAsync();
        _running[id] = app;
    }

    /// <summary>The in-process cluster member of a running node, for looking at its engine directly.</summary>
    public ClusterMember Member(string id) => _running[id].Services.GetRequiredService<ClusterMember>();

    public MemberSpec AddSpec(string id)
    {
        var spec = MemberSpec.Create(id, Folder, _peerScheme);
        Specs.Add(spec);
        return spec;
    }

    public async Task StopAsync(string id)
    {
        if (_running.Remove(id, out WebApplication? app))
        {
            await app.StopAsync(new CancellationToken(canceled: true)); // abrupt: do not wait for connections to drain
            await app.DisposeAsync();
        }
    }

    public RaftClient Client(params string[] endpointsFirst) =>
        new(endpointsFirst.Length > 0 ? endpointsFirst.Concat(Endpoints) : Endpoints);

    public Admin.AdminClient Admin(string id) => new(Channel(id));

    public KeyValue.KeyValueClient KeyValue(string id) => new(Channel(id));

    public Peer.PeerClient Peer(string id) => new(Channel(id));

    private GrpcChannel Channel(string id)
    {
        if (!_channels.TryGetValue(id, out GrpcChannel? channel))
        {
            channel = GrpcChannel.ForAddress(this[id].GrpcUrl, ChannelOptions.For(this[id].GrpcUrl, ClientToken, null));
            _channels[id] = channel;
        }
        return channel;
    }

    /// <summary>The bearer token this cluster's own calls (status, admin) carry, for clusters with a tokens file.</summary>
    public string? ClientToken { get; set; }

    public async Task<NodeStatus> StatusAsync(string id) => await Admin(id).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));

    /// <summary>Waits until exactly one running member leads and all running members agree on it.</summary>
    public async Task<string> WaitForLeaderAsync(IEnumerable<string>? among = null, int seconds = 15)
    {
        string[] ids = (among ?? _running.Keys).ToArray();
        var clock = Stopwatch.StartNew();
        string last = "";
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            NodeStatus[] statuses = await Task.WhenAll(ids.Select(StatusAsync));
            var leaders = statuses.Where(s => s.Role == "Leader").ToList();
            if (leaders.Count == 1 && statuses.All(s => s.LeaderId == leaders[0].Id))
            {
                return leaders[0].Id;
            }
            last = string.Join("; ", statuses.Select(s => $"{s.Id} {s.Role} t{s.Term} leader {s.LeaderId}"));
            await Task.Delay(50);
        }
        throw new TimeoutException($"no agreed leader among {string.Join(",", ids)}: {last}");
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, int seconds = 15, string what = "condition")
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds))
            {
                throw new TimeoutException($"timed out waiting for {what}");
            }
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (string id in _running.Keys.ToList())
        {
            await StopAsync(id);
        }
        foreach (GrpcChannel channel in _channels.Values)
        {
            channel.Dispose();
        }
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A member as a child process (dotnet Raft.Node.dll ...), so that a test can kill it with SIGKILL.</summary>
internal sealed class NodeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _errors = new();

    private NodeProcess(Process process) => _process = process;

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _output = new();

    /// <summary>What the process wrote to standard error so far.</summary>
    public IReadOnlyList<string> ErrorLines => [.. _errors];

    /// <summary>The last lines the process wrote to standard output and error (its log), oldest first.</summary>
    public IReadOnlyList<string> LastLines => [.. _output];

    private void Keep(string line)
    {
        _output.Enqueue(line);
        while (_output.Count > 300 && _output.TryDequeue(out _))
        {
        }
    }

    public Process Process => _process;

    public static NodeProcess Start(MemberSpec spec, string members, string logLevel = "Warning", params string[] moreArguments)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Raft.Node.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (string argument in spec.Arguments(members).Concat(moreArguments))
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["Logging__LogLevel__Default"] = logLevel;
        var process = Process.Start(start)!;
        var node = new NodeProcess(process);
        process.OutputDataReceived += (_, line) =>
        {
            if (line.Data != null)
            {
                node.Keep(line.Data);
            }
        };
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data != null)
            {
                node._errors.Enqueue(line.Data);
                node.Keep(line.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>SIGKILL: no shutdown, no flush.</summary>
    public void Kill() => _process.Kill();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
