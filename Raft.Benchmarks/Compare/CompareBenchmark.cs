using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Raft.Benchmarks.Compare;

/// <summary>
/// Our three-node cluster against a three-member etcd on the same machine, driven by the same closed-loop load
/// generator: durable puts (16-byte unique keys, 100-byte values) and linearizable gets at several client counts,
/// rounds alternating between the two systems, then leader failover. Prints tables of medians, ranges and ratios,
/// and writes every round to a JSON file. Nothing here is asserted: the machines are shared and noisy.
/// </summary>
internal sealed class CompareBenchmark(CompareOptions options)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private readonly List<RoundResult> _rounds = [];
    private readonly List<FailoverResult> _failovers = [];
    private readonly Dictionary<string, double> _idle = [];

    public async Task<int> RunAsync()
    {
        string folder = Directory.CreateTempSubdirectory("raft-compare-").FullName;
        Console.WriteLine($"compare: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; data in {folder}");
        double fsyncs = MeasureFsyncRate(folder);
        Console.WriteLine($"disk: {fsyncs:F0} fsyncs/s (4 KiB write + fsync, 1 s, in the data folder)");
        string? etcd = options.SkipEtcd ? null : EtcdCluster.Find();
        if (etcd is null)
        {
            Console.WriteLine(options.SkipEtcd ? "etcd: skipped (--no-etcd)" : "etcd: NOT FOUND (set RAFT_ETCD, or run as root on Debian to install etcd-server): the comparison is SKIPPED, only our numbers follow");
        }
        string nodeDll = options.NodeDll ?? await PublishNodeAsync(folder);
        var systems = new List<ClusterUnderTest> { new RaftNodeCluster(folder, nodeDll, options.SnapshotThreshold, options.NodeEnvironment) };
        if (etcd != null)
        {
            systems.Insert(0, new EtcdCluster(folder, etcd));
        }
        try
        {
            foreach (ClusterUnderTest system in systems)
            {
                await system.StartAsync();
                Console.WriteLine($"{system.Name}: started ({system.Settings})");
            }
            // Idle cost: a cluster with nothing to do should cost next to nothing.
            await Task.Delay(TimeSpan.FromSeconds(2));
            foreach (ClusterUnderTest system in systems)
            {
                double before = system.CpuSeconds();
                await Task.Delay(TimeSpan.FromSeconds(5));
                double idle = (system.CpuSeconds() - before) / 5 / 3 * 100;
                _idle[system.Name] = idle;
                Console.WriteLine($"{system.Name}: idle, {idle:F1}% of a core per member");
            }
            foreach (string workload in options.Workloads.Where(w => w is "put" or "get"))
            {
                foreach (int clients in options.Clients)
                {
                    for (int round = 1; round <= options.Rounds; round++)
                    {
                        foreach (ClusterUnderTest system in systems)
                        {
                            RoundResult result = await RunRoundAsync(system, workload, clients, round);
                            _rounds.Add(result);
                            Console.WriteLine($"  {workload} {clients,3} clients round {round} {system.Name,-5}: {result.OpsPerSecond,8:F0} ops/s  p50 {result.P50Ms,6:F2} ms  p99 {result.P99Ms,7:F2} ms  errors {result.Errors}  cpu {result.NodeCpuSeconds:F1} s nodes, {result.ClientCpuSeconds:F1} s load generator");
                        }
                    }
                }
                PrintTable(workload, systems);
            }
            if (options.Workloads.Contains("failover"))
            {
                foreach (ClusterUnderTest system in systems)
                {
                    await FailoverAsync(system);
                }
                PrintFailover(systems);
            }
        }
        finally
        {
            foreach (ClusterUnderTest system in systems)
            {
                await system.DisposeAsync();
            }
        }
        string json = options.OutputPath ?? Path.Combine(Environment.CurrentDirectory, $"compare-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(json, JsonSerializer.Serialize(new
        {
            machine = new { cores = Environment.ProcessorCount, os = Environment.OSVersion.ToString(), dotnet = Environment.Version.ToString(), fsyncsPerSecond = fsyncs },
            options = new { options.Clients, options.Rounds, options.Seconds, options.WarmupSeconds, options.SnapshotThreshold, options.Failovers, options.NodeEnvironment },
            settings = systems.ToDictionary(s => s.Name, s => s.Settings),
            idlePercentOfACorePerMember = _idle,
            rounds = _rounds,
            failovers = _failovers,
        }, Indented));
        Console.WriteLine($"every round: {json}");
        if (!options.KeepData)
        {
            Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    private async Task<RoundResult> RunRoundAsync(ClusterUnderTest system, string workload, int clients, int round)
    {
        using IKvClient client = system.CreateClient();
        string value = Text.Value(100, round);
        if (workload == "get")
        {
            await Task.WhenAll(Enumerable.Range(0, Math.Min(clients, 64)).Select(i => client.PutAsync($"get-key-{i:D8}", value, CancellationToken.None)));
        }
        var latencies = new List<double>[clients];
        long errors = 0;
        bool measuring = false;
        using var stop = new CancellationTokenSource();
        long measureStart = 0;
        double nodeCpuStart = 0;
        TimeSpan clientCpuStart = TimeSpan.Zero;
        Task[] workers = [.. Enumerable.Range(0, clients).Select(worker => Task.Run(async () =>
        {
            var mine = latencies[worker] = new List<double>(4096);
            long sequence = 0;
            while (!stop.IsCancellationRequested)
            {
                // 16-byte keys, unique across workers, rounds and systems' runs.
                string key = workload == "put" ? $"{round:x2}{worker:x3}{sequence++:x11}" : $"get-key-{worker % 64:D8}";
                long start = Stopwatch.GetTimestamp();
                try
                {
                    if (workload == "put")
                    {
                        await client.PutAsync(key, value, stop.Token);
                    }
                    else
                    {
                        await client.GetAsync(key, stop.Token);
                    }
                    if (Volatile.Read(ref measuring))
                    {
                        mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                }
                catch (Exception)
                {
                    if (Volatile.Read(ref measuring))
                    {
                        Interlocked.Increment(ref errors);
                    }
                    await Task.Delay(10);
                }
            }
        }))];
        await Task.Delay(TimeSpan.FromSeconds(options.WarmupSeconds));
        nodeCpuStart = system.CpuSeconds();
        clientCpuStart = Process.GetCurrentProcess().TotalProcessorTime;
        measureStart = Stopwatch.GetTimestamp();
        Volatile.Write(ref measuring, true);
        await Task.Delay(TimeSpan.FromSeconds(options.Seconds));
        Volatile.Write(ref measuring, false);
        double elapsed = Stopwatch.GetElapsedTime(measureStart).TotalSeconds;
        double nodeCpu = system.CpuSeconds() - nodeCpuStart;
        double clientCpu = (Process.GetCurrentProcess().TotalProcessorTime - clientCpuStart).TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        var all = latencies.SelectMany(l => l).ToList();
        all.Sort();
        double Percentile(double p) => all.Count == 0 ? double.NaN : all[Math.Min(all.Count - 1, (int)(all.Count * p))];
        return new RoundResult(system.Name, workload, clients, round, all.Count / elapsed, Percentile(0.50), Percentile(0.99), Interlocked.Read(ref errors), nodeCpu, clientCpu);
    }

    /// <summary>
    /// Raft.Node as the Dockerfile ships it: published with ReadyToRun code, so that a member just started (or just
    /// elected) does not spend its first moments compiling, which etcd, a Go binary, never does.
    /// </summary>
    private static async Task<string> PublishNodeAsync(string folder)
    {
        string? root = AppContext.BaseDirectory;
        while (root != null && !File.Exists(Path.Combine(root, "Raft.sln")))
        {
            root = Path.GetDirectoryName(root);
        }
        if (root is null)
        {
            throw new InvalidOperationException("Raft.sln not found above the benchmark; give the node with --node-dll");
        }
        string output = Path.Combine(folder, "node");
        var publish = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "publish", Path.Combine(root, "Raft.Node", "Raft.Node.csproj"), "-c", "Release",
            "-r", System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier, "--self-contained", "false", "-p:PublishReadyToRun=true", "-o", output })
        {
            publish.ArgumentList.Add(arg);
        }
        long started = Stopwatch.GetTimestamp();
        using Process process = Process.Start(publish)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish of Raft.Node failed:\n{await stdout}{await stderr}");
        }
        Console.WriteLine($"node: published with ReadyToRun to {output} in {Stopwatch.GetElapsedTime(started).TotalSeconds:F0} s (as the Dockerfile does; --node-dll runs another build)");
        return Path.Combine(output, "Raft.Node.dll");
    }

    private async Task FailoverAsync(ClusterUnderTest system)
    {
        Console.WriteLine($"failover {system.Name}: SIGKILL the leader while a put is started every 5 ms; time to the first acknowledged put; {options.Failovers} times");
        using IKvClient client = system.CreateClient();
        string value = Text.Value(100, 7);
        for (int repetition = 1; repetition <= options.Failovers; repetition++)
        {
            using var settle = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            int leader;
            while (await system.LeaderAsync(settle.Token) is not int known)
            {
                await Task.Delay(20, settle.Token);
            }
            leader = (await system.LeaderAsync(settle.Token))!.Value;
            await client.PutAsync($"failover-warm-{repetition}", value, settle.Token);
            var seen = new List<TimelineEvent>();
            var watchers = new List<IAsyncDisposable>();
            foreach (int survivor in Enumerable.Range(0, 3).Where(m => m != leader))
            {
                if (await system.WatchElectionsAsync(survivor, e => { lock (seen) { seen.Add(e); } }) is { } watcher)
                {
                    watchers.Add(watcher);
                }
            }
            DateTimeOffset killedAt = DateTimeOffset.UtcNow;
            long killed = Stopwatch.GetTimestamp();
            system.Kill(leader);
            using var done = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var first = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
            var probes = new List<Task>();
            int probe = 0;
            while (!first.Task.IsCompleted && !done.IsCancellationRequested)
            {
                int n = probe++;
                probes.Add(Task.Run(async () =>
                {
                    try
                    {
                        await client.PutAsync($"f{repetition:x3}{n:x11}", value, done.Token);
                        first.TrySetResult(Stopwatch.GetElapsedTime(killed));
                    }
                    catch (Exception)
                    {
                    }
                }));
                await Task.WhenAny(first.Task, Task.Delay(5));
            }
            TimeSpan outage = first.Task.IsCompleted ? await first.Task : TimeSpan.FromSeconds(20);
            string? route = client.LastRoute;
            await done.CancelAsync();
            await Task.WhenAll(probes);
            await Task.Delay(300); // the hubs send changes in batches: let the last ones arrive
            foreach (IAsyncDisposable watcher in watchers)
            {
                await watcher.DisposeAsync();
            }
            List<string> timeline;
            lock (seen)
            {
                timeline = [.. seen.Where(e => e.At >= killedAt - TimeSpan.FromSeconds(1)).OrderBy(e => e.At)
                    .Select(e => $"{(e.At - killedAt).TotalMilliseconds,6:F0} ms  {e.Member} {e.Text}")];
            }
            timeline.Insert(0, $"     0 ms  SIGKILL {system.MemberName(leader)} (the leader)");
            timeline.Add($"{outage.TotalMilliseconds,6:F0} ms  first put acknowledged{(route != null ? $" ({route})" : "")}");
            TimeSpan restart = await system.RestartAsync(leader);
            _failovers.Add(new FailoverResult(system.Name, repetition, outage.TotalMilliseconds, restart.TotalMilliseconds, timeline));
            Console.WriteLine($"  {system.Name} #{repetition}: first put acknowledged {outage.TotalMilliseconds:F0} ms after the kill; the killed member answered status {restart.TotalMilliseconds:F0} ms after its restart");
            if (watchers.Count > 0)
            {
                foreach (string moment in timeline)
                {
                    Console.WriteLine($"      {moment}");
                }
            }
            await Task.Delay(1000);
        }
    }

    private void PrintTable(string workload, List<ClusterUnderTest> systems)
    {
        string title = workload == "put" ? "durable puts (16-byte keys, 100-byte values)" : "linearizable gets";
        Console.WriteLine();
        Console.WriteLine($"{title}: {options.Rounds} rounds of {options.Seconds} s after {options.WarmupSeconds} s warm-up, medians [min-max]; CPU = node seconds per 1,000 ops");
        Console.WriteLine($"| clients | {string.Join(" | ", systems.Select(s => $"{s.Name} ops/s | {s.Name} p50 / p99 ms | {s.Name} CPU"))} |{(systems.Count > 1 ? " ratio ops/s | ratio p99 |" : "")}");
        Console.WriteLine($"|---|{string.Concat(Enumerable.Repeat("---|---|---|", systems.Count))}{(systems.Count > 1 ? "---|---|" : "")}");
        foreach (int clients in options.Clients)
        {
            var cells = new List<string>();
            var medians = new Dictionary<string, (double Ops, double P99)>();
            foreach (ClusterUnderTest system in systems)
            {
                var rounds = _rounds.Where(r => r.System == system.Name && r.Workload == workload && r.Clients == clients).ToList();
                double ops = Median(rounds.Select(r => r.OpsPerSecond));
                double p50 = Median(rounds.Select(r => r.P50Ms));
                double p99 = Median(rounds.Select(r => r.P99Ms));
                double cpu = Median(rounds.Select(r => r.NodeCpuSeconds / Math.Max(1, r.OpsPerSecond * options.Seconds) * 1000));
                medians[system.Name] = (ops, p99);
                cells.Add($"{ops:N0} [{rounds.Min(r => r.OpsPerSecond):N0}-{rounds.Max(r => r.OpsPerSecond):N0}]");
                cells.Add($"{p50:F2} / {p99:F2}");
                cells.Add($"{cpu:F2} s");
            }
            string ratios = "";
            if (systems.Count > 1)
            {
                (double ours, double theirs) = (medians["raft"].Ops, medians["etcd"].Ops);
                ratios = $" {ours / theirs:F2} | {medians["raft"].P99 / medians["etcd"].P99:F2} |";
            }
            Console.WriteLine($"| {clients} | {string.Join(" | ", cells)} |{ratios}");
        }
        Console.WriteLine(systems.Count > 1 ? "(ratio = ours / etcd: above 1 is more ops/s, or a longer p99)" : "");
    }

    private void PrintFailover(List<ClusterUnderTest> systems)
    {
        Console.WriteLine();
        Console.WriteLine("failover: SIGKILL of the leader to the first acknowledged put, and restart of the killed member to its first status answer");
        Console.WriteLine("| system | outage median | outage min-max | restart to status median | restart max |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (ClusterUnderTest system in systems)
        {
            var runs = _failovers.Where(f => f.System == system.Name).ToList();
            if (runs.Count == 0)
            {
                continue;
            }
            Console.WriteLine($"| {system.Name} | {Median(runs.Select(r => r.OutageMs)):F0} ms | {runs.Min(r => r.OutageMs):F0}-{runs.Max(r => r.OutageMs):F0} ms | {Median(runs.Select(r => r.RestartToStatusMs)):F0} ms | {runs.Max(r => r.RestartToStatusMs):F0} ms |");
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>How many small synchronous writes the disk takes per second right now (it swings: the disk is shared).</summary>
    private static double MeasureFsyncRate(string folder)
    {
        string path = Path.Combine(folder, "fsync-probe");
        byte[] block = new byte[4096];
        using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            var clock = Stopwatch.StartNew();
            int count = 0;
            while (clock.Elapsed < TimeSpan.FromSeconds(1))
            {
                file.Write(block);
                file.Flush(flushToDisk: true);
                count++;
            }
            File.Delete(path);
            return count / clock.Elapsed.TotalSeconds;
        }
    }
}

internal sealed record RoundResult(string System, string Workload, int Clients, int Round, double OpsPerSecond, double P50Ms, double P99Ms, long Errors, double NodeCpuSeconds, double ClientCpuSeconds);

/// <summary>One failover; <paramref name="Timeline"/> is what the surviving members saw, in ms from the kill (their own clocks, on this machine).</summary>
internal sealed record FailoverResult(string System, int Repetition, double OutageMs, double RestartToStatusMs, IReadOnlyList<string> Timeline);

internal sealed record CompareOptions
{
    public IReadOnlyList<int> Clients { get; init; } = [1, 16, 64, 256];
    public IReadOnlyList<string> Workloads { get; init; } = ["put", "get", "failover"];
    public int Rounds { get; init; } = 3;
    public double Seconds { get; init; } = 10;
    public double WarmupSeconds { get; init; } = 2;
    public int Failovers { get; init; } = 10;
    public int SnapshotThreshold { get; init; } = 1000;
    public bool SkipEtcd { get; init; }
    public bool KeepData { get; init; }
    public string? OutputPath { get; init; }
    /// <summary>The node to run; null: Raft.Node of this source tree, published with ReadyToRun.</summary>
    public string? NodeDll { get; init; }
    public Dictionary<string, string> NodeEnvironment { get; init; } = [];

    public static CompareOptions Parse(string[] args)
    {
        var options = new CompareOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--clients" => options with { Clients = [.. Next().Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture))] },
                "--workloads" => options with { Workloads = [.. Next().Split(',')] },
                "--rounds" => options with { Rounds = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--seconds" => options with { Seconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--warmup" => options with { WarmupSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--failovers" => options with { Failovers = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--snapshot-threshold" => options with { SnapshotThreshold = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--no-etcd" => options with { SkipEtcd = true },
                "--keep-data" => options with { KeepData = true },
                "--out" => options with { OutputPath = Next() },
                "--node-dll" => options with { NodeDll = Path.GetFullPath(Next()) },
                "--node-env" => options with { NodeEnvironment = new(options.NodeEnvironment) { [Next().Split('=')[0]] = args[i].Split('=', 2)[1] } },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return options;
    }
}
