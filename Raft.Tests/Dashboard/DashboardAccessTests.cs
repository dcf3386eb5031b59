using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.Extensions.DependencyInjection;
using Raft.Dashboard;
using Raft.Dashboard.Access;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.ServiceClient;
using Raft.Tests.Node;

namespace Raft.Tests.Dashboard;

/// <summary>
/// Issue 11 item 4: the dashboard's login (a users file of password hashes), viewers who see and change nothing (their
/// controls are not rendered and their commands are refused on the server), the cluster's token passed to the nodes, and
/// an audit trail on disk and in the timeline. Against a real three-node cluster that requires tokens.
/// </summary>
public sealed partial class DashboardAccessTests
{
    private const string NodeOperatorToken = "dashboard-operator-token-0123456789";
    private const string OperatorPassword = "correct horse battery staple";
    private const string ViewerPassword = "only looking, thanks";

    [Fact]
    public void The_users_file_holds_hashes_and_names_each_mistake_by_line()
    {
        DashboardUsers users = DashboardUsers.Parse(["# who may sign in", "", $"ada operator {DashboardUsers.Hash("pw-ada")}", $"bob viewer {DashboardUsers.Hash("pw-bob")}"], "users");
        Assert.Equal(2, users.Count);
        Assert.Equal(DashboardRoles.Operator, users.Verify("ada", "pw-ada"));
        Assert.Equal(DashboardRoles.Viewer, users.Verify("bob", "pw-bob"));
        Assert.Null(users.Verify("ada", "pw-bob"));
        Assert.Null(users.Verify("eve", "pw-ada"));

        Assert.Contains("line 1: expected 'name role password-hash'", Assert.Throws<FormatException>(() => DashboardUsers.Parse(["ada operator"], "users")).Message);
        Assert.Contains("line 1: the role 'admin'", Assert.Throws<FormatException>(() => DashboardUsers.Parse([$"ada admin {DashboardUsers.Hash("x")}"], "users")).Message);
        Assert.Contains("not a password hash", Assert.Throws<FormatException>(() => DashboardUsers.Parse(["ada operator hunter2"], "users")).Message);
        string hash = DashboardUsers.Hash("x");
        Assert.Contains("line 2: the user 'ada' is listed twice", Assert.Throws<FormatException>(() => DashboardUsers.Parse([$"ada operator {hash}", $"ada viewer {hash}"], "users")).Message);
    }

    [Fact]
    public async Task A_login_is_required_viewers_change_nothing_and_every_action_is_audited()
    {
        (string folder, NodeTestCluster cluster) = await ClusterWithTokensAsync();
        await using var _ = cluster;
        string leader = await cluster.WaitForLeaderAsync();

        string usersFile = Path.Combine(folder, "users");
        File.WriteAllLines(usersFile, [$"ada operator {DashboardUsers.Hash(OperatorPassword)}", $"bob viewer {DashboardUsers.Hash(ViewerPassword)}"]);
        var options = new DashboardOptions
        {
            Nodes = string.Join(",", cluster.Specs.Select(s => $"{s.Id}={s.GrpcUrl}|{s.HttpUrl}")),
            UsersFile = usersFile,
            NodeToken = NodeOperatorToken,
            AuditFile = Path.Combine(folder, "audit.jsonl"),
        };
        string url = $"http://127.0.0.1:{Ports.Free()}";
        await using WebApplication app = DashboardApp.Build(options, url);
        await app.StartAsync();
        try
        {
            // With the cluster's token the dashboard sees the nodes (their hub requires a reader).
            var monitor = app.Services.GetRequiredService<ClusterMonitor>();
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.Leader?.Id == leader && monitor.Current.Nodes.All(n => n.Connected)), what: "the dashboard to see the cluster with its token");

            // Signed out: every page, the circuit's hub and the recording send to the login page.
            using HttpClient anonymous = Browser(url);
            foreach (string path in new[] { "/", "/recording", "/value?key=color", "/_blazor/negotiate?negotiateVersion=1" })
            {
                using HttpResponseMessage refused = path.Contains("negotiate", StringComparison.Ordinal)
                    ? await anonymous.PostAsync(path, null) : await anonymous.GetAsync(path);
                Assert.True(refused.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Unauthorized, $"{path}: {refused.StatusCode}");
                if (refused.StatusCode is HttpStatusCode.Redirect)
                {
                    Assert.StartsWith($"{url}/login", refused.Headers.Location!.ToString(), StringComparison.Ordinal);
                }
            }

