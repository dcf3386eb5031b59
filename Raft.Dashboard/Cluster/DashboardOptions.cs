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

    /// <summary>The embedded nodes' tick: 100 ms in teaching mode (elections after 1.5-3 s), else 10 ms.</summary>
    public int TickMs => Teaching ? 100 : 10;

    public static readonly IReadOnlyDictionary<string, string> Switches = new Dictionary<string, string>
    {
        ["--nodes"] = "Dashboard:Nodes",
        ["--data-dir"] = "Dashboard:DataDir",
        ["--fresh"] = "Dashboard:Fresh",
        ["--teaching"] = "Dashboard:Teaching",
        ["--size"] = "Dashboard:Size",
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
    public string Describe() => Embedded
        ? $"embedded cluster of {Size} nodes in {Path.GetFullPath(DataDir)}" +
            $" ({(Fresh ? "fresh: started over" : "recovered from its data folder")}, {(Teaching ? "teaching: 10x slower timers" : "normal timers")})"
        : $"attached to {string.Join(", ", ParseNodes().Select(n => n.Id))}";

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

/// <summary>Where one node is: its gRPC endpoint (clients, admin) and its HTTP endpoint (the event hub).</summary>
public sealed record NodeEndpoint(string Id, string GrpcUrl, string HttpUrl);
