using Raft.Tests.Node;
using static Raft.Tests.Deploy.Manifests;

namespace Raft.Tests.Deploy;

/// <summary>
/// Issue 13 item 4: raftctl installs as a .NET tool from the local package, and its verbs work against a running
/// cluster with tokens, with the exit codes scripts rely on (0 done, 1 the answer is no, 2 an error).
/// </summary>
[Trait("Speed", "Slow")]
public sealed class RaftctlToolTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string OperatorToken = "raftctl-operator-token-0123456789";

    [Fact]
    public async Task Raftctl_installs_from_its_package_and_its_verbs_work_against_a_cluster()
    {
        string folder = Directory.CreateTempSubdirectory("raft-raftctl-").FullName;
        string feed = Path.Combine(folder, "feed");
        string tools = Path.Combine(folder, "tools");
        string version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";
        await RunAsync("dotnet", Root, 0, "pack", PathOf("Raft.Cli", "Raft.Cli.csproj"), "-o", feed, $"-p:Version={version}");
        await RunAsync("dotnet", Root, 0, "tool", "install", "raftctl", "--tool-path", tools, "--add-source", feed, "--version", version);
        string raftctl = Path.Combine(tools, "raftctl");

        string tokens = Path.Combine(folder, "tokens");
        File.WriteAllLines(tokens, [$"ops operator {OperatorToken}"]);
        await using var cluster = new NodeTestCluster(3, o => o.TokensFile = tokens) { ClientToken = OperatorToken };
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string endpoints = string.Join(",", cluster.Endpoints);
        string[] Auth(params string[] args) => [.. args, "--endpoints", endpoints, "--token", OperatorToken];

        Assert.Contains("Unauthenticated", await RunAsync(raftctl, folder, 2, "put", "k", "v", "--endpoints", endpoints));
        Assert.Contains("OK", await RunAsync(raftctl, folder, 0, Auth("put", "color", "blue")));
        Assert.Equal("blue", (await RunAsync(raftctl, folder, 0, Auth("get", "color"))).Trim());
        Assert.Contains("(not found)", await RunAsync(raftctl, folder, 1, Auth("get", "nothing")));
        Assert.Contains("\"healthy\": true", await RunAsync(raftctl, folder, 0, Auth("endpoint", "health", "--json")));
        string oneDown = $"{endpoints},http://127.0.0.1:{Ports.Free()}";
        Assert.Contains("is unhealthy", await RunAsync(raftctl, folder, 1, "endpoint", "health", "--endpoints", oneDown, "--token", OperatorToken));
        Assert.Contains(leader, await RunAsync(raftctl, folder, 0, Auth("status")));

        // watch: the key's changes as they happen, then it stops after --count lines.
        Task<string> watching = RunAsync(raftctl, folder, 0, Auth("watch", "color", "--count", "2", "--interval-ms", "50"));
        await Task.Delay(1500); // the watcher's first read (blue)
        Assert.Contains("OK", await RunAsync(raftctl, folder, 0, Auth("put", "color", "green")));
        string changes = await watching.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(["blue", "green"], changes.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

        // watch --events: the node's own events; a leadership handoff makes some.
        Task<string> events = RunAsync(raftctl, folder, 0, Auth("watch", "--events", "--hub", cluster[leader].HttpUrl, "--count", "1"));
        await Task.Delay(1500);
        await RunAsync(raftctl, folder, 0, Auth("handoff", "--node", cluster[leader].GrpcUrl));
        Assert.Matches("(role|leader|term) ", await events.WaitAsync(TimeSpan.FromSeconds(60)));
    }

    private Task<string> RunAsync(string program, string directory, int expectedExit, params string[] arguments) =>
        Processes.ExpectAsync(output, expectedExit, program, directory, arguments);
}
