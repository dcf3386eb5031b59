using System.Reflection;
using Raft.Dashboard.Cluster;
using Raft.Node.Hosting;
using static Raft.Tests.Deploy.Manifests;

namespace Raft.Tests.Deploy;

/// <summary>
/// docker-compose.yml against the code (CI also runs docker-compose config, which knows compose but not our settings):
/// every env name is a setting, peers are on their own unpublished port with mutual TLS, published ports bind
/// RAFT_PUBLISH_ADDRESS, and the dashboard starts after the nodes are healthy.
/// </summary>
public sealed class ComposeFileTests
{
    private static readonly Dictionary<object, object> Compose = Load(PathOf("docker-compose.yml"))[0];

    [Fact]
    public void Every_setting_is_real_peers_are_private_and_published_ports_bind_the_chosen_address()
    {
        var nodeSettings = Settings(typeof(NodeOptions));
        var dashboardSettings = Settings(typeof(DashboardOptions));
        Dictionary<object, object> services = Map(Compose, "services");
        foreach (string id in new[] { "n1", "n2", "n3" })
        {
            // The anchors are merged by YAML: a node's environment is the shared one plus its own.
            var env = Map(services[id], "environment").ToDictionary(e => e.Key.ToString()!, e => e.Value?.ToString());
            foreach (string name in env.Keys)
            {
                Assert.True(name.StartsWith("Raft__", StringComparison.Ordinal) && nodeSettings.Contains(name["Raft__".Length..]), $"{id}: {name} is not a NodeOptions setting");
            }
            Assert.Equal(id, env["Raft__Id"]);
            int peerPort = new Uri(env["Raft__PeerUrl"]!).Port;
            Assert.StartsWith("https://", env["Raft__PeerUrl"], StringComparison.Ordinal);
            Assert.Contains($"{id}=https://{id}:{peerPort}", env["Raft__Members"], StringComparison.Ordinal);
            Assert.Equal($"/run/secrets/{id}-cert", env["Raft__PeerCertificate"]);
            Assert.Contains($"{id}-cert", List(services[id], "secrets").Select(s => s.ToString()));
            Assert.NotNull(env["Raft__TokensFile"]);
            Assert.DoesNotContain("Raft__EnableFaultInjection", env.Keys);

            List<string> ports = List(services[id], "ports").Select(p => p.ToString()!).ToList();
            Assert.All(ports, p => Assert.StartsWith("${RAFT_PUBLISH_ADDRESS:-127.0.0.1}:", p, StringComparison.Ordinal));
            Assert.DoesNotContain(ports, p => p.EndsWith($":{peerPort}", StringComparison.Ordinal));
        }
        var dashboard = Map(services["dashboard"], "environment").ToDictionary(e => e.Key.ToString()!, e => e.Value?.ToString());
        foreach (string name in dashboard.Keys)
        {
            Assert.True(name.StartsWith("Dashboard__", StringComparison.Ordinal) && dashboardSettings.Contains(name["Dashboard__".Length..]), $"dashboard: {name} is not a DashboardOptions setting");
        }
        Assert.Equal(["n1", "n2", "n3"], new DashboardOptions { Nodes = dashboard["Dashboard__Nodes"]! }.ParseNodes().Select(n => n.Id));
        Assert.All(Map(services["dashboard"], "depends_on"), d => Assert.Equal("service_healthy", Text(d.Value, "condition")));
        Assert.All(List(services["dashboard"], "ports"), p => Assert.StartsWith("${RAFT_PUBLISH_ADDRESS:-127.0.0.1}:", p.ToString(), StringComparison.Ordinal));

        // Every secret a service names is defined, from the folder make-secrets.sh writes.
        Dictionary<object, object> secrets = Map(Compose, "secrets");
        foreach (object secret in services.Values.SelectMany(s => List(s, "secrets")))
        {
            Assert.StartsWith("./deploy/compose/secrets/", Text(secrets[secret], "file"), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Each_image_is_built_from_every_file_its_projects_need_and_runs_as_a_user()
    {
        string[] shared = Directory.GetFiles(Root, "Directory.*.props").Select(Path.GetFileName).OfType<string>().ToArray();
        foreach ((string dockerfile, string[] projects) in new[]
        {
            ("Raft.Node/Dockerfile", new[] { "Raft.Engine.Core", "Raft.Engine", "Raft.Node" }),
            ("Raft.Dashboard/Dockerfile", new[] { "Raft.Engine.Core", "Raft.Engine", "Raft.Node", "Raft.Dashboard" }),
        })
        {
            string text = File.ReadAllText(PathOf(dockerfile));
            Assert.All(shared, props => Assert.Contains(props, text, StringComparison.Ordinal)); // an import the build cannot find fails only in docker
            Assert.All(projects, project => Assert.Contains($"COPY {project}/ {project}/", text, StringComparison.Ordinal));
            Assert.Contains("COPY protos/ protos/", text, StringComparison.Ordinal);
            Assert.Contains("\nUSER app\n", text.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        }
        string ignored = File.ReadAllText(PathOf(".dockerignore"));
        Assert.All(new[] { "**/bin/", "**/obj/", ".env", "deploy/compose/secrets/" }, pattern => Assert.Contains(pattern, ignored, StringComparison.Ordinal));
    }

    private static HashSet<string> Settings(Type options) =>
        options.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
}
