using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Microsoft.AspNetCore.SignalR.Client;
using Raft.Protocol;

namespace Raft.Client;

/// <summary>The operator's command line, in the style of etcdctl: <c>Raft.Node put k v --endpoints http://127.0.0.1:7001</c>.</summary>
public static class Cli
{
    /// <summary>A verb: how it is called, what it does, and the flags it takes besides the global ones.</summary>
    private sealed record Verb(string Name, string Usage, string Summary, params string[] Flags);

    private static readonly Verb[] Table =
    [
        new("put", "put <key> <value>", "writes a value through the log (a retried write is applied once)"),
        new("get", "get <key> [--stale]", "reads a value, linearizably unless --stale (exit 1: not found)", "stale"),
        new("delete", "delete <key>", "deletes a key (exit 1: not found)"),
        new("cas", "cas <key> <expected|-> <new|->", "sets <key> to <new> if it holds <expected> ('-': absent; a new '-' deletes; exit 1: not swapped)"),
        new("watch", "watch <key> [--interval-ms 200] [--count n] | watch --events --hub <http-url> [--count n]",
            "prints a key's value as it changes, or a node's own events as they happen", "interval-ms", "count", "events", "hub"),
        new("status", "status", "one line per endpoint: role, term, leader, indexes, faults (exit 1: an endpoint did not answer)"),
        new("endpoint", "endpoint health", "whether each endpoint answers and knows a leader (exit 1: one does not)"),
        new("members", "members", "the members as the leader sees them: address, voter, replication progress"),
        new("member", "member list", "the same as members"),
        new("add", "add <id> <grpc-url>", "adds a server: it joins as a learner, catches up, then votes"),
        new("remove", "remove <id>", "removes a server (the leader included)"),
        new("transfer", "transfer <id>", "hands leadership to <id>"),
        new("handoff", "handoff [--node <grpc-url>]", "if the node leads, hands leadership to the most caught-up other voter (before it stops)", "node"),
        new("snapshot", "snapshot [--node <grpc-url>]", "has the node take a snapshot now and compact its log", "node"),
        new("faults", "faults <node-url> [--isolate] [--drop 0.2] [--delay-ms 50] [--cut n2,n3]", "injects network faults at a node (for drills)", "isolate", "drop", "delay-ms", "cut"),
        new("heal", "heal <node-url>", "clears a node's injected faults"),
        new("bench", "bench [--writes 2000] [--concurrency 1]", "times that many puts", "writes", "concurrency"),
    ];

    /// <summary>Flags every verb takes.</summary>
    private static readonly string[] GlobalFlags = ["endpoints", "token", "ca", "json", "write-out", "dial-timeout", "command-timeout", "help"];

    /// <summary>Flags that take no value.</summary>
    private static readonly HashSet<string> Switches = new(StringComparer.Ordinal) { "json", "stale", "isolate", "events", "help" };

    public static readonly IReadOnlySet<string> Verbs = new HashSet<string>(Table.Select(v => v.Name), StringComparer.Ordinal);

    private const string GlobalHelp = """
        global flags:
          --endpoints <urls>         comma-separated gRPC URLs (or RAFT_ENDPOINTS; default http://127.0.0.1:7001)
          --token <token>            bearer token (or RAFT_TOKEN)
          --ca <pem>                 CA of the nodes' TLS certificates (or RAFT_CA)
          -w, --write-out <format>   simple (default), table or json; --json is -w json (also --output)
          --dial-timeout <d>         how long a connection attempt may take (default 2s; 500ms, 2s, 1m)
          --command-timeout <d>      how long the command may take, retries included (default 5s)

        exit codes: 0 done; 1 the answer is no (get/delete: not found, cas: not swapped, status or endpoint health: an
        endpoint did not answer or is unhealthy, handoff: no other voter); 2 a usage error or an error from the cluster
        (its gRPC status is printed: Unauthenticated, Unavailable, ...).
        """;

    /// <summary>raftctl's own help: every verb with its usage and what it does.</summary>
    /// <summary>The known flag a mistyped one most likely meant: one that begins with it, or that it begins with.</summary>
    public static string? Nearest(string typed, IEnumerable<string> known) =>
        known.FirstOrDefault(k => k.StartsWith(typed, StringComparison.Ordinal) || typed.StartsWith(k, StringComparison.Ordinal));

    public static string Help(string program = "raftctl") =>
        $"usage: {program} <verb> [arguments] [flags]   ({program} <verb> --help for one verb)\n\nverbs:\n"
        + string.Concat(Table.Select(v => $"  {v.Usage}\n      {v.Summary}\n")) + "\n" + GlobalHelp;

