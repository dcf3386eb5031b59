using System.Reflection;
using Raft.Dashboard.Access;
using Raft.Dashboard.Cluster;
using Raft.Client;
using Raft.Node.Hosting;
using Raft.Tests.Security;
using static Raft.Tests.Deploy.Manifests;

namespace Raft.Tests.Deploy;

/// <summary>
/// Issue 13 item 1: deploy/kubernetes cannot drift from the code. Every env name is a real setting, every port and
/// address agrees with the container's ports and the peer Service, the node settings pass the node's own validation,
/// the probes and the preStop verb exist, and the selectors select the pods. (kubectl's client dry run needs an API
/// server, which CI does not have; this reads the files itself.)
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly string Folder = PathOf("deploy", "kubernetes");

    private static Dictionary<object, object> Object(string kind, string? name = null) =>
        Directory.GetFiles(Folder, "*.yaml").Where(f => Path.GetFileName(f) != "kustomization.yaml").SelectMany(Load)
            .Single(d => Text(d, "kind") == kind && (name is null || Text(d, "metadata.name") == name));

    [Fact]
    public void The_kustomization_lists_every_manifest_and_only_those()
    {
        var listed = List(Load(Path.Combine(Folder, "kustomization.yaml"))[0], "resources").Select(r => r.ToString()!).Order().ToList();
        var present = Directory.GetFiles(Folder, "*.yaml").Select(f => Path.GetFileName(f)).Where(f => f != "kustomization.yaml").Order().ToList();
        Assert.Equal(present, listed);
    }

    [Fact]
    public void The_statefulsets_nodes_are_configured_as_the_node_understands_it()
    {
        Dictionary<object, object> set = Object("StatefulSet");
        Dictionary<object, object> pod = Map(set, "spec.template.spec");
        object container = Assert.Single(List(pod, "containers"));
        Dictionary<string, string?> env = Env(container);
        Dictionary<string, int> ports = List(container, "ports").ToDictionary(p => Text(p, "name"), p => int.Parse(Text(p, "containerPort"), System.Globalization.CultureInfo.InvariantCulture));
        int replicas = int.Parse(Text(set, "spec.replicas"), System.Globalization.CultureInfo.InvariantCulture);

        // Every Raft__ name is a setting (configuration binding ignores case, and ignores names it does not know: a typo would be silent).
        var settings = typeof(NodeOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (string name in env.Keys.Where(n => n.StartsWith("Raft__", StringComparison.Ordinal)))
        {
            Assert.True(settings.Contains(name["Raft__".Length..]), $"{name} is not a NodeOptions setting");
        }
        // The start script's variables are set, and the initial size is the replica count.
        string script = Assert.Single(List(container, "args")).ToString()!;
        foreach (string variable in new[] { "POD_NAME", "RAFT_INITIAL_SIZE", "RAFT_INITIAL_MEMBERS" })
        {
            Assert.Contains("$" + (variable == "POD_NAME" ? "{POD_NAME" : variable), script, StringComparison.Ordinal);
            Assert.True(env.ContainsKey(variable), $"{variable} is used by the start script but not set");
        }
        Assert.Equal(replicas.ToString(System.Globalization.CultureInfo.InvariantCulture), env["RAFT_INITIAL_SIZE"]);

        // Pod raft-0 as the node sees it: its settings pass the node's validation (with real files at the mounted paths).
        string folder = Directory.CreateTempSubdirectory("raft-k8s-").FullName;
        var certificates = new TestCertificates(Path.Combine(folder, "ca"));
        string Pod0(string? value) => (value ?? "").Replace("$(POD_NAME)", "raft-0", StringComparison.Ordinal);
        var options = new NodeOptions
        {
            Id = Pod0(env["Raft__Id"]), GrpcUrl = Pod0(env["Raft__GrpcUrl"]), HttpUrl = Pod0(env["Raft__HttpUrl"]), PeerUrl = Pod0(env["Raft__PeerUrl"]),
            DataDir = Path.Combine(folder, "data"), Members = env["RAFT_INITIAL_MEMBERS"]!,
        };
        Assert.Equal("raft-0", options.Id);
        (options.PeerCertificate, options.PeerKey) = certificates.Issue("raft-0");
        options.PeerCa = certificates.CaFile;
        options.TokensFile = Path.Combine(folder, "tokens");
        File.WriteAllLines(options.TokensFile, ["admin operator 0123456789abcdef0123"]);
        options.Validate();
        Assert.True(options.SeparatePeerPlane && options.PeerTls);

        // Ports: the URLs listen where the container says, and members are the peer Service's pod addresses.
        Assert.Equal(ports["grpc"], new Uri(options.GrpcUrl).Port);
        Assert.Equal(ports["http"], new Uri(options.HttpUrl).Port);
        Assert.Equal(ports["peer"], new Uri(options.PeerUrl!).Port);
        string peers = Text(set, "spec.serviceName");
        IReadOnlyDictionary<string, string> members = options.ParseMembers(checkOwnAddress: false);
        Assert.Equal(Enumerable.Range(0, replicas).Select(i => $"raft-{i}"), members.Keys.Order());
        Assert.All(members, m => Assert.Equal($"https://{m.Key}.{peers}:{ports["peer"]}", m.Value.TrimEnd('/')));

        // Files: the data folder is the claim's mount, the certificates and tokens are where their secrets are mounted.
        Dictionary<string, string> mounts = List(container, "volumeMounts").ToDictionary(m => Text(m, "name"), m => Text(m, "mountPath"));
        Assert.Equal(mounts[Text(Assert.Single(List(set, "spec.volumeClaimTemplates")), "metadata.name")], env["Raft__DataDir"]);
        Assert.Equal(mounts["tls"], Path.GetDirectoryName(env["Raft__PeerCertificate"]));
        Assert.Equal(mounts["tls"], Path.GetDirectoryName(env["Raft__PeerCa"]));
        Assert.Equal(mounts["tokens"], Path.GetDirectoryName(env["Raft__TokensFile"]));
        object tokensVolume = List(pod, "volumes").Single(v => Text(v, "name") == "tokens");
        Assert.Contains(List(tokensVolume, "secret.items"), item => Text(item, "path") == Path.GetFileName(env["Raft__TokensFile"]));

        // Probes on the HTTP port, at the paths the node serves; the preStop hook is a verb of the node's command line.
        Assert.Equal("/readyz", Text(container, "readinessProbe.httpGet.path"));
        Assert.Equal("/healthz", Text(container, "livenessProbe.httpGet.path"));
        Assert.Equal("http", Text(container, "readinessProbe.httpGet.port"));
        List<string> preStop = List(container, "lifecycle.preStop.exec.command").Select(c => c.ToString()!).ToList();
        Assert.Equal(["dotnet", $"{typeof(NodeOptions).Assembly.GetName().Name}.dll"], preStop.Take(2));
        Assert.Contains(preStop[2], Cli.Verbs);
        Assert.Equal(ports["grpc"], new Uri(preStop[preStop.IndexOf("--node") + 1]).Port);

        // Not root, as the image's user; requests set.
        Assert.Equal("1654", Text(pod, "securityContext.runAsUser"));
        Assert.Contains("USER app", File.ReadAllText(PathOf("Raft.Node", "Dockerfile")), StringComparison.Ordinal);
        Assert.NotNull(At(container, "resources.requests.cpu"));
        Assert.NotNull(At(container, "resources.requests.memory"));
    }

    [Fact]
    public void The_services_and_the_disruption_budget_select_the_nodes_by_their_port_names()
    {
        Dictionary<object, object> set = Object("StatefulSet");
        Dictionary<object, object> podLabels = Map(set, "spec.template.metadata.labels");
        Assert.Equal(podLabels.ToList(), Map(set, "spec.selector.matchLabels").ToList());
        object container = Assert.Single(List(set, "spec.template.spec.containers"));
        var portNames = List(container, "ports").Select(p => Text(p, "name")).ToHashSet();

        Dictionary<object, object> peers = Object("Service", Text(set, "spec.serviceName"));
        Assert.Equal("None", Text(peers, "spec.clusterIP"));
        Assert.Equal("True", Text(peers, "spec.publishNotReadyAddresses"), ignoreCase: true); // peers must find each other before any is ready
        Assert.Equal("Parallel", Text(set, "spec.podManagementPolicy")); // else raft-1 waits for raft-0 to be ready, which waits for a leader
        foreach (Dictionary<object, object> service in new[] { peers, Object("Service", "raft") })
        {
            Assert.All(Map(service, "spec.selector"), label => Assert.Equal(podLabels[label.Key], label.Value));
            Assert.All(List(service, "spec.ports"), port => Assert.Contains(Text(port, "targetPort"), portNames));
        }
        Dictionary<object, object> budget = Object("PodDisruptionBudget");
        Assert.Equal("1", Text(budget, "spec.maxUnavailable"));
        Assert.All(Map(budget, "spec.selector.matchLabels"), label => Assert.Equal(podLabels[label.Key], label.Value));
    }

    [Fact]
    public void The_dashboard_attaches_to_every_pod_on_the_nodes_ports_with_the_clusters_token()
    {
        Dictionary<object, object> set = Object("StatefulSet");
        object node = Assert.Single(List(set, "spec.template.spec.containers"));
        Dictionary<string, int> nodePorts = List(node, "ports").ToDictionary(p => Text(p, "name"), p => int.Parse(Text(p, "containerPort"), System.Globalization.CultureInfo.InvariantCulture));
        Dictionary<object, object> deployment = Object("Deployment", "raft-dashboard");
        object container = Assert.Single(List(deployment, "spec.template.spec.containers"));
        Dictionary<string, string?> env = Env(container);

        var settings = typeof(DashboardOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (string name in env.Keys)
        {
            Assert.True(name.StartsWith("Dashboard__", StringComparison.Ordinal) && settings.Contains(name["Dashboard__".Length..]), $"{name} is not a DashboardOptions setting");
        }
        var options = new DashboardOptions { Nodes = env["Dashboard__Nodes"]! };
        IReadOnlyList<NodeEndpoint> nodes = options.ParseNodes();
        int replicas = int.Parse(Text(set, "spec.replicas"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(Enumerable.Range(0, replicas).Select(i => $"raft-{i}"), nodes.Select(n => n.Id));
        string peers = Text(set, "spec.serviceName");
        Assert.All(nodes, n => Assert.Equal($"http://{n.Id}.{peers}:{nodePorts["grpc"]}", n.GrpcUrl));
        Assert.All(nodes, n => Assert.Equal($"http://{n.Id}.{peers}:{nodePorts["http"]}", n.HttpUrl));
        Assert.Null(env["Dashboard__NodeToken"]); // from a secret, not in the file
        Assert.Equal("raft-tokens", Text(List(container, "env").Single(e => Text(e, "name") == "Dashboard__NodeToken"), "valueFrom.secretKeyRef.name"));

        Dictionary<string, string> mounts = List(container, "volumeMounts").ToDictionary(m => Text(m, "name"), m => Text(m, "mountPath"));
        Assert.Equal(mounts["users"], Path.GetDirectoryName(env["Dashboard__UsersFile"]));
        Assert.Equal(mounts["audit"], Path.GetDirectoryName(env["Dashboard__AuditFile"]));
        Assert.Equal(DashboardAccess.LoginPath, Text(container, "readinessProbe.httpGet.path")); // served because a users file is set
        string dockerfile = File.ReadAllText(PathOf("Raft.Dashboard", "Dockerfile"));
        Assert.Contains($"http://0.0.0.0:{Text(Assert.Single(List(container, "ports")), "containerPort")}", dockerfile, StringComparison.Ordinal);
    }
    [Fact]
    public void Every_pod_meets_the_restricted_pod_security_standard_on_a_read_only_root_filesystem()
    {
        foreach (string kind in new[] { "StatefulSet", "Deployment" })
        {
            Dictionary<object, object> pod = Map(Object(kind), "spec.template.spec");
            Assert.Equal("true", Text(pod, "securityContext.runAsNonRoot").ToLowerInvariant());
            Assert.Equal("RuntimeDefault", Text(pod, "securityContext.seccompProfile.type"));
            Assert.DoesNotContain(List(pod, "volumes"), v => At(v, "hostPath") != null);
            foreach (object container in List(pod, "containers"))
            {
                string name = $"{kind} {Text(container, "name")}";
                Assert.Equal("false", Text(container, "securityContext.allowPrivilegeEscalation").ToLowerInvariant());
                Assert.Equal("true", Text(container, "securityContext.readOnlyRootFilesystem").ToLowerInvariant());
                Assert.Equal(["ALL"], List(container, "securityContext.capabilities.drop").Select(c => c.ToString()));
                Assert.Empty(List(container, "securityContext.capabilities.add"));
                Assert.Null(At(container, "securityContext.privileged"));
                // With the root read-only, every place it writes is a volume: /tmp (the runtime) and /data.
                var writable = List(container, "volumeMounts").Where(m => At(m, "readOnly")?.ToString() != "true").Select(m => Text(m, "mountPath")).ToList();
                Assert.Contains("/tmp", writable);
                Assert.Contains("/data", writable);
            }
        }
    }

    [Fact]
    public void Images_carry_the_version_and_the_audit_trail_outlives_the_dashboards_pod()
    {
        string version = System.Xml.Linq.XDocument.Load(PathOf("Directory.Packaging.props")).Descendants("Version").Single().Value;
        var images = List(Load(Path.Combine(Folder, "kustomization.yaml"))[0], "images");
        Assert.Equal(2, images.Count);
        Assert.All(images, image => Assert.Equal(version, Text(image, "newTag")));

        Dictionary<object, object> dashboard = Object("Deployment");
        object audit = List(dashboard, "spec.template.spec.volumes").Single(v => Text(v, "name") == "audit");
        string claim = Text(audit, "persistentVolumeClaim.claimName");
        Assert.Equal("ReadWriteOnce", Assert.Single(List(Object("PersistentVolumeClaim", claim), "spec.accessModes"))!.ToString());
        Assert.Equal("Recreate", Text(dashboard, "spec.strategy.type")); // one writer of the volume at a time
        string auditFile = Env(Assert.Single(List(dashboard, "spec.template.spec.containers")))["Dashboard__AuditFile"]!;
        Assert.StartsWith("/data/", auditFile, StringComparison.Ordinal);
    }
}
