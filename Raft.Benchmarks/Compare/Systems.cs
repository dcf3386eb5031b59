using System.Diagnostics;
using System.Globalization;
using System.Text;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.SignalR.Client;
using Raft.Benchmarks.Etcd;
using Raft.Client;
using Raft.Client.Events;

namespace Raft.Benchmarks.Compare;

/// <summary>What the load generator needs from a key-value store: a durable put and a linearizable get.</summary>
internal interface IKvClient : IDisposable
{
    Task PutAsync(string key, string value, CancellationToken cancellationToken);

    Task GetAsync(string key, CancellationToken cancellationToken);

    /// <summary>Where the last successful call went (after any redirect), if the client knows.</summary>
    string? LastRoute => null;
}

/// <summary>One moment of a failover as a member saw it.</summary>
internal sealed record TimelineEvent(string Member, DateTimeOffset At, string Kind, string Text);

/// <summary>A three-member cluster of real processes on loopback, started fresh, that can lose and regain its leader.</summary>
internal abstract class ClusterUnderTest : IAsyncDisposable
{
    private readonly Process?[] _processes = new Process?[3];
    private readonly TimeSpan[] _cpuOfExited = new TimeSpan[3];

    protected ClusterUnderTest(string name, string folder)
    {
        Name = name;
        Folder = Directory.CreateDirectory(Path.Combine(folder, name)).FullName;
    }

    public string Name { get; }
    protected string Folder { get; }

    /// <summary>The settings that shape the result (snapshot threshold, timeouts), printed with it.</summary>
    public abstract string Settings { get; }

    public abstract IKvClient CreateClient();

    protected abstract ProcessStartInfo StartInfo(int member);

    /// <summary>The member that leads now, or null.</summary>
    public abstract Task<int?> LeaderAsync(CancellationToken cancellationToken);

    /// <summary>Whether a member answers a status call (it is up and serving).</summary>
    public abstract Task<bool> AnswersAsync(int member, CancellationToken cancellationToken);

    /// <summary>
    /// Streams a member's election events (campaigns, votes, roles, leaders, with the member's own timestamps) to
    /// <paramref name="seen"/> until disposed; null when the system has no such stream (etcd's is its log).
    /// </summary>
    public virtual Task<IAsyncDisposable?> WatchElectionsAsync(int member, Action<TimelineEvent> seen) => Task.FromResult<IAsyncDisposable?>(null);

    /// <summary>The member's name in timelines.</summary>
    public virtual string MemberName(int member) => $"m{member + 1}";

    public async Task StartAsync()
    {
        for (int member = 0; member < 3; member++)
        {
            Start(member);
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await LeaderAsync(timeout.Token) is null)
        {
            await Task.Delay(50, timeout.Token);
        }
    }

