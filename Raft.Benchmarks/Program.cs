using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Storage;
using Raft.Client;
using Raft.Node.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

// Prints medians and ratios, never asserts: the machines are shared and noisy. Run with
//   dotnet run -c Release --project Raft.Benchmarks [storage|core|cluster]
//   dotnet run -c Release --project Raft.Benchmarks -- compare [--clients 1,16,64,256] [--rounds 3] [--seconds 10] ...
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "compare")
{
    return await new Raft.Benchmarks.Compare.CompareBenchmark(Raft.Benchmarks.Compare.CompareOptions.Parse(args[1..])).RunAsync();
}
string[] which = args.Length > 0 ? args : ["storage", "core", "cluster"];
if (which.Contains("storage"))
{
    await Storage();
}
if (which.Contains("core"))
{
    Core();
}
if (which.Contains("cluster"))
{
    await Cluster();
}
return 0;

static double Median(List<double> values)
{
    values.Sort();
    return values[values.Count / 2];
}

// Group commit: the same 1,000 entries saved one per transaction, then 100 per transaction (one fsync each).
static async Task Storage()
{
    string folder = Directory.CreateTempSubdirectory("raft-bench-").FullName;
    try
    {
        var single = new List<double>();
        var grouped = new List<double>();
        for (int round = 0; round < 5; round++)
        {
            foreach ((int batch, List<double> results) in new[] { (1, single), (100, grouped) })
            {
                await using SqliteLogStore store = SqliteLogStore.Open(Path.Combine(folder, $"r{round}-b{batch}.db"));
                var clock = Stopwatch.StartNew();
                for (int first = 1; first <= 1000; first += batch)
                {
                    LogEntry[] entries = Enumerable.Range(first, batch).Select(i => new LogEntry(i, 1, EntryKind.Command, new byte[100])).ToArray();
                    await store.SaveAsync(null, entries);
                }
                results.Add(1000 / clock.Elapsed.TotalSeconds);
            }
        }
        Console.WriteLine($"storage: SQLite (WAL, synchronous=FULL), 1,000 entries of 100 bytes, median of 5 rounds:");
        Console.WriteLine($"  one entry per save:  {Median(single),10:F0} entries/s");
        Console.WriteLine($"  100 entries per save:{Median(grouped),10:F0} entries/s   (group commit: x{Median(grouped) / Median(single):F1})");
    }
    finally
    {
        Directory.Delete(folder, recursive: true);
    }
}

// The pure core: a three-member cluster stepped by hand, with no I/O: how many proposals per second it can order.
static void Core()
{
    var rates = new List<double>();
    for (int round = 0; round < 5; round++)
    {
        string[] ids = ["a", "b", "c"];
        var cores = ids.ToDictionary(id => id, id => new RaftCore(id, new ClusterConfiguration(ids), new RaftOptions { PreVote = false }, PersistentState.Empty, new Random((round * 31) + id[0])));
        var inbox = new Queue<RaftMessage>();
        void Flush(RaftCore core)
        {
            while (core.HasReady)
            {
                Ready ready = core.TakeReady();
                foreach (RaftMessage m in ready.AllMessages)
                {
                    inbox.Enqueue(m);
                }
                core.Advance(ready);
            }
        }
        void Deliver()
        {
            while (inbox.TryDequeue(out RaftMessage? m))
            {
                cores[m.To].Step(m);
                Flush(cores[m.To]);
            }
        }
        while (!cores.Values.Any(c => c.Role == Role.Leader))
        {
            foreach (RaftCore core in cores.Values)
            {
                core.Tick();
                Flush(core);
            }
            Deliver();
        }
        RaftCore leader = cores.Values.First(c => c.Role == Role.Leader);
        int Proposals = int.Parse(Environment.GetEnvironmentVariable("CORE_PROPOSALS") ?? "200000", CultureInfo.InvariantCulture);
        var clock = Stopwatch.StartNew();
        byte[] command = new byte[64];
        for (int i = 0; i < Proposals; i += 100)
        {
            for (int j = 0; j < 100; j++)
            {
                leader.Propose(command);
            }
            Flush(leader);
            Deliver();
            if (Environment.GetEnvironmentVariable("CORE_DEBUG") == "1" && i % 1000 == 0)
            {
                Console.WriteLine($"{i}: {string.Join(" ", cores.Values.Select(c => $"{c.Id} {c.Role} last {c.LastIndex} commit {c.CommitIndex}"))} {string.Join(" ", leader.Followers.Select(f => $"{f.Id} m{f.MatchIndex} n{f.NextIndex} {f.State} {f.Inflight}"))} {clock.Elapsed.TotalSeconds:F2}s");
            }
        }
        rates.Add(Proposals / clock.Elapsed.TotalSeconds);
        if (leader.CommitIndex < Proposals)
        {
            throw new InvalidOperationException("not everything committed"); // followers learn the last commit with the next heartbeat
        }
    }
    Console.WriteLine($"core: 3 cores in one thread, batches of 100 proposals, no I/O: median {Median(rates):F0} commits/s (5 rounds)");
}

