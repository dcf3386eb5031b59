using Raft.Dashboard.Access;
using Raft.Client;
using Raft.Node.Hosting;
using Raft.Node.Security;
using Raft.Tests.Deploy;
using Raft.Tests.Node;

namespace Raft.Tests.Security;

/// <summary>
/// deploy/compose/make-secrets.sh makes what the compose cluster runs on: its certificates really carry a mutual-TLS
/// cluster, its tokens and dashboard users are accepted by the code that reads them, and .env names the dashboard's token.
/// </summary>
public sealed class ComposeSecretsTests
{
    [Fact]
    public async Task The_generated_secrets_run_a_mutual_TLS_cluster_with_tokens_and_a_dashboard_login()
    {
        string folder = Directory.CreateTempSubdirectory("raft-compose-secrets-").FullName;
        string secrets = Path.Combine(folder, "secrets");
        string env = Path.Combine(folder, ".env");
        (int code, string output) = await RunScriptAsync("--out", secrets, "--env", env);
        Assert.True(code == 0, output);

        // The node certificates: each names its node, and the cluster runs on them.
        foreach (string id in new[] { "n1", "n2", "n3" })
        {
            var options = new NodeOptions { Id = id, PeerCertificate = Path.Combine(secrets, $"{id}.pem"), PeerKey = Path.Combine(secrets, $"{id}-key.pem"), PeerCa = Path.Combine(secrets, "ca.pem") };
            Assert.Equal(id, PeerCertificates.IdOf(PeerCertificates.Load(options).Own));
        }
        var wrongNode = new NodeOptions { Id = "n2", PeerCertificate = Path.Combine(secrets, "n1.pem"), PeerKey = Path.Combine(secrets, "n1-key.pem"), PeerCa = Path.Combine(secrets, "ca.pem") };
        Assert.Contains("is for 'n1'", Assert.Throws<FormatException>(() => PeerCertificates.Load(wrongNode)).Message);

        // The tokens: four callers with their roles; the dashboard's token is the one .env gives the dashboard.
        string tokensFile = Path.Combine(secrets, "tokens");
        AccessTokens tokens = AccessTokens.Load(tokensFile);
        Dictionary<string, string> tokenOf = File.ReadAllLines(tokensFile).Where(l => !l.StartsWith('#')).Select(l => l.Split(' '))
            .ToDictionary(p => p[0], p => p[2]);
        Assert.Equal(AccessRole.Operator, tokens.Authenticate(tokenOf["dashboard"], out _)?.Role);
        Assert.Equal(AccessRole.Writer, tokens.Authenticate(tokenOf["app"], out _)?.Role);
        Assert.Equal(AccessRole.Reader, tokens.Authenticate(tokenOf["monitor"], out _)?.Role);
        Dictionary<string, string> settings = File.ReadAllLines(env).Where(l => l.Contains('=') && !l.StartsWith('#')).Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        Assert.Equal(tokenOf["dashboard"], settings["RAFT_DASHBOARD_NODE_TOKEN"]);
        Assert.Equal("127.0.0.1", settings["RAFT_PUBLISH_ADDRESS"]);

        // The dashboard users: hashes the dashboard verifies against the passwords the script printed.
        Dictionary<string, string> passwords = File.ReadAllLines(Path.Combine(secrets, "passwords")).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);
        DashboardUsers users = DashboardUsers.Load(Path.Combine(secrets, "dashboard-users"));
        Assert.Equal(DashboardRoles.Operator, users.Verify("admin", passwords["admin"]));
        Assert.Equal(DashboardRoles.Viewer, users.Verify("viewer", passwords["viewer"]));
        Assert.Null(users.Verify("admin", passwords["viewer"]));
        Assert.DoesNotContain(passwords["admin"], File.ReadAllText(Path.Combine(secrets, "dashboard-users")), StringComparison.Ordinal);

        // Run twice, it keeps what it made unless told to replace it.
        (int again, string refusal) = await RunScriptAsync("--out", secrets, "--env", env);
        Assert.Equal(1, again);
        Assert.Contains("--force", refusal, StringComparison.Ordinal);

        // A three-node cluster on these certificates and tokens, as compose runs it (on loopback).
        await using var cluster = new NodeTestCluster(3, options =>
        {
            options.PeerCertificate = Path.Combine(secrets, $"{options.Id}.pem");
            options.PeerKey = Path.Combine(secrets, $"{options.Id}-key.pem");
            options.PeerCa = Path.Combine(secrets, "ca.pem");
            options.TokensFile = tokensFile;
        }, peerScheme: "https") { ClientToken = tokenOf["admin"] };
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync();
        using var app = new RaftClient(cluster.Endpoints) { Token = tokenOf["app"] };
        await app.PutAsync("compose", "secured");
        using var monitor = new RaftClient(cluster.Endpoints) { Token = tokenOf["monitor"] };
        Assert.Equal("secured", (await monitor.GetAsync("compose")).Value);
    }

    private static Task<(int ExitCode, string Output)> RunScriptAsync(params string[] arguments) =>
        Processes.RunAsync("bash", Manifests.Root, [Manifests.PathOf("deploy", "compose", "make-secrets.sh"), .. arguments]);
}