    private void Start(int member)
    {
        ProcessStartInfo info = StartInfo(member);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        var process = new Process { StartInfo = info };
        string log = Path.Combine(Folder, $"member{member}.log");
        process.OutputDataReceived += (_, e) => AppendLog(log, e.Data);
        process.ErrorDataReceived += (_, e) => AppendLog(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes[member] = process;
    }

    private static void AppendLog(string path, string? line)
    {
        if (line != null)
        {
            lock (path)
            {
                File.AppendAllText(path, line + Environment.NewLine);
            }
        }
    }

    /// <summary>SIGKILLs a member; its CPU time so far is kept.</summary>
    public void Kill(int member)
    {
        Process process = _processes[member]!;
        process.Refresh();
        _cpuOfExited[member] += process.TotalProcessorTime;
        process.Kill();
        process.WaitForExit();
        process.Dispose();
        _processes[member] = null;
    }

    /// <summary>Starts a killed member on its data and returns how long until it answered a status call.</summary>
    public async Task<TimeSpan> RestartAsync(int member)
    {
        long start = Stopwatch.GetTimestamp();
        Start(member);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (!await AnswersAsync(member, timeout.Token))
        {
            await Task.Delay(5, timeout.Token);
        }
        return Stopwatch.GetElapsedTime(start);
    }

    /// <summary>CPU seconds used by the members so far.</summary>
    public double CpuSeconds()
    {
        TimeSpan total = TimeSpan.Zero;
        for (int member = 0; member < 3; member++)
        {
            total += _cpuOfExited[member];
            if (_processes[member] is { } process)
            {
                process.Refresh();
                total += process.TotalProcessorTime;
            }
        }
        return total.TotalSeconds;
    }

    public ValueTask DisposeAsync()
    {
        for (int member = 0; member < 3; member++)
        {
            if (_processes[member] is { } process)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit();
                }
                catch (InvalidOperationException)
                {
                }
                process.Dispose();
            }
        }
        return ValueTask.CompletedTask;
    }

    protected static int FreePort() => Raft.Node.Hosting.LoopbackPorts.Next();

    protected static async Task<bool> Succeeds(Func<Task> call)
    {
        try
        {
            await call();
            return true;
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or HttpRequestException or OperationCanceledException or InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>Our cluster: three Raft.Node processes (the build next to this benchmark, or another one given by path).</summary>
internal sealed class RaftNodeCluster : ClusterUnderTest
{
    private readonly string _nodeDll;
    private readonly int _snapshotThreshold;
    private readonly (string Id, string Grpc, string Http)[] _members;
    private readonly Dictionary<string, string> _environment;

    public RaftNodeCluster(string folder, string nodeDll, int snapshotThreshold, Dictionary<string, string> environment) : base("raft", folder)
    {
        _nodeDll = nodeDll;
        _snapshotThreshold = snapshotThreshold;
        _environment = environment;
        _members = [.. Enumerable.Range(1, 3).Select(i => ($"n{i}", $"http://127.0.0.1:{FreePort()}", $"http://127.0.0.1:{FreePort()}"))];
    }

    public override string Settings => $"snapshot after at least {_snapshotThreshold:N0} entries holding as many bytes as the last snapshot, election 150-300 ms, heartbeat 50 ms{string.Concat(_environment.Select(e => $", {e.Key}={e.Value}"))}";

    private IEnumerable<string> Endpoints => _members.Select(m => m.Grpc);

    public override IKvClient CreateClient() => new Client(new RaftClient(Endpoints));

    protected override ProcessStartInfo StartInfo(int member)
    {
        (string id, string grpc, string http) = _members[member];
        string members = string.Join(",", _members.Select(m => $"{m.Id}={m.Grpc}"));
        var info = new ProcessStartInfo("dotnet")
        {
            // The working directory (the content root) is the node's folder, so its data is not under the build output.
            WorkingDirectory = Directory.CreateDirectory(Path.Combine(Folder, id)).FullName,
        };
        foreach (string arg in new[] { _nodeDll, "--id", id, "--grpc-url", grpc, "--http-url", http, "--members", members,
            "--data-dir", Path.Combine(Folder, id, "data"), "--snapshot-threshold", _snapshotThreshold.ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach ((string key, string value) in _environment)
        {
            info.Environment[key] = value;
        }
        return info;
    }

    public override async Task<int?> LeaderAsync(CancellationToken cancellationToken)
    {
        using var client = new RaftClient(Endpoints) { Timeout = TimeSpan.FromSeconds(1) };
        try
        {
            var statuses = await client.StatusOfAllAsync(cancellationToken);
            int index = statuses.ToList().FindIndex(s => s.Status is { Role: "Leader" });
            return index >= 0 && statuses.Where(s => s.Status != null).All(s => s.Status!.LeaderId == statuses[index].Status!.Id) ? index : null;
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or HttpRequestException)
        {
            return null;
        }
    }

    public override Task<bool> AnswersAsync(int member, CancellationToken cancellationToken) => Succeeds(async () =>
    {
        using var client = new RaftClient([_members[member].Grpc]);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromMilliseconds(500));
        await client.AdminOf(_members[member].Grpc).GetStatusAsync(new Raft.Protocol.StatusRequest(), cancellationToken: deadline.Token);
    });

    public override string MemberName(int member) => _members[member].Id;

    public override async Task<IAsyncDisposable?> WatchElectionsAsync(int member, Action<TimelineEvent> seen)
    {
        (string id, _, string http) = _members[member];
        HubConnection hub = new HubConnectionBuilder().WithUrl(http.TrimEnd('/') + HubContract.Path).Build();
        hub.On<ChangeBatch>(HubContract.Changes, batch =>
        {
            foreach (Change change in batch.Changes.Where(c => c.Kind is "campaign" or "vote" or "role" or "leader"))
            {
                seen(new TimelineEvent(id, change.At, change.Kind, change.Text));
            }
        });
        await hub.StartAsync();
        await hub.InvokeAsync<FullState>(HubContract.GetState);
        return hub;
    }

    private sealed class Client(RaftClient client) : IKvClient
    {
        public async Task PutAsync(string key, string value, CancellationToken cancellationToken)
        {
            await client.PutAsync(key, value, cancellationToken);
            LastRoute = client.LastRedirects.Count > 0 ? string.Join(", ", client.LastRedirects) : client.LastServedBy;
        }

        public string? LastRoute { get; private set; }

        public Task GetAsync(string key, CancellationToken cancellationToken) => client.GetAsync(key, stale: false, cancellationToken);

        public void Dispose() => client.Dispose();
    }
}

/// <summary>etcd: three members of Debian's etcd-server, with the same election timing as ours.</summary>
internal sealed class EtcdCluster : ClusterUnderTest
{
    private readonly string _etcd;
    private readonly (string Name, string Client, string Peer)[] _members;

    public EtcdCluster(string folder, string etcd) : base("etcd", folder)
    {
        _etcd = etcd;
        _members = [.. Enumerable.Range(1, 3).Select(i => ($"e{i}", $"http://127.0.0.1:{FreePort()}", $"http://127.0.0.1:{FreePort()}"))];
    }

    public override string Settings => "etcd 3.4 defaults (snapshot every 100,000 entries) but --election-timeout 150 (a 150-300 ms window, as ours) --heartbeat-interval 30 (etcd needs at most a fifth)";

    public override IKvClient CreateClient() => new Client(this);

    protected override ProcessStartInfo StartInfo(int member)
    {
        (string name, string client, string peer) = _members[member];
        var info = new ProcessStartInfo(_etcd) { WorkingDirectory = Folder };
        foreach (string arg in new[]
        {
            "--name", name, "--data-dir", Path.Combine(Folder, name),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", string.Join(",", _members.Select(m => $"{m.Name}={m.Peer}")),
            "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
            "--heartbeat-interval", "30", "--election-timeout", "150", "--log-level", "error", "--logger", "zap",
        })
        {
            info.ArgumentList.Add(arg);
        }
        return info;
    }

    private readonly Dictionary<string, GrpcChannel> _channels = [];

    private GrpcChannel ChannelOf(int member)
    {
        lock (_channels)
        {
            string address = _members[member].Client;
            if (!_channels.TryGetValue(address, out GrpcChannel? channel))
            {
                channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
                _channels[address] = channel;
            }
            return channel;
        }
    }

    public override async Task<int?> LeaderAsync(CancellationToken cancellationToken)
    {
        var ids = new ulong[3];
        ulong leader = 0;
        for (int member = 0; member < 3; member++)
        {
            try
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(TimeSpan.FromMilliseconds(500));
                StatusResponse status = await new Maintenance.MaintenanceClient(ChannelOf(member)).StatusAsync(new StatusRequest(), cancellationToken: deadline.Token);
                ids[member] = status.Header.MemberId;
                leader = status.Leader;
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
            }
        }
        int index = Array.IndexOf(ids, leader);
        return leader != 0 && index >= 0 ? index : null;
    }

    public override Task<bool> AnswersAsync(int member, CancellationToken cancellationToken) => Succeeds(async () =>
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromMilliseconds(500));
        await new Maintenance.MaintenanceClient(ChannelOf(member)).StatusAsync(new StatusRequest(), cancellationToken: deadline.Token);
    });

    /// <summary>Sends to the leader (found once, and again after a failure); a follower would forward, at a cost.</summary>
    private sealed class Client(EtcdCluster cluster) : IKvClient
    {
        private volatile KV.KVClient? _leader;

        private async Task<KV.KVClient> LeaderAsync(CancellationToken cancellationToken)
        {
            if (_leader is { } known)
            {
                return known;
            }
            int? leader = await cluster.LeaderAsync(cancellationToken);
            var client = new KV.KVClient(cluster.ChannelOf(leader ?? 0));
            if (leader != null)
            {
                _leader = client;
            }
            return client;
        }

        public async Task PutAsync(string key, string value, CancellationToken cancellationToken)
        {
            KV.KVClient kv = await LeaderAsync(cancellationToken);
            try
            {
                await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = ByteString.CopyFromUtf8(value) }, cancellationToken: cancellationToken);
            }
            catch (Grpc.Core.RpcException)
            {
                _leader = null;
                throw;
            }
        }

        public async Task GetAsync(string key, CancellationToken cancellationToken)
        {
            KV.KVClient kv = await LeaderAsync(cancellationToken);
            await kv.RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8(key) }, cancellationToken: cancellationToken);
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Debian's etcd, installed with apt when this runs as root and it is missing; null when there is none.</summary>
    public static string? Find()
    {
        foreach (string? candidate in new[] { Environment.GetEnvironmentVariable("RAFT_ETCD"), "/usr/bin/etcd", "/usr/local/bin/etcd" })
        {
            if (candidate is { Length: > 0 } && File.Exists(candidate))
            {
                return candidate;
            }
        }
        if (OperatingSystem.IsLinux() && Environment.UserName == "root" && File.Exists("/usr/bin/apt-get"))
        {
            Console.WriteLine("etcd not found: installing Debian's etcd-server with apt-get ...");
            using Process? apt = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "apt-get install -y -qq --no-install-recommends etcd-server >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends etcd-server >/dev/null 2>&1)"]));
            apt?.WaitForExit();
            return File.Exists("/usr/bin/etcd") ? "/usr/bin/etcd" : null;
        }
        return null;
    }
}

internal static class Text
{
    public static string Value(int length, int seed)
    {
        var builder = new StringBuilder(length);
        for (int i = 0; i < length; i++)
        {
            builder.Append((char)('a' + ((seed + i) % 26)));
        }
        return builder.ToString();
    }
}
