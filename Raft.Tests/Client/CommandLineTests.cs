using System.Text.Json;
using Raft.Client;
using Raft.Tests.Node;

namespace Raft.Tests.Client;

/// <summary>The command line's verbs against a running cluster, as an operator's script (or a preStop hook) runs them.</summary>
public sealed class CommandLineTests
{
    [Fact]
    public async Task Handoff_moves_leadership_off_the_node_if_it_leads_and_does_nothing_otherwise()
    {
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        var output = new StringWriter();
        var error = new StringWriter();

        Assert.Equal(0, await Cli.RunAsync(["handoff", "--node", cluster[follower].GrpcUrl], output, error));
        Assert.Contains($"{follower} does not lead: nothing to hand off", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(leader, await cluster.WaitForLeaderAsync());

        Assert.True(await Cli.RunAsync(["handoff", "--node", cluster[leader].GrpcUrl, "--json"], output, error) == 0, error.ToString());
        Assert.Contains("\"handedOff\": true", output.ToString(), StringComparison.Ordinal);
        string successor = await cluster.WaitForLeaderAsync();
        Assert.NotEqual(leader, successor);
    }
    private static async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await Cli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task A_mistyped_flag_or_a_missing_argument_is_one_line_that_says_what_is_wrong()
    {
        // Before, the typo --endpoint was ignored (the default endpoint was tried for 15 s, and the error named no
        // endpoint), and a missing argument printed the node's 62-line help.
        var typo = await RunAsync("put", "k", "v", "--endpoint", "http://127.0.0.1:1");
        Assert.Equal(2, typo.Code);
        Assert.Equal("error: put takes no flag --endpoint (did you mean --endpoints?); raftctl put --help lists its flags", Assert.Single(Lines(typo.Error)));

        var missing = await RunAsync("put", "k");
        Assert.Equal(2, missing.Code);
        Assert.Equal("error: put: missing <value> (usage: raftctl put <key> <value>)", Assert.Single(Lines(missing.Error)));

        var help = await RunAsync("put", "--help");
        Assert.Equal(0, help.Code);
        Assert.StartsWith("usage: raftctl put <key> <value>", help.Output, StringComparison.Ordinal);
        Assert.Contains("--command-timeout", help.Output, StringComparison.Ordinal);

        var format = await RunAsync("status", "-w", "yaml");
        Assert.Equal(2, format.Code);
        Assert.Contains("one of simple, table, json", format.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_cluster_fails_within_the_command_timeout_naming_the_endpoints_it_asked()
    {
        string nobody = $"http://127.0.0.1:{Ports.Free()}";
        var started = System.Diagnostics.Stopwatch.StartNew();
        var put = await RunAsync("put", "k", "v", "--endpoints", nobody, "--command-timeout", "1s", "--dial-timeout", "200ms");
        Assert.Equal(2, put.Code);
        Assert.Contains($"asked {nobody}", put.Error, StringComparison.Ordinal);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"took {started.Elapsed}"); // the default was 15 s

        var status = await RunAsync("status", "--endpoints", nobody, "--command-timeout", "1s");
        Assert.Equal(1, status.Code); // before: 0, with the endpoint listed as unreachable
        Assert.Contains($"error: {nobody} did not answer", status.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_and_member_list_as_json_are_typed_objects()
    {
        // Before, each node's status was a JSON string inside the JSON, with numbers as strings, and members repeated it.
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string endpoints = string.Join(",", cluster.Endpoints);

        var status = await RunAsync("status", "--endpoints", endpoints, "-w", "json");
        Assert.True(status.Code == 0, status.Error);
        JsonElement[] nodes = [.. JsonDocument.Parse(status.Output).RootElement.EnumerateArray()];
        Assert.Equal(3, nodes.Length);
        Assert.All(nodes, n =>
        {
            Assert.Equal(JsonValueKind.Number, n.GetProperty("term").ValueKind);
            Assert.Equal(JsonValueKind.Number, n.GetProperty("commitIndex").ValueKind);
            Assert.Equal(leader, n.GetProperty("leader").GetString());
        });

        var members = await RunAsync("member", "list", "--endpoints", endpoints, "--json");
        Assert.True(members.Code == 0, members.Error);
        JsonElement[] listed = [.. JsonDocument.Parse(members.Output).RootElement.EnumerateArray()];
        Assert.Equal(["n1", "n2", "n3"], listed.Select(m => m.GetProperty("id").GetString()).Order());
        Assert.All(listed, m => Assert.True(m.GetProperty("voter").GetBoolean()));
    }
}
