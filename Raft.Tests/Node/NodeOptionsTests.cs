using Raft.Node.Hosting;

namespace Raft.Tests.Node;

/// <summary>Settings a node must refuse with a clear message rather than start with and never work.</summary>
public sealed class NodeOptionsTests
{
    private static NodeOptions Options(string members, string grpcUrl = "http://127.0.0.1:7001") =>
        new() { Id = "n1", GrpcUrl = grpcUrl, HttpUrl = "http://127.0.0.1:8001", Members = members };

    [Theory]
    [InlineData("n1=http://127.0.0.1:7001;n2=http://127.0.0.1:7002", "is not id=http://host:port")]
    [InlineData("n1 http://127.0.0.1:7001", "is not id=http://host:port")]
    [InlineData("n1=http://127.0.0.1:7001,n1=http://127.0.0.1:7002", "names n1 twice")]
    [InlineData("n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7001", "two members the address")]
    [InlineData("n2=http://127.0.0.1:7002,n3=http://127.0.0.1:7003", "must include this node")]
    [InlineData("n1=http://127.0.0.1:7005,n2=http://127.0.0.1:7002", "listens on another port")]
    public void A_malformed_member_list_is_refused_with_what_is_wrong(string members, string problem)
    {
        var refused = Assert.Throws<FormatException>(() => Options(members).Validate());
        Assert.Contains(problem, refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--otlp-endpoint", "collector:4317", "is not an http:// or https:// address")]
    [InlineData("--otlp-protocol", "udp", "is neither grpc nor http")]
    [InlineData("--trace-sample-ratio", "1.5", "is not between 0 and 1")]
    [InlineData("--log-format", "xml", "is neither simple nor json")]
    public void Telemetry_settings_that_would_export_nothing_or_log_nothing_readable_are_refused(string option, string value, string problem)
    {
        NodeOptions options = Options("");
        switch (option)
        {
            case "--otlp-endpoint": options.OtlpEndpoint = value; break;
            case "--otlp-protocol": options.OtlpProtocol = value; break;
            case "--trace-sample-ratio": options.TraceSampleRatio = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture); break;
            default: options.LogFormat = value; break;
        }
        var refused = Assert.Throws<FormatException>(options.Validate);
        Assert.Contains($"{option} ", refused.Message, StringComparison.Ordinal);
        Assert.Contains(problem, refused.Message, StringComparison.Ordinal);
        Assert.True(NodeOptions.Switches.ContainsKey(option), $"{option} is not a command-line switch");
    }

    [Fact]
    public void A_host_name_that_does_not_resolve_is_refused_instead_of_binding_loopback()
    {
        var refused = Assert.Throws<FormatException>(() => Options("", "http://no-such-host.invalid:7001").Validate());
        Assert.Contains("cannot resolve the host 'no-such-host.invalid'", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Addresses_to_listen_on_follow_the_url()
    {
        Assert.Null(NodeOptions.ListenAddresses("--grpc-url", "http://0.0.0.0:7001"));
        Assert.Null(NodeOptions.ListenAddresses("--grpc-url", "http://localhost:7001"));
        Assert.Equal([System.Net.IPAddress.Parse("127.0.0.2")], NodeOptions.ListenAddresses("--grpc-url", "http://127.0.0.2:7001"));
        Options("n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002").Validate(); // and a good list passes
    }

    [Theory]
    [InlineData(5, 5, "ElectionTicks must be greater than HeartbeatTicks")]
    [InlineData(15, 0, "HeartbeatTicks must be at least 1")]
    public void Raft_timing_is_checked_by_the_engines_own_rule_and_named_as_flags(int election, int heartbeat, string problem)
    {
        NodeOptions options = Options("");
        options.ElectionTicks = election;
        options.HeartbeatTicks = heartbeat;
        var refused = Assert.Throws<FormatException>(options.Validate);
        Assert.Contains(problem, refused.Message, StringComparison.Ordinal);
        Assert.Contains("--election-ticks", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_setting_has_one_switch_and_its_help_says_its_default()
    {
        // One table drives the switches and the help: a setting added without its row would be settable only by
        // configuration, and missing from --help.
        var settable = typeof(NodeOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).Order().ToList();
        Assert.Equal(settable, NodeOptions.Settings.Select(s => s.Property).Order());
        Assert.Equal(NodeOptions.Settings.Count, NodeOptions.Settings.Select(s => s.Switch).Distinct().Count());
        Assert.Contains("--tick-ms <n>                 length of a tick in milliseconds (default 10)", NodeOptions.HelpText, StringComparison.Ordinal);
        Assert.Contains("(default false)", NodeOptions.HelpText.Split('\n').SkipWhile(l => !l.Contains("--lease-reads", StringComparison.Ordinal)).Take(2).Last(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--tick", "unknown option --tick (did you mean --tick-ms?)")]
    [InlineData("--election-tick", "unknown option --election-tick (did you mean --election-ticks?)")]
    [InlineData("--memebers", "unknown option --memebers;")]
    public void A_mistyped_option_is_refused_naming_the_nearest_instead_of_ignored(string option, string message)
    {
        // Before, --tick 5 was taken as the configuration key "tick", and the node ran with a 10 ms tick.
        var refused = Assert.Throws<FormatException>(() => NodeOptions.CheckSwitches(["--id", "n1", option, "5"]));
        Assert.StartsWith(message, refused.Message, StringComparison.Ordinal);
        NodeOptions.CheckSwitches(["--tick-ms=5", "--Raft:ElectionTicks", "20", "--urls", "http://127.0.0.1:1", "--Kestrel:Certificates:Default:Path", "x.pfx"]);
    }
}