    private static string HelpOf(Verb verb, string program = "raftctl") =>
        $"usage: {program} {verb.Usage} [global flags]\n{verb.Summary}\n\n" + GlobalHelp;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>etcdctl's durations: 500ms, 2s, 1m; a bare number is seconds.</summary>
    private static TimeSpan Duration(string flag, string text)
    {
        (string number, double scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0) : text.EndsWith('m') ? (text[..^1], 60.0) : (text, 1.0);
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value > 0
            ? TimeSpan.FromSeconds(value * scale)
            : throw new ArgumentException($"--{flag}: '{text}' is not a duration (500ms, 2s, 1m)");
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var positional = new List<string>();
        var flags = new Dictionary<string, string>(StringComparer.Ordinal);
        Verb? verbEntry = args.Length > 0 ? Table.FirstOrDefault(v => v.Name == args[0]) : null;
        if (verbEntry is null)
        {
            error.WriteLine(args.Length == 0 ? "error: no verb (raftctl --help lists them)" : $"error: unknown verb '{args[0]}' (raftctl --help lists them)");
            return 2;
        }
        for (int i = 1; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg is "-h")
            {
                arg = "--help";
            }
            else if (arg is "-w" or "--output")
            {
                arg = "--write-out"; // --output: this command line's name for it before -w
            }
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(arg);
                continue;
            }
            string name = arg[2..];
            string? inline = null;
            if (name.IndexOf('=') is > 0 and int eq)
            {
                (name, inline) = (name[..eq], name[(eq + 1)..]);
            }
            if (!GlobalFlags.Contains(name) && !verbEntry.Flags.Contains(name))
            {
                string? near = Nearest(name, GlobalFlags.Concat(verbEntry.Flags));
                error.WriteLine($"error: {verbEntry.Name} takes no flag --{name}{(near != null ? $" (did you mean --{near}?)" : "")}; raftctl {verbEntry.Name} --help lists its flags");
                return 2;
            }
            if (Switches.Contains(name))
            {
                if (inline is not (null or "true" or "false"))
                {
                    error.WriteLine($"error: --{name} takes no value, or true or false, not '{inline}'");
                    return 2;
                }
                if (inline != "false")
                {
                    flags[name] = "true";
                }
            }
            else if (inline != null || (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)))
            {
                flags[name] = inline ?? args[++i];
            }
            else
            {
                error.WriteLine($"error: --{name} needs a value; raftctl {verbEntry.Name} --help");
                return 2;
            }
        }
        if (flags.ContainsKey("help"))
        {
            output.WriteLine(HelpOf(verbEntry));
            return 0;
        }
        string verb = verbEntry.Name;
        string[] rest = [.. positional];
        string format = flags.ContainsKey("json") ? "json" : flags.GetValueOrDefault("write-out") ?? "simple";
        if (format is not ("json" or "table" or "simple"))
        {
            error.WriteLine($"error: --write-out {format}: one of simple, table, json");
            return 2;
        }
        bool json = format == "json";
        string endpoints = flags.GetValueOrDefault("endpoints") ?? Environment.GetEnvironmentVariable("RAFT_ENDPOINTS") ?? "http://127.0.0.1:7001";
        TimeSpan dialTimeout, commandTimeout;
        try
        {
            dialTimeout = Duration("dial-timeout", flags.GetValueOrDefault("dial-timeout") ?? "2s");
            commandTimeout = Duration("command-timeout", flags.GetValueOrDefault("command-timeout") ?? "5s");
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"error: {e.Message}");
            return 2;
        }
        using var client = new RaftClient(endpoints.Split(','))
        {
            Token = flags.GetValueOrDefault("token") ?? Environment.GetEnvironmentVariable("RAFT_TOKEN"),
            CaFile = flags.GetValueOrDefault("ca") ?? Environment.GetEnvironmentVariable("RAFT_CA"),
            DialTimeout = dialTimeout,
            Timeout = commandTimeout,
        };
        using var commandDeadline = new CancellationTokenSource(commandTimeout);
        DateTime Deadline() => DateTime.UtcNow + commandTimeout;

        void Print(object value, string text)
        {
            output.WriteLine(json ? JsonSerializer.Serialize(value, Json) : text);
        }

        string Arg(int i, string name) => i < rest.Length ? rest[i] : throw new ArgumentException($"{verb}: missing <{name}> (usage: raftctl {verbEntry.Usage})");

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
                            NodeStatus s = await client.AdminOf(endpoint).GetStatusAsync(new StatusRequest(), deadline: Deadline());
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
                {
                    var all = await client.StatusOfAllAsync(commandDeadline.Token);
                    if (json)
                    {
                        output.WriteLine(JsonSerializer.Serialize(all.Select(a => a.Status is { } s
                            ? (object)new
                            {
                                endpoint = a.Endpoint, id = s.Id, role = s.Role, term = s.Term, leader = NullIfEmpty(s.LeaderId), commitIndex = s.CommitIndex,
                                appliedIndex = s.AppliedIndex, lastIndex = s.LastIndex, snapshotIndex = s.SnapshotIndex, faults = Faults(s.Faults),
                            }
                            : new { endpoint = a.Endpoint, error = a.Error }), Json));
                    }
                    else
                    {
                        output.WriteLine($"{"NODE",-8} {"ENDPOINT",-26} {"ROLE",-12} {"TERM",5} {"LEADER",-8} {"COMMIT",7} {"APPLIED",7} {"LAST",7} {"SNAP",7} FAULTS");
                        foreach ((string endpoint, NodeStatus? s, string? failure) in all)
                        {
                            output.WriteLine(s is null
                                ? $"{"?",-8} {endpoint,-26} unreachable: {failure}"
                                : string.Create(CultureInfo.InvariantCulture, $"{s.Id,-8} {endpoint,-26} {s.Role,-12} {s.Term,5} {s.LeaderId,-8} {s.CommitIndex,7} {s.AppliedIndex,7} {s.LastIndex,7} {s.SnapshotIndex,7} {Faults(s.Faults)}"));
                        }
                    }
                    foreach ((string endpoint, NodeStatus? s, string? failure) in all.Where(a => a.Status is null))
                    {
                        error.WriteLine($"error: {endpoint} did not answer: {failure}");
                    }
                    return all.All(a => a.Status != null) ? 0 : 1;
                }
                case "members":
                case "member":
                {
                    if (verb == "member" && Arg(0, "list") != "list")
                    {
                        throw new ArgumentException($"member: unknown '{rest[0]}' (usage: raftctl member list)");
                    }
                    var all = await client.StatusOfAllAsync(commandDeadline.Token);
                    NodeStatus? s = all.Select(a => a.Status).FirstOrDefault(x => x?.Role == "Leader") ?? all.Select(a => a.Status).FirstOrDefault(x => x != null);
                    if (s is null)
                    {
                        error.WriteLine($"error: no endpoint answered: {string.Join("; ", all.Select(a => $"{a.Endpoint}: {a.Error}"))}");
                        return 2;
                    }
                    if (json)
                    {
                        output.WriteLine(JsonSerializer.Serialize(s.Members.Select(m => new
                        {
                            id = m.Id, address = m.Address, voter = m.Voter, matchIndex = m.MatchIndex, nextIndex = m.NextIndex, state = m.ReplicationState,
                        }), Json));
                        break;
                    }
                    output.WriteLine($"{"ID",-8} {"ADDRESS",-26} {"VOTER",-6} {"MATCH",7} {"NEXT",7} STATE");
                    foreach (Member m in s.Members)
                    {
                        output.WriteLine($"{m.Id,-8} {m.Address,-26} {(m.Voter ? "yes" : "no"),-6} {m.MatchIndex,7} {m.NextIndex,7} {m.ReplicationState}");
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
                    NodeStatus s = await client.AdminOf(node).GetStatusAsync(new StatusRequest(), deadline: Deadline());
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
                    AdminReply reply = await client.AdminOf(node).TransferLeadershipAsync(new TransferLeadershipRequest { Id = successor.Id }, deadline: Deadline());
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
                    .WithUrl(hubUrl.TrimEnd('/') + Events.HubContract.Path, o =>
                    {
                        o.AccessTokenProvider = () => Task.FromResult(client.Token);
                        o.HttpMessageHandlerFactory = _ => ChannelOptions.Handler(client.CaFile);
                    })
                    .Build();
                hub.On<Events.ChangeBatch>(Events.HubContract.Changes, batch =>
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

    private static string? NullIfEmpty(string text) => text.Length == 0 ? null : text;

    private static string Redirects(RaftClient client) => client.LastRedirects.Count == 0 ? "" : $", redirected {string.Join(", ", client.LastRedirects)}";

    private static string Faults(FaultSpec f) =>
        f.Isolate ? "isolated" : f.CutPeers.Count > 0 ? $"cut {string.Join(",", f.CutPeers)}" : f.DropRate > 0 || f.MaxDelayMs > 0 ? $"drop {f.DropRate:P0} delay {f.MaxDelayMs}ms" : "-";
}