            // A form without its antiforgery token, and a wrong password, are refused with a reason on the page.
            using (HttpResponseMessage forged = await anonymous.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["name"] = "ada", ["password"] = OperatorPassword })))
            {
                Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
            }
            using (HttpResponseMessage wrong = await SignInAsync(anonymous, "ada", "not her password"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
                Assert.Contains("Wrong name or password", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (HttpResponseMessage offsite = await SignInAsync(anonymous, "bob", ViewerPassword, returnUrl: "//evil.example/"))
            {
                Assert.Equal(HttpStatusCode.Redirect, offsite.StatusCode);
                Assert.Equal("/", offsite.Headers.Location!.ToString()); // never sent off the site
            }

            // The viewer's page shows the cluster without a single control that changes it; the operator's has them.
            using HttpClient viewer = Browser(url);
            Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(viewer, "bob", ViewerPassword)).StatusCode);
            string viewerPage = await viewer.GetStringAsync("/");
            Assert.Contains("data-testid=\"read-only\"", viewerPage, StringComparison.Ordinal);
            Assert.Contains("bob (viewer)", viewerPage, StringComparison.Ordinal);
            foreach (string control in new[] { "btn-put", "btn-add-server", "clock-pause", "isolate-n1", "snapshot-btn-n1", "scenario" })
            {
                Assert.DoesNotContain($"data-testid=\"{control}", viewerPage, StringComparison.Ordinal);
            }
            using HttpClient operatorBrowser = Browser(url);
            Assert.Equal(HttpStatusCode.Redirect, (await SignInAsync(operatorBrowser, "ada", OperatorPassword)).StatusCode);
            string operatorPage = await operatorBrowser.GetStringAsync("/");
            Assert.Contains("data-testid=\"btn-put\"", operatorPage, StringComparison.Ordinal);
            Assert.Contains("data-testid=\"isolate-n1\"", operatorPage, StringComparison.Ordinal);
            Assert.Contains("ada (operator)", operatorPage, StringComparison.Ordinal);

            // On the server, a viewer's command is refused (a circuit could send the event of a control it was never
            // shown) and nothing reaches the cluster; an operator's goes through. Both are in the trail and the timeline.
            var commands = app.Services.GetRequiredService<ClusterCommands>();
            var audit = app.Services.GetRequiredService<AuditTrail>();
            var asViewer = new OperatorCommands(commands, new SignedIn("bob", DashboardRoles.Viewer), audit);
            var asOperator = new OperatorCommands(commands, new SignedIn("ada", DashboardRoles.Operator), audit);
            CommandOutcome refusedPut = await asViewer.PutAsync("by-viewer", "x");
            Assert.False(refusedPut.Ok);
            Assert.Contains("only an operator", refusedPut.Text, StringComparison.Ordinal);
            Assert.False((await asViewer.TransferLeadershipAsync(cluster.Specs.First(s => s.Id != leader).Id)).Ok);
            CommandOutcome put = await asOperator.PutAsync("by-operator", "y");
            Assert.True(put.Ok, put.Text);
            CommandOutcome read = await asViewer.GetAsync("by-operator"); // reads are for everyone, and not actions
            Assert.True(read.Ok, read.Text);
            Assert.Null(cluster.Member(leader).StateMachine.Snapshot().FirstOrDefault(p => p.Key == "by-viewer").Key);
            Assert.Contains(cluster.Member(leader).StateMachine.Snapshot(), p => p.Key == "by-operator");

            IReadOnlyList<AuditRecord> trail = new AuditTrail(options.AuditPath, monitor, Microsoft.Extensions.Logging.Abstractions.NullLogger<AuditTrail>.Instance).ReadAll();
            Assert.Collection(trail,
                r => Assert.True(r is { User: "bob", Role: "viewer", Action: "put \"by-viewer\"", Ok: false }, r.ToString()),
                r => Assert.True(r is { User: "bob", Role: "viewer", Action: "transfer leadership to", Ok: false }, r.ToString()),
                r => Assert.True(r is { User: "ada", Role: "operator", Action: "put \"by-operator\"", Ok: true }, r.ToString()));
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(monitor.Current.Timeline.Count(e => e.Kind == "operator") == 3), what: "the three actions in the timeline");
            Assert.Contains(monitor.Current.Timeline, e => e.Kind == "operator" && e.Text.StartsWith("ada (operator): put \"by-operator\"", StringComparison.Ordinal));

            // Signing out: a GET only asks (a link or an image on another site cannot sign anyone out), a POST without
            // the page's antiforgery token is refused with a reason, and the page's own sign-out form ends the session.
            using (HttpResponseMessage asked = await operatorBrowser.GetAsync("/logout"))
            {
                Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
                Assert.Contains("data-testid=\"logout-submit\"", await asked.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (HttpResponseMessage forged = await operatorBrowser.PostAsync("/logout", new FormUrlEncodedContent(new Dictionary<string, string>())))
            {
                Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
                Assert.Contains("sign out again", await forged.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            Assert.Equal(HttpStatusCode.OK, (await operatorBrowser.GetAsync("/")).StatusCode);
            using HttpResponseMessage signOut = await operatorBrowser.PostAsync("/logout", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = WebUtility.HtmlDecode(AntiforgeryField().Match(operatorPage).Groups[1].Value),
            }));
            Assert.Equal(HttpStatusCode.Redirect, signOut.StatusCode);
            Assert.Equal("/login", signOut.Headers.Location!.ToString());
            Assert.Equal(HttpStatusCode.Redirect, (await operatorBrowser.GetAsync("/")).StatusCode);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task Without_the_clusters_token_the_dashboard_is_refused_by_the_nodes_and_says_why()
    {
        (string folder, NodeTestCluster cluster) = await ClusterWithTokensAsync();
        await using var _ = cluster;
        await cluster.WaitForLeaderAsync();
        var options = new DashboardOptions { Nodes = string.Join(",", cluster.Specs.Select(s => $"{s.Id}={s.GrpcUrl}|{s.HttpUrl}")), AuditFile = Path.Combine(folder, "audit.jsonl") };
        await using WebApplication app = DashboardApp.Build(options, $"http://127.0.0.1:{Ports.Free()}");
        await app.StartAsync();
        try
        {
            CommandOutcome put = await app.Services.GetRequiredService<ClusterCommands>().PutAsync("k", "v");
            Assert.False(put.Ok);
            Assert.Contains("Unauthenticated", put.Text, StringComparison.Ordinal);
            Assert.Contains("bearer token", put.Text, StringComparison.Ordinal);
            await Task.Delay(500);
            Assert.DoesNotContain(app.Services.GetRequiredService<ClusterMonitor>().Current.Nodes, n => n.Connected);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    /// <summary>A running three-node cluster whose only token is the dashboard's (an operator's), and a folder for files.</summary>
    private static async Task<(string Folder, NodeTestCluster Cluster)> ClusterWithTokensAsync()
    {
        string folder = Directory.CreateTempSubdirectory("raft-dashboard-access-").FullName;
        string tokens = Path.Combine(folder, "tokens");
        File.WriteAllLines(tokens, [$"dashboard operator {NodeOperatorToken}"]);
        var cluster = new NodeTestCluster(3, o => o.TokensFile = tokens) { ClientToken = NodeOperatorToken };
        await cluster.StartAllAsync();
        return (folder, cluster);
    }

    private static HttpClient Browser(string url) => new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
    {
        BaseAddress = new Uri(url),
    };

    private static async Task<HttpResponseMessage> SignInAsync(HttpClient browser, string name, string password, string returnUrl = "/")
    {
        string form = await browser.GetStringAsync("/login");
        string token = AntiforgeryField().Match(form).Groups[1].Value;
        return await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token), ["name"] = name, ["password"] = password, ["returnUrl"] = returnUrl,
        }));
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    private sealed class SignedIn(string name, string role) : AuthenticationStateProvider
    {
        public override Task<AuthenticationState> GetAuthenticationStateAsync() =>
            Task.FromResult(new AuthenticationState(DashboardAccess.Principal(name, role, "test")));
    }
}
