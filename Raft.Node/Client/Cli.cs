using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Microsoft.AspNetCore.SignalR.Client;
using Raft.Node.Hosting;
using Raft.Node.Protocol;

namespace Raft.Node.Client;

/// <summary>The operator's command line, in the style of etcdctl: <c>Raft.Node put k v --endpoints http://127.0.0.1:7001</c>.</summary>
public static class Cli
{
    public static readonly IReadOnlySet<string> Verbs = new HashSet<string>(StringComparer.Ordinal)
    {
        "put", "get", "delete", "cas", "watch", "status", "endpoint", "members", "add", "remove", "transfer", "handoff", "snapshot", "faults", "heal", "bench",
    };

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var positional = new List<string>();
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                bool hasValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) && args[i] is not ("--json" or "--stale" or "--isolate" or "--events");
                flags[args[i][2..]] = hasValue ? args[++i] : "true";
            }
            else
            {
                positional.Add(args[i]);
            }
        }
        string verb = positional[0];
        string[] rest = [.. positional.Skip(1)];
        bool json = flags.ContainsKey("json") || flags.GetValueOrDefault("output") == "json";
        string endpoints = flags.GetValueOrDefault("endpoints") ?? Environment.GetEnvironmentVariable("RAFT_ENDPOINTS") ?? "http://127.0.0.1:7001";
        using var client = new RaftClient(endpoints.Split(','))
        {
            Token = flags.GetValueOrDefault("token") ?? Environment.GetEnvironmentVariable("RAFT_TOKEN"),
            CaFile = flags.GetValueOrDefault("ca") ?? Environment.GetEnvironmentVariable("RAFT_CA"),
        };

        void Print(object value, string text)
        {
            output.WriteLine(json ? JsonSerializer.Serialize(value, Json) : text);
        }

        string Arg(int i, string name) => i < rest.Length ? rest[i] : throw new ArgumentException($"{verb}: missing <{name}>");

        try
        {
            switch (verb)
            {
                case "put":
                {
                    PutReply reply = await client.PutAsync(Arg(0, "key"), Arg(1, "value"));
                    Print(new { ok = true, previous = reply.HasPrevious ? reply.Previous : null, servedBy = reply.ServedBy, redirects = client.LastRedirects },
                        $"OK{(reply.HasPrevious ? $" (was {reply.Previous})" : "")}  [served by {reply.ServedBy}{Redirects(client)}]");
                    break;
                }
                case "get":
                {
                    GetReply reply = await client.GetAsync(Arg(0, "key"), flags.ContainsKey("stale"));
                    Print(new { found = reply.Found, value = reply.Found ? reply.Value : null, servedBy = reply.ServedBy },
                        reply.Found ? reply.Value : $"(not found)  [served by {reply.ServedBy}]");
                    return reply.Found ? 0 : 1;
                }
                case "delete":
                {
                    DeleteReply reply = await client.DeleteAsync(Arg(0, "key"));
                    Print(new { deleted = reply.Deleted, previous = reply.HasPrevious ? reply.Previous : null, servedBy = reply.ServedBy },
                        reply.Deleted ? $"deleted (was {reply.Previous})" : "(not found)");
                    return reply.Deleted ? 0 : 1;
                }
                case "cas":
                {
                    static string? Absent(string s) => s == "-" ? null : s;
                    CompareAndSwapReply reply = await client.CompareAndSwapAsync(Arg(0, "key"), Absent(Arg(1, "expected")), Absent(Arg(2, "new")));
                    Print(new { swapped = reply.Swapped, current = reply.HasCurrent ? reply.Current : null, servedBy = reply.ServedBy },
                        reply.Swapped ? "swapped" : $"not swapped: the value is {(reply.HasCurrent ? reply.Current : "(absent)")}");
                    return reply.Swapped ? 0 : 1;
                }
                case "watch":
                    return await WatchAsync(client, rest, flags, json, output);
                case "endpoint":
                {
                    if (Arg(0, "health") != "health")
                    {
                        throw new ArgumentException($"endpoint: unknown '{rest[0]}' (endpoint health)");
                    }
                    var checks = await Task.WhenAll(endpoints.Split(',').Select(async endpoint =>
                    {
                        long start = System.Diagnostics.Stopwatch.GetTimestamp();
                        try
                        {
                            NodeStatus s = await client.AdminOf(endpoint).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(3));
                            string? problem = string.IsNullOrEmpty(s.LeaderId) ? "no leader known" : null;
                            return (Endpoint: endpoint, Healthy: problem is null, Took: System.Diagnostics.Stopwatch.GetElapsedTime(start), Problem: problem);
                        }
                        catch (RpcException e)
                        {
                            return (Endpoint: endpoint, Healthy: false, Took: System.Diagnostics.Stopwatch.GetElapsedTime(start), Problem: (string?)$"{e.StatusCode}: {e.Status.Detail}");
                        }
                    }));
                    if (json)
                    {
                        output.WriteLine(JsonSerializer.Serialize(checks.Select(c => new { endpoint = c.Endpoint, healthy = c.Healthy, tookMs = c.Took.TotalMilliseconds, error = c.Problem }), Json));
                    }
                    else
                    {
                        foreach (var c in checks)
                        {
                            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{c.Endpoint} is {(c.Healthy ? "healthy" : "unhealthy")}: took {c.Took.TotalMilliseconds:F1} ms{(c.Problem is null ? "" : $"; {c.Problem}")}"));
                        }
                    }
                    return checks.All(c => c.Healthy) ? 0 : 1;
                }
                case "status":
                case "members":
                {
                    var all = await client.StatusOfAllAsync();
                    if (json)
                    {
                        output.WriteLine(JsonSerializer.Serialize(all.Select(s => new { s.Endpoint, Status = s.Status?.ToString(), s.Error }), Json));
                        break;
                    }
                    if (verb == "status")
                    {
                        output.WriteLine($"{"NODE",-8} {"ENDPOINT",-26} {"ROLE",-12} {"TERM",5} {"LEADER",-8} {"COMMIT",7} {"APPLIED",7} {"LAST",7} {"SNAP",7} FAULTS");
                        foreach ((string endpoint, NodeStatus? s, string? failure) in all)
                        {
                            output.WriteLine(s is null
                                ? $"{"?",-8} {endpoint,-26} unreachable: {failure}"
                                : string.Create(CultureInfo.InvariantCulture, $"{s.Id,-8} {endpoint,-26} {s.Role,-12} {s.Term,5} {s.LeaderId,-8} {s.CommitIndex,7} {s.AppliedIndex,7} {s.LastIndex,7} {s.SnapshotIndex,7} {Faults(s.Faults)}"));
                        }
                    }
                    else
                    {
                        NodeStatus? s = all.Select(a => a.Status).FirstOrDefault(x => x?.Role == "Leader") ?? all.Select(a => a.Status).FirstOrDefault(x => x != null);
                        if (s is null)
                        {
                            error.WriteLine("no endpoint answered");
                            return 2;
                        }
                        output.WriteLine($"{"ID",-8} {"ADDRESS",-26} {"VOTER",-6} {"MATCH",7} {"NEXT",7} STATE");
                        foreach (Member m in s.Members)
                        {
                            output.WriteLine($"{m.Id,-8} {m.Address,-26} {(m.Voter ? "yes" : "no"),-6} {m.MatchIndex,7} {m.NextIndex,7} {m.ReplicationState}");
                        }
                    }
                    break;
                }
                case "add":
                {
                    AdminReply reply = await client.LeaderAdminAsync(async (admin, token) => await admin.AddServerAsync(new AddServerRequest { Id = Arg(0, "id"), Address = Arg(1, "grpc-url") }, cancellationToken: token));
                    Print(new { message = reply.Message }, reply.Message);
                    break;
                }
                case "remove":
                {
                    AdminReply reply = await client.LeaderAdminAsync(async (admin, token) => await admin.RemoveServerAsync(new RemoveServerRequest { Id = Arg(0, "id") }, cancellationToken: token));
                    Print(new { message = reply.Message }, reply.Message);
                    break;
                }
                case "transfer":
                {
                    AdminReply reply = await client.LeaderAdminAsync(async (admin, token) => await admin.TransferLeadershipAsync(new TransferLeadershipRequest { Id = Arg(0, "id") }, cancellationToken: token));
                    Print(new { message = reply.Message }, reply.Message);
                    break;
                }
                case "handoff":
                {
                    // Before a node stops (a Kubernetes preStop hook): if it leads, it hands leadership to the most
                    // caught-up other voter, so that clients wait for a transfer, not for an election timeout.
                    string node = flags.GetValueOrDefault("node") ?? endpoints.Split(',')[0];
                    NodeStatus s = await client.AdminOf(node).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5));
                    if (s.Role != "Leader")
                    {
                        Print(new { handedOff = false, node = s.Id }, $"{s.Id} does not lead: nothing to hand off");
                        break;
                    }
                    if (s.Members.Where(m => m.Voter && m.Id != s.Id).MaxBy(m => m.MatchIndex) is not { } successor)
                    {
                        error.WriteLine($"{s.Id} is the only voter: there is no one to hand leadership to");
                        return 1;
                    }
                    AdminReply reply = await client.AdminOf(node).TransferLeadershipAsync(new TransferLeadershipRequest { Id = successor.Id }, deadline: DateTime.UtcNow.AddSeconds(10));
                    Print(new { handedOff = true, node = s.Id, to = successor.Id, message = reply.Message }, reply.Message);
                    break;
                }
                case "snapshot":
                {
                    string node = flags.GetValueOrDefault("node") ?? endpoints.Split(',')[0];
                    AdminReply reply = await client.AdminOf(node).TakeSnapshotAsync(new TakeSnapshotRequest());
                    Print(new { message = reply.Message }, reply.Message);
                    break;
                }
                case "faults":
                {
                    var spec = new FaultSpec
                    {
                        Isolate = flags.ContainsKey("isolate"),
                        DropRate = double.Parse(flags.GetValueOrDefault("drop") ?? "0", CultureInfo.InvariantCulture),
                        MaxDelayMs = int.Parse(flags.GetValueOrDefault("delay-ms") ?? "0", CultureInfo.InvariantCulture),
                    };
                    spec.CutPeers.AddRange((flags.GetValueOrDefault("cut") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries));
                    AdminReply reply = await client.AdminOf(Arg(0, "node-url")).SetFaultsAsync(spec);
                    Print(new { message = reply.Message }, reply.Message);
                    break;
                }
                case "bench":
                {
                    int writes = int.Parse(flags.GetValueOrDefault("writes") ?? "2000", CultureInfo.InvariantCulture);
                    int concurrency = int.Parse(flags.GetValueOrDefault("concurrency") ?? "1", CultureInfo.InvariantCulture);
                    await client.PutAsync("bench-warmup", "x");
                    var latencies = new System.Collections.Concurrent.ConcurrentBag<double>();
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
                    {
                        for (int i = worker; i < writes; i += concurrency)
                        {
                            long start = System.Diagnostics.Stopwatch.GetTimestamp();
                            await client.PutAsync($"bench-{i}", "value");
                            latencies.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                        }
                    }));
                    double seconds = clock.Elapsed.TotalSeconds;
                    double[] sorted = [.. latencies.Order()];
                    double P(double q) => sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
                    Print(new { writes, concurrency, seconds, perSecond = writes / seconds, medianMs = P(0.5), p99Ms = P(0.99) },
                        string.Create(CultureInfo.InvariantCulture, $"{writes} writes, {concurrency} at a time: {writes / seconds:F0}/s, median {P(0.5):F2} ms, p99 {P(0.99):F2} ms"));
                    break;
                }
                case "heal":
                {
                    AdminReply reply = await client.AdminOf(Arg(0, "node-url")).HealAsync(new HealRequest());
                    Print(new { message = reply.Message }, reply.Message);
                    break;
                }
            }
            return 0;
        }
        catch (RpcException e)
        {
            error.WriteLine($"error: {e.StatusCode}: {e.Status.Detail}");
            return 2;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            error.WriteLine($"error: {e.Message}");
            error.WriteLine(NodeOptions.HelpText);
            return 2;
        }
    }

    /// <summary>
    /// <c>watch key</c>: the key's value each time it changes, read linearizably every <c>--interval-ms</c> (changes
    /// between two reads are seen as one). <c>watch --events --hub url</c>: the node's own events as they happen (roles,
    /// terms, votes, leaders, configurations, snapshots), from its hub. Both stop after <c>--count</c> lines, or on Ctrl+C.
    /// </summary>
    private static async Task<int> WatchAsync(RaftClient client, string[] rest, Dictionary<string, string> flags, bool json, TextWriter output)
    {
        int count = int.Parse(flags.GetValueOrDefault("count") ?? "0", CultureInfo.InvariantCulture);
        using var stop = new CancellationTokenSource();
        ConsoleCancelEventHandler cancel = (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        Console.CancelKeyPress += cancel;
        int printed = 0;
        bool Done() => count > 0 && printed >= count;
        try
        {
            if (flags.ContainsKey("events"))
            {
                string hubUrl = flags.GetValueOrDefault("hub") ?? throw new ArgumentException("watch --events: give the node's HTTP address with --hub (e.g. http://127.0.0.1:8001)");
                var lines = System.Threading.Channels.Channel.CreateUnbounded<Events.Change>();
                await using var hub = new HubConnectionBuilder()
                    .WithUrl(hubUrl.TrimEnd('/') + Events.RaftHub.Path, o =>
                    {
                        o.AccessTokenProvider = () => Task.FromResult(client.Token);
                        o.HttpMessageHandlerFactory = _ => ChannelOptions.Handler(client.CaFile);
                    })
                    .Build();
                hub.On<Events.ChangeBatch>("Changes", batch =>
                {
                    foreach (Events.Change change in batch.Changes.Where(c => c.Kind is not ("appended" or "commit" or "applied")))
                    {
                        lines.Writer.TryWrite(change);
                    }
                });
                await hub.StartAsync(stop.Token);
                await foreach (Events.Change change in lines.Reader.ReadAllAsync(stop.Token))
                {
                    output.WriteLine(json ? JsonSerializer.Serialize(new { at = change.At, kind = change.Kind, text = change.Text, term = change.Term })
                        : $"{change.At.ToLocalTime():HH:mm:ss.fff} {change.Kind,-12} {change.Text}");
                    printed++;
                    if (Done())
                    {
                        break;
                    }
                }
                return 0;
            }
            string key = rest.Length > 0 ? rest[0] : throw new ArgumentException("watch: missing <key> (or --events --hub <url>)");
            var interval = TimeSpan.FromMilliseconds(int.Parse(flags.GetValueOrDefault("interval-ms") ?? "200", CultureInfo.InvariantCulture));
            (bool Found, string Value)? last = null;
            while (!stop.IsCancellationRequested && !Done())
            {
                GetReply reply = await client.GetAsync(key, stale: false, stop.Token);
                if (last is not { } seen || seen.Found != reply.Found || seen.Value != reply.Value)
                {
                    last = (reply.Found, reply.Value);
                    output.WriteLine(json ? JsonSerializer.Serialize(new { key, found = reply.Found, value = reply.Found ? reply.Value : null })
                        : reply.Found ? reply.Value : "(absent)");
                    printed++;
                }
                await Task.Delay(interval, stop.Token);
            }
            return 0;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= cancel;
        }
    }

    private static string Redirects(RaftClient client) => client.LastRedirects.Count == 0 ? "" : $", redirected {string.Join(", ", client.LastRedirects)}";

    private static string Faults(FaultSpec f) =>
        f.Isolate ? "isolated" : f.CutPeers.Count > 0 ? $"cut {string.Join(",", f.CutPeers)}" : f.DropRate > 0 || f.MaxDelayMs > 0 ? $"drop {f.DropRate:P0} delay {f.MaxDelayMs}ms" : "-";
}
