using System.Globalization;
using Raft.Engine.Consensus;

namespace Raft.Node.Hosting;

/// <summary>
/// A node's settings, bound from the "Raft" configuration section: appsettings.json, environment variables
/// (Raft__Id=n1) or the command line (--id n1). See <see cref="HelpText"/>.
/// </summary>
public sealed class NodeOptions
{
    public const string Section = "Raft";

    public string Id { get; set; } = "n1";

    /// <summary>The HTTP/2-only (h2c) endpoint for gRPC: clients and admin, and peers too unless <see cref="PeerUrl"/> is set.</summary>
    public string GrpcUrl { get; set; } = "http://127.0.0.1:7001";

    /// <summary>
    /// The endpoint for peer traffic only, so that a firewall or NetworkPolicy can keep it private. When set,
    /// the addresses in --members and AddServer are peer addresses, --grpc-url no longer serves peers, and this one
    /// serves nothing else. Null: peers share --grpc-url (the loopback default).
    /// </summary>
    public string? PeerUrl { get; set; }

    /// <summary>This node's certificate (PEM) for mutual TLS on --peer-url; its common name must be the node id.</summary>
    public string? PeerCertificate { get; set; }

    /// <summary>The certificate's private key (PEM).</summary>
    public string? PeerKey { get; set; }

    /// <summary>The CA certificate(s) (PEM) that peers' certificates must chain to.</summary>
    public string? PeerCa { get; set; }

    /// <summary>A file of access tokens, one "name role token" per line (roles: reader, writer, operator). Null: no client authentication.</summary>
    public string? TokensFile { get; set; }

    /// <summary>The HTTP/1.1 endpoint for the SignalR hub, /healthz and /metrics.</summary>
    public string HttpUrl { get; set; } = "http://127.0.0.1:8001";

    /// <summary>The initial members as "id=grpc-url,..." (this node included). Empty: join an existing cluster when added.</summary>
    public string Members { get; set; } = "";

    /// <summary>
    /// For a node started without <see cref="Members"/>: the ids ("n1,n2,n3") of the cluster's voters, the only servers
    /// it takes replication from until it has been added. Empty: any sender (safe only with mutual TLS between peers).
    /// </summary>
    public string Join { get; set; } = "";

    /// <summary>The ids in <see cref="Join"/>.</summary>
    public IReadOnlySet<string> JoinFrom => Join.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

    /// <summary>Where the node keeps its SQLite database; default "data/{id}".</summary>
    public string? DataDir { get; set; }

    public int TickMs { get; set; } = 10;
    public int ElectionTicks { get; set; } = 15;
    public int HeartbeatTicks { get; set; } = 5;
    public int SnapshotThreshold { get; set; } = 1000;
    public double SnapshotLogRatio { get; set; } = 1.0;
    public bool LeaseReads { get; set; }
    public int MaxCommandBytes { get; set; } = 1024 * 1024;

    /// <summary>A client session idle this long expires (by the leaders' clocks, in the log). The same on every node.</summary>
    public int SessionTimeoutSeconds { get; set; } = 3600;

    /// <summary>At most this many client sessions are kept; past it the least recently used goes. The same on every node.</summary>
    public int MaxSessions { get; set; } = 10_000;
    public bool EnableFaultInjection { get; set; }

    /// <summary>How long a client request may wait for its answer.</summary>
    public int RequestTimeoutMs { get; set; } = 5000;

    /// <summary>
    /// Where to send traces and metrics by OTLP (an OpenTelemetry Collector, Jaeger, Tempo...). Null: the standard
    /// OTEL_EXPORTER_OTLP_ENDPOINT if set, else no export (metrics are still scraped at /metrics).
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>"grpc" (port 4317) or "http" (http/protobuf, port 4318; /v1/traces and /v1/metrics are added to a bare address).</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    /// <summary>The share of writes that start a trace here (a caller's sampled trace is always followed).</summary>
    public double TraceSampleRatio { get; set; } = 1.0;

