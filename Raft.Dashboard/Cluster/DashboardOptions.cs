namespace Raft.Dashboard.Cluster;

/// <summary>
/// The dashboard's settings (section "Dashboard", or --nodes, --data-dir, --fresh, --teaching on the command line).
/// With no <see cref="Nodes"/> it runs its own cluster on loopback; with them it attaches to an existing one.
/// </summary>
public sealed class DashboardOptions
{
    public const string Section = "Dashboard";

    /// <summary>Nodes to attach to, as "id=grpc-url|http-url,..." (the http url is where the node's hub is).</summary>
    public string Nodes { get; set; } = "";

    /// <summary>Where the embedded cluster keeps its SQLite files and layout.</summary>
    public string DataDir { get; set; } = Path.Combine("data", "embedded-cluster");

    /// <summary>Start the embedded cluster from scratch instead of recovering it from <see cref="DataDir"/>.</summary>
    public bool Fresh { get; set; }

    /// <summary>Ten times slower elections and heartbeats, so that they can be followed by eye.</summary>
    public bool Teaching { get; set; }

    public int Size { get; set; } = 3;

    /// <summary>
    /// The embedded nodes' first port: node k listens for gRPC on base + 2(k-1) and for HTTP on the port after it.
    /// 0 (the default) picks free ports. Used when the cluster is made and for servers added later; a recovered
    /// cluster keeps the ports recorded in its data folder.
    /// </summary>
    public int NodePorts { get; set; }

    /// <summary>The highest node number that fits in the port range above <see cref="NodePorts"/>.</summary>
    public int MaxNodeNumber => NodePorts == 0 ? int.MaxValue : (65535 - NodePorts + 1) / 2;

    /// <summary>Throws <see cref="FormatException"/> naming the setting that cannot work.</summary>
    public void Validate()
    {
        if (Size is < 1 or > 9)
        {
            throw new FormatException($"--size: {Size} nodes; the embedded cluster has 1 to 9");
        }
        if (NodePorts != 0 && (NodePorts < 1024 || MaxNodeNumber < Size))
        {
            throw new FormatException($"--node-ports: {NodePorts} is not a base port from 1024 to {65535 - (2 * Size) + 1} (node k uses base + 2(k-1) for gRPC and the next port for HTTP)");
        }
    }

    /// <summary>Users who may sign in ("name role password-hash" per line); with it (or <see cref="Oidc"/>) the dashboard has a login.</summary>
    public string UsersFile { get; set; } = "";

    /// <summary>Single sign-on with an OpenID Connect provider (section Dashboard:Oidc).</summary>
    public OidcOptions Oidc { get; set; } = new();

    /// <summary>
    /// Where every user action is appended, one JSON line each. By default data/dashboard-audit.jsonl, or for the embedded
    /// demo audit.jsonl in its data folder (so --fresh starts its trail over with its cluster).
    /// </summary>
    public string AuditFile { get; set; } = "";

    public string AuditPath => Path.GetFullPath(AuditFile is { Length: > 0 } file ? file
        : Embedded ? Path.Combine(DataDir, "audit.jsonl") : Path.Combine("data", "dashboard-audit.jsonl"));

    /// <summary>The bearer token the dashboard shows the nodes (their tokens file gives it a role).</summary>
    public string NodeToken { get; set; } = "";

    /// <summary>The CA (PEM) that signed the nodes' TLS certificates, for https node addresses.</summary>
    public string NodeCa { get; set; } = "";

    public bool LoginRequired => !string.IsNullOrWhiteSpace(UsersFile) || Oidc.Enabled;

    public NodeCredentials Credentials => new(string.IsNullOrEmpty(NodeToken) ? null : NodeToken, string.IsNullOrEmpty(NodeCa) ? null : NodeCa);

