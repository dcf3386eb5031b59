using System.Text.Json;
using System.Text.RegularExpressions;
using Grpc.Core;
using Raft.Client;
using Raft.Protocol;
using Raft.Tests.Node;
using static Raft.Tests.Deploy.Manifests;

namespace Raft.Tests.Deploy;

/// <summary>The Grafana dashboard in deploy/ asks only for what a real node's /metrics serves, with the labels it has.</summary>
public sealed partial class GrafanaDashboardTests
{
    private const string OperatorToken = "operator-token-0123456789";

    [GeneratedRegex(@"\braft_[a-z_]+\b")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"\{\{(\w+)\}\}")]
    private static partial Regex LegendLabel();

    [Fact]
    public async Task Every_query_of_the_dashboard_names_metrics_and_labels_that_a_running_cluster_serves()
    {
        using JsonDocument dashboard = JsonDocument.Parse(File.ReadAllText(PathOf("deploy", "grafana", "raft-cluster.json")));
        JsonElement[] panels = [.. dashboard.RootElement.GetProperty("panels").EnumerateArray()];
        Assert.Equal(panels.Length, panels.Select(p => p.GetProperty("id").GetInt32()).Distinct().Count());
        var targets = panels.SelectMany(p => p.GetProperty("targets").EnumerateArray()
            .Select(t => (Panel: p.GetProperty("title").GetString()!, Expr: t.GetProperty("expr").GetString()!, Legend: t.GetProperty("legendFormat").GetString()!)))
            .ToList();
        Assert.True(targets.Count >= 14);

        // A cluster that has done what each panel shows: an election, writes, a snapshot, peer traffic, a refusal.
        string folder = Directory.CreateTempSubdirectory("raft-grafana-").FullName;
        string tokens = Path.Combine(folder, "tokens");
        File.WriteAllLines(tokens, [$"ops operator {OperatorToken}"]);
        await using var cluster = new NodeTestCluster(3, o => o.TokensFile = tokens) { ClientToken = OperatorToken };
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using (var anonymous = new RaftClient([cluster[leader].GrpcUrl]))
        {
            Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() => anonymous.PutAsync("k", "v"))).StatusCode);
        }
        using var client = new RaftClient([cluster[leader].GrpcUrl]) { Token = OperatorToken };
        for (int i = 0; i < 5; i++)
        {
            await client.PutAsync($"k{i}", "v");
        }
        await cluster.Admin(leader).TakeSnapshotAsync(new TakeSnapshotRequest());

        using var http = new HttpClient();
        string[] scraped = (await http.GetStringAsync($"{cluster[leader].HttpUrl}/metrics"))
            .Split('\n').Where(l => l.StartsWith("raft_", StringComparison.Ordinal)).ToArray();

        foreach ((string panel, string expr, string legend) in targets)
        {
            string[] names = [.. MetricName().Matches(expr).Select(m => m.Value).Distinct()];
            Assert.True(names.Length > 0, $"panel '{panel}' queries no raft_ metric: {expr}");
            foreach (string name in names)
            {
                string[] series = [.. scraped.Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal))];
                Assert.True(series.Length > 0, $"panel '{panel}' asks for {name}, which the leader's /metrics does not serve");
                // instance and job are added by Prometheus when it scrapes; every other label must be the node's own.
                foreach (string label in LegendLabel().Matches(legend).Select(m => m.Groups[1].Value).Where(l => l is not ("instance" or "job")))
                {
                    Assert.True(series.Any(l => l.Contains($"{label}=\"", StringComparison.Ordinal)), $"panel '{panel}': {name} has no label {label}");
                }
            }
        }
        Directory.Delete(folder, recursive: true);
    }
}