    /// <summary>"simple" (one line per event, for people) or "json" (one JSON object per line, for log collectors).</summary>
    public string LogFormat { get; set; } = "simple";

    public string DataDirectory => DataDir ?? Path.Combine("data", Id);

    /// <summary>
    /// Every setting a node takes, once: the switch, the property it sets (configuration key "Raft:{Property}"), what
    /// it takes, and its help. Parsing (<see cref="Switches"/>, <see cref="CheckSwitches"/>) and the help
    /// (<see cref="HelpText"/>, defaults read from a new instance) come from this table; a test checks that every
    /// settable property has its row.
    /// </summary>
    public static readonly IReadOnlyList<NodeSetting> Settings =
    [
        new("--id", nameof(Id), "<id>", "this member's id"),
        new("--grpc-url", nameof(GrpcUrl), "<url>", "gRPC endpoint, HTTP/2 cleartext; an https url uses TLS with Kestrel:Certificates:Default (Path, Password)"),
        new("--http-url", nameof(HttpUrl), "<url>", "SignalR hub /hubs/raft, /healthz, /readyz, /metrics"),
        new("--peer-url", nameof(PeerUrl), "<url>", "serve peer traffic here only (and nothing else here); --members and AddServer then give peer addresses (default: peers share --grpc-url)"),
        new("--peer-cert", nameof(PeerCertificate), "<pem>", "mutual TLS between peers (needs an https --peer-url): this node's certificate, whose common name is its id"),
        new("--peer-key", nameof(PeerKey), "<pem>", "the certificate's private key"),
        new("--peer-ca", nameof(PeerCa), "<pem>", "the CA certificate(s) peers' certificates must chain to"),
        new("--tokens-file", nameof(TokensFile), "<path>", "bearer tokens, one \"name role token\" per line; roles reader (get, status, hub), writer (+ put, delete, cas), operator (+ membership, transfer, snapshot, faults, message tracing) (default: no authentication)"),
        new("--members", nameof(Members), "<id=url,...>", "initial members, this one included; omit to join a cluster later (AddServer)"),
        new("--join", nameof(Join), "<id,...>", "without --members: the cluster's voters, the only servers this node takes replication from until it is added (default: any, which only mutual TLS between peers makes safe)"),
        new("--data-dir", nameof(DataDir), "<path>", "SQLite data folder (default data/<id>); existing state wins over --members"),
        new("--tick-ms", nameof(TickMs), "<n>", "length of a tick in milliseconds"),
        new("--election-ticks", nameof(ElectionTicks), "<n>", "minimum election timeout in ticks (the timeout is drawn between it and twice it)"),
        new("--heartbeat-ticks", nameof(HeartbeatTicks), "<n>", "heartbeat interval in ticks"),
        new("--snapshot-threshold", nameof(SnapshotThreshold), "<n>", "applied entries between snapshots"),
        new("--snapshot-log-ratio", nameof(SnapshotLogRatio), "<r>", "... and the log since the last snapshot must hold r times its bytes (0 counts entries only)"),
        new("--lease-reads", nameof(LeaseReads), "<true|false>", "serve linearizable reads on the leader from its lease, without a heartbeat round (assumes clock drift under 30 ms per election timeout)"),
        new("--max-command-bytes", nameof(MaxCommandBytes), "<n>", "largest accepted command"),
        new("--session-timeout-s", nameof(SessionTimeoutSeconds), "<n>", "a client session idle this long (seconds) expires; the same on every member"),
        new("--max-sessions", nameof(MaxSessions), "<n>", "client sessions kept, least recently used evicted; the same on every member"),
        new("--request-timeout-ms", nameof(RequestTimeoutMs), "<n>", "how long a client request may wait"),
        new("--enable-fault-injection", nameof(EnableFaultInjection), "<true|false>", "allow SetFaults/Heal (cut links, isolate, drop, delay)"),
        new("--otlp-endpoint", nameof(OtlpEndpoint), "<url>", "export traces and metrics by OTLP (default: OTEL_EXPORTER_OTLP_ENDPOINT, else none); a write's trace: gRPC server span, raft.write, propose, persist, replicate, apply"),
        new("--otlp-protocol", nameof(OtlpProtocol), "<grpc|http>", "OTLP over gRPC (port 4317) or http/protobuf (4318)"),
        new("--trace-sample-ratio", nameof(TraceSampleRatio), "<r>", "share of writes that start a trace here (a caller's sampled trace is always followed)"),
        new("--log-format", nameof(LogFormat), "<simple|json>", "console log lines for people, or JSON objects for collectors"),
    ];