    /// <summary>The embedded nodes' tick: 100 ms in teaching mode (elections after 1.5-3 s), else 10 ms.</summary>
    public int TickMs => Teaching ? 100 : 10;

    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--nodes"] = "Dashboard:Nodes",
        ["--data-dir"] = "Dashboard:DataDir",
        ["--fresh"] = "Dashboard:Fresh",
        ["--teaching"] = "Dashboard:Teaching",
        ["--size"] = "Dashboard:Size",
        ["--node-ports"] = "Dashboard:NodePorts",
        ["--users-file"] = "Dashboard:UsersFile",
        ["--audit-file"] = "Dashboard:AuditFile",
        ["--node-token"] = "Dashboard:NodeToken",
        ["--node-ca"] = "Dashboard:NodeCa",
    };

    /// <summary>The switches that are on or off: given alone they mean true.</summary>
    private static readonly string[] Flags = ["--fresh", "--teaching"];

    /// <summary>
    /// The command line with every flag given a value: <c>--fresh</c> alone (at the end or before another switch)
    /// means <c>--fresh true</c>. Throws <see cref="FormatException"/> for a flag whose value is not true or false.
    /// </summary>
    public static string[] NormalizeArguments(IReadOnlyList<string> args)
    {
        var normalized = new List<string>(args.Count + Flags.Length);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            normalized.Add(arg);
            if (!Flags.Contains(arg, StringComparer.Ordinal))
            {
                continue;
            }
            if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                normalized.Add("true");
            }
            else if (!bool.TryParse(args[i + 1], out _))
            {
                throw new FormatException($"{arg} takes no value, or true or false, not '{args[i + 1]}'");
            }
        }
        return [.. normalized];
    }

    /// <summary>One line for the console: which cluster and which modes.</summary>
    public string Describe(bool recovered = false) => Embedded
        ? $"embedded cluster of {Size} nodes in {Path.GetFullPath(DataDir)}" +
            $" ({(Fresh ? "fresh: started over" : recovered ? "recovered from its data folder" : "new")}, {(Teaching ? "teaching: 10x slower timers" : "normal timers")})"
        : $"attached to {string.Join(", ", ParseNodes().Select(n => n.Id))}";

    /// <summary>One line for the console: who may do what.</summary>
    public string DescribeAccess() => LoginRequired
        ? $"login required ({string.Join(" or ", new[] { string.IsNullOrWhiteSpace(UsersFile) ? null : $"users in {UsersFile}", Oidc.Enabled ? $"single sign-on at {Oidc.Authority}" : null }.OfType<string>())}); actions audited to {AuditPath}"
        : $"no login: anyone who reaches this address may operate the cluster{(Embedded ? ", and fault injection is on (fine on loopback; give --users-file before exposing it)" : "")}; actions audited to {AuditPath}";

    public bool Embedded => string.IsNullOrWhiteSpace(Nodes);

    /// <summary>Parses <see cref="Nodes"/>; throws <see cref="FormatException"/> with a clear message.</summary>
    public IReadOnlyList<NodeEndpoint> ParseNodes() =>
        Nodes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(item =>
        {
            string[] idAndUrls = item.Split('=', 2);
            string[] urls = idAndUrls.Length == 2 ? idAndUrls[1].Split('|') : [];
            if (urls.Length != 2 || !urls.All(u => Uri.TryCreate(u, UriKind.Absolute, out _)))
            {
                throw new FormatException($"--nodes: '{item}' is not id=grpc-url|http-url");
            }
            return new NodeEndpoint(idAndUrls[0], urls[0], urls[1]);
        }).ToList();
}

/// <summary>
/// Sign-in with an OpenID Connect provider: with <see cref="Authority"/> and <see cref="ClientId"/> set, the login page
/// offers it. A user is an operator when the claim <see cref="RoleClaim"/> holds <see cref="OperatorValue"/>, else a viewer.
/// </summary>
public sealed class OidcOptions
{
    public string Authority { get; set; } = "";

    public string ClientId { get; set; } = "";

    public string ClientSecret { get; set; } = "";

    public string RoleClaim { get; set; } = "roles";

    public string OperatorValue { get; set; } = "raft-operator";

    public bool Enabled => !string.IsNullOrWhiteSpace(Authority) && !string.IsNullOrWhiteSpace(ClientId);
}

/// <summary>Where one node is: its gRPC endpoint (clients, admin) and its HTTP endpoint (the event hub).</summary>
public sealed record NodeEndpoint(string Id, string GrpcUrl, string HttpUrl);