// Three real nodes (Kestrel, gRPC, SQLite) on loopback in this process: write latency and throughput.
static async Task Cluster()
{
    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
    string folder = Directory.CreateTempSubdirectory("raft-bench-cluster-").FullName;
    var specs = Enumerable.Range(1, 3).Select(i => (Id: $"n{i}", Grpc: $"http://127.0.0.1:{FreePort()}", Http: $"http://127.0.0.1:{FreePort()}")).ToList();
    string members = string.Join(",", specs.Select(s => $"{s.Id}={s.Grpc}"));
    var apps = new List<WebApplication>();
    try
    {
        foreach (var spec in specs)
        {
            WebApplication app = NodeApp.Build(new NodeOptions { Id = spec.Id, GrpcUrl = spec.Grpc, HttpUrl = spec.Http, Members = members, DataDir = Path.Combine(folder, spec.Id) },
                builder => builder.Logging.SetMinimumLevel(LogLevel.Warning));
            await app.StartAsync();
            apps.Add(app);
        }
        using var client = new RaftClient(specs.Select(s => s.Grpc));
        await client.PutAsync("warm-up", "x");
        using AllocationSampler? sampler = Environment.GetEnvironmentVariable("RAFT_ALLOC_TYPES") == "1" ? new AllocationSampler() : null;
        foreach (int concurrency in new[] { 1, 32 })
        {
            int writes = concurrency == 1 ? 1000 : 10_000;
            var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
            {
                for (int i = worker; i < writes; i += concurrency)
                {
                    long start = Stopwatch.GetTimestamp();
                    await client.PutAsync($"k{i}", "value");
                    latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }));
            double allocatedPerWrite = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / (double)writes;
            var sorted = latencies.Order().ToList();
            Console.WriteLine($"cluster: 3 nodes on loopback, {writes} writes, {concurrency} at a time: {writes / clock.Elapsed.TotalSeconds:F0} writes/s, " +
                $"median {Median(sorted):F2} ms, p99 {sorted[(int)(sorted.Count * 0.99)]:F2} ms, " +
                $"{allocatedPerWrite / 1024:F1} KiB allocated per write (three nodes and the client, one process)");
        }
        sampler?.Print(25);
    }
    finally
    {
        foreach (WebApplication app in apps)
        {
            await app.StopAsync(new CancellationToken(true));
            await app.DisposeAsync();
        }
        Directory.Delete(folder, recursive: true);
    }
}

/// <summary>
/// Samples the runtime's allocation ticks (one about every 100 KB allocated) by type, to show where allocations come
/// from (RAFT_ALLOC_TYPES=1 with the cluster measurement).
/// </summary>
internal sealed class AllocationSampler : System.Diagnostics.Tracing.EventListener
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _bytes = new();

    protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1); // GC keyword
        }
    }

    protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
    {
        if (e.EventName == "GCAllocationTick_V4" && e.Payload is { } payload && e.PayloadNames is { } names)
        {
            string type = payload[names.IndexOf("TypeName")] as string ?? "?";
            long amount = Convert.ToInt64(payload[names.IndexOf("AllocationAmount64")], CultureInfo.InvariantCulture);
            _bytes.AddOrUpdate(type, amount, (_, total) => total + amount);
        }
    }

    public void Print(int top)
    {
        long total = _bytes.Values.Sum();
        Console.WriteLine($"allocation samples by type (top {top}, share of sampled bytes):");
        foreach ((string type, long bytes) in _bytes.OrderByDescending(p => p.Value).Take(top))
        {
            Console.WriteLine($"  {100.0 * bytes / total,5:F1}%  {type}");
        }
    }
}