    /// <summary>The command-line switches and the configuration keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> Switches = Settings.ToDictionary(s => s.Switch, s => $"{Section}:{s.Property}", StringComparer.Ordinal);

    /// <summary>What the web host itself takes on a command line besides configuration keys (which contain ':').</summary>
    private static readonly string[] HostSwitches = ["--urls", "--environment", "--contentRoot", "--applicationName"];

    /// <summary>
    /// Throws <see cref="FormatException"/> for a switch no setting has (a typo such as --tick 5 was ignored, and the
    /// node ran with the default), naming the nearest one. Configuration keys (--Raft:TickMs, --Kestrel:...) pass.
    /// </summary>
    public static void CheckSwitches(IEnumerable<string> args)
    {
        foreach (string arg in args.Where(a => a.StartsWith("--", StringComparison.Ordinal)))
        {
            string name = arg.Split('=', 2)[0];
            if (Switches.ContainsKey(name) || name.Contains(':', StringComparison.Ordinal) || HostSwitches.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                continue;
            }
            string? near = Client.Cli.Nearest(name, Settings.Select(s => s.Switch));
            throw new FormatException($"unknown option {name}{(near != null ? $" (did you mean {near}?)" : "")}; Raft.Node --help lists the options");
        }
    }

    /// <summary>The node's options, then the command line's verbs (one table, <see cref="Client.Cli"/>).</summary>
    public static readonly string HelpText = $$"""
        Raft.Node: one member of a Raft cluster.

        Run a member:
          Raft.Node [options]

        {{OptionsHelp()}}

        Every option can also come from appsettings.json (section "Raft") or the environment (Raft__GrpcUrl=...).

        Repair a stopped member's data folder:
          Raft.Node reset-term --data-dir <path> [--term <n>]   a cluster whose terms were driven to the limit
                                        (see reset-term --help)

        Talk to a cluster (like etcdctl): the verbs below.
        """ + "\n" + Client.Cli.Help("Raft.Node");

    /// <summary>One entry per setting: the switch and what it takes, then its help wrapped, with the default.</summary>
    private static string OptionsHelp()
    {
        const int Column = 32, Width = 112;
        var defaults = new NodeOptions();
        var lines = new List<string>();
        foreach (NodeSetting setting in Settings)
        {
            object? value = typeof(NodeOptions).GetProperty(setting.Property)!.GetValue(defaults);
            string text = setting.Help;
            if (!text.Contains("(default", StringComparison.Ordinal) && value is not (null or ""))
            {
                text += string.Create(CultureInfo.InvariantCulture, $" (default {(value is bool b ? (b ? "true" : "false") : value)})");
            }
            string head = $"  {setting.Switch} {setting.Takes}";
            string line = head.Length < Column ? head.PadRight(Column) : head + "\n" + new string(' ', Column);
            foreach (string word in text.Split(' '))
            {
                int current = line.Length - (line.LastIndexOf('\n') + 1);
                if (current + word.Length + 1 > Width && current > Column)
                {
                    line += "\n" + new string(' ', Column);
                }
                else if (current > Column)
                {
                    line += " ";
                }
                line += word;
            }
            lines.Add(line);
        }
        return string.Join("\n", lines);
    }

