using Raft.Tests.Node;
using static Raft.Tests.Deploy.Manifests;

namespace Raft.Tests.Deploy;

/// <summary>
/// The nodes' healthcheck in docker-compose.yml, run as Docker runs it (CMD-SHELL: /bin/sh -c; CMD: the program),
/// against a real node; the dashboard only starts once it passes. The image's /bin/sh is dash (Ubuntu 24.04), as
/// this machine's is.
/// </summary>
public sealed class ComposeHealthcheckTests
{
    private static (string Program, string[] Arguments) Healthcheck(int httpPort)
    {
        Dictionary<object, object> node = Map(Load(PathOf("docker-compose.yml"))[0], "services.n1");
        string[] test = [.. List(node, "healthcheck.test").Select(t => t.ToString()!.Replace("8001", httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))];
        Assert.Contains("http://0.0.0.0:8001", Text(node, "environment.Raft__HttpUrl"), StringComparison.Ordinal); // the port it probes
        return test[0] switch
        {
            "CMD-SHELL" => ("/bin/sh", ["-c", test[1]]),
            "CMD" => (test[1], test[2..]),
            _ => throw new InvalidOperationException($"healthcheck test {test[0]}"),
        };
    }

    [Fact]
    public async Task The_nodes_healthcheck_passes_on_a_node_that_serves_and_fails_where_none_listens_or_none_is_ready()
    {
        // Two of three: not ready until they elect a leader; the third never starts.
        await using var cluster = new NodeTestCluster(3);
        await cluster.StartAsync("n1");
        int port = new Uri(cluster["n1"].HttpUrl).Port;
        (string program, string[] arguments) = Healthcheck(port);

        (int alone, string aloneOutput) = await Processes.RunAsync(program, cluster.Folder, arguments);
        Assert.True(alone != 0, $"a node without a leader was reported healthy: {aloneOutput}");

        await cluster.StartAsync("n2");
        await cluster.WaitForLeaderAsync();
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(cluster.Member("n1").NotReadyReason() is null), what: "n1 ready");
        (int ready, string readyOutput) = await Processes.RunAsync(program, cluster.Folder, arguments);
        Assert.True(ready == 0, $"the healthcheck failed on a ready node ({ready}): {readyOutput}");

        (string deadProgram, string[] deadArguments) = Healthcheck(Ports.Free());
        (int dead, _) = await Processes.RunAsync(deadProgram, cluster.Folder, deadArguments);
        Assert.NotEqual(0, dead);
    }
}