    /// <summary>
    /// Parses <see cref="Members"/>; throws <see cref="FormatException"/> with a clear message. A list given to start
    /// with must name this node at the port of <see cref="GrpcUrl"/> (<paramref name="checkOwnAddress"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string> ParseMembers(bool checkOwnAddress = true)
    {
        var members = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string item in Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string[] pair = item.Split('=', 2);
            if (pair.Length != 2 || !IsValidId(pair[0]) || !IsValidAddress(pair[1]))
            {
                throw new FormatException($"--members: '{item}' is not id=http://host:port");
            }
            if (!members.TryAdd(pair[0], pair[1]))
            {
                throw new FormatException($"--members names {pair[0]} twice");
            }
        }
        if (members.Values.GroupBy(a => a.TrimEnd('/'), StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } shared)
        {
            throw new FormatException($"--members gives two members the address {shared.Key}");
        }
        if (members.Count > 0 && !members.TryGetValue(Id, out string? own))
        {
            throw new FormatException($"--members must include this node ({Id})");
        }
        if (checkOwnAddress && members.TryGetValue(Id, out own) && new Uri(own).Port != new Uri(PeerAddress).Port)
        {
            // Peers would send to an address this node does not listen on: it would never hear them, nor they it.
            throw new FormatException($"--members gives {Id} the address {own}, but {PeerSwitch} {PeerAddress} listens on another port");
        }
        return members;
    }

    public void Validate()
    {
        if (!IsValidId(Id))
        {
            throw new FormatException($"--id '{Id}' is not a valid id (letters, digits, '-', '_', '.')");
        }
        foreach ((string name, string url) in new[] { ("--grpc-url", GrpcUrl), ("--http-url", HttpUrl), ("--peer-url", PeerUrl ?? GrpcUrl) })
        {
            if (!IsValidAddress(url))
            {
                throw new FormatException($"{name} '{url}' is not http://host:port");
            }
            ListenAddresses(name, url); // a host name that does not resolve is refused here, not bound to loopback
        }
        if (TickMs < 1 || MaxCommandBytes < 1 || SessionTimeoutSeconds < 1 || MaxSessions < 1)
        {
            throw new FormatException("--tick-ms, --max-command-bytes, --session-timeout-seconds and --max-sessions must be positive");
        }
        try
        {
            ToRaftOptions().Validate(); // the engine's rules for timing and snapshots are its own: checked there, once
        }
        catch (ArgumentException e)
        {
            throw new FormatException($"Raft settings (--election-ticks, --heartbeat-ticks, --snapshot-threshold, --snapshot-log-ratio, --lease-reads): {e.Message}", e);
        }
        ValidatePeerSecurity();
        ValidateTelemetry();
        if (ParseMembers().Count > 0 && JoinFrom.Count > 0)
        {
            throw new FormatException("--join is for a node that starts without --members (one that waits to be added)");
        }
        if (JoinFrom.FirstOrDefault(id => !IsValidId(id)) is { } badId)
        {
            throw new FormatException($"--join: '{badId}' is not a valid id");
        }
    }

    private void ValidateTelemetry()
    {
        if (OtlpEndpoint != null && !(Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out Uri? otlp) && otlp.Scheme is "http" or "https"))
        {
            throw new FormatException($"--otlp-endpoint '{OtlpEndpoint}' is not an http:// or https:// address");
        }
        if (OtlpProtocol is not ("grpc" or "http"))
        {
            throw new FormatException($"--otlp-protocol '{OtlpProtocol}' is neither grpc nor http");
        }
        if (!(TraceSampleRatio is >= 0 and <= 1))
        {
            throw new FormatException($"--trace-sample-ratio {TraceSampleRatio} is not between 0 and 1");
        }
        if (LogFormat is not ("simple" or "json"))
        {
            throw new FormatException($"--log-format '{LogFormat}' is neither simple nor json");
        }
    }

    /// <summary>Where peers reach this node: <see cref="PeerUrl"/>, else the shared <see cref="GrpcUrl"/>.</summary>
    public string PeerAddress => PeerUrl ?? GrpcUrl;

    /// <summary>True when peer traffic has an endpoint of its own.</summary>
    public bool SeparatePeerPlane => PeerUrl != null;

    /// <summary>True when peers must present certificates (mutual TLS on --peer-url).</summary>
    public bool PeerTls => PeerCa != null;

    private string PeerSwitch => SeparatePeerPlane ? "--peer-url" : "--grpc-url";

    private void ValidatePeerSecurity()
    {
        if (PeerUrl != null)
        {
            int peerPort = new Uri(PeerUrl).Port;
            if (peerPort == new Uri(GrpcUrl).Port || peerPort == new Uri(HttpUrl).Port)
            {
                throw new FormatException($"--peer-url {PeerUrl} must have a port of its own (not that of --grpc-url or --http-url)");
            }
        }
        string?[] tls = [PeerCertificate, PeerKey, PeerCa];
        if (tls.Any(f => f != null) && tls.Any(f => f == null))
        {
            throw new FormatException("mutual TLS needs all three of --peer-cert, --peer-key and --peer-ca");
        }
        if (PeerTls && (PeerUrl is null || !PeerUrl.StartsWith("https://", StringComparison.OrdinalIgnoreCase)))
        {
            throw new FormatException("mutual TLS between peers needs an https --peer-url (peers then give each other https addresses)");
        }
        foreach ((string name, string? file) in new[] { ("--peer-cert", PeerCertificate), ("--peer-key", PeerKey), ("--peer-ca", PeerCa), ("--tokens-file", TokensFile) })
        {
            if (file != null && !File.Exists(file))
            {
                throw new FormatException($"{name}: the file {file} does not exist");
            }
        }
    }

    /// <summary>The engine's options from these settings: the one place they are carried over.</summary>
    public RaftOptions ToRaftOptions() => new()
    {
        ElectionTicks = ElectionTicks,
        HeartbeatTicks = HeartbeatTicks,
        SnapshotThreshold = SnapshotThreshold,
        SnapshotLogRatio = SnapshotLogRatio,
        LeaseReads = LeaseReads,
        JoinFrom = JoinFrom,
    };

    /// <summary>
    /// Where a URL's host says to listen: null for "any address" (*, +, 0.0.0.0) and "localhost" (both loopbacks),
    /// the address itself for an IP, and what a host name resolves to. Throws <see cref="FormatException"/> when it
    /// resolves to nothing.
    /// </summary>
    public static System.Net.IPAddress[]? ListenAddresses(string name, string url)
    {
        string host = new Uri(url).Host;
        if (host is "localhost" or "*" or "+" or "0.0.0.0")
        {
            return null;
        }
        if (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out System.Net.IPAddress? ip))
        {
            return [ip];
        }
        try
        {
            System.Net.IPAddress[] resolved = System.Net.Dns.GetHostAddresses(host);
            return resolved.Length > 0 ? resolved : throw new FormatException($"{name}: the host '{host}' resolves to no address");
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new FormatException($"{name}: cannot resolve the host '{host}' ({e.Message}); give an IP address, localhost or 0.0.0.0");
        }
    }

    public static bool IsValidId(string id) =>
        id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    public static bool IsValidAddress(string address) =>
        Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https" && uri.Port > 0
        && !address.Contains(',', StringComparison.Ordinal) && !address.Contains(';', StringComparison.Ordinal) && !address.Contains('=', StringComparison.Ordinal);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Id} grpc {GrpcUrl}{(SeparatePeerPlane ? $" peer {PeerUrl}{(PeerTls ? " (mutual TLS)" : "")}" : "")} http {HttpUrl} data {DataDirectory}");
}

/// <summary>One row of <see cref="NodeOptions.Settings"/>.</summary>
/// <param name="Switch">The command-line switch ("--tick-ms").</param>
/// <param name="Property">The <see cref="NodeOptions"/> property it sets.</param>
/// <param name="Takes">What it takes, for the help ("&lt;n&gt;").</param>
/// <param name="Help">What it does; "(default ...)" is added from a new <see cref="NodeOptions"/> unless given.</param>
public sealed record NodeSetting(string Switch, string Property, string Takes, string Help);
