using Bunit;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;
using Raft.Dashboard.Components.Controls;
using Raft.Dashboard.Model;
using Raft.Client.Events;

namespace Raft.Tests.Dashboard;

/// <summary>The live safety auditor, fed by hand-made streams that keep or break each property.</summary>
public sealed class SafetyAuditorTests
{
    private static readonly string[] Members = ["n1", "n2", "n3"];

    private static NodeSnapshot Node(string id, string role, long term, long commit, params LogEntryView[] log) =>
        FakeMonitor.Node(FakeMonitor.Status(id, role, term, role == "Leader" ? id : null, commit, log.Length == 0 ? 0 : log[^1].Index, Members), log);

    private static ClusterSnapshot Cluster(params NodeSnapshot[] nodes) => new(nodes, [], 0, true);

    private static LogEntryView E(long index, long term, string summary = "put a=1") => new(index, term, "Command", summary);

    [Fact]
    public void A_healthy_history_raises_nothing()
    {
        var auditor = new SafetyAuditor();
        auditor.Observe(Cluster(Node("n1", "Leader", 2, 1, E(1, 2)), Node("n2", "Follower", 2, 0, E(1, 2)), Node("n3", "Follower", 1, 0)));
        auditor.Observe(Cluster(Node("n1", "Follower", 3, 2, E(1, 2), E(2, 3, "put b=2")), Node("n2", "Leader", 3, 2, E(1, 2), E(2, 3, "put b=2")), Node("n3", "Follower", 3, 2, E(1, 2), E(2, 3, "put b=2"))));
        Assert.Empty(auditor.Violations);
    }

    [Fact]
    public void Two_leaders_of_one_term_break_election_safety()
    {
        var auditor = new SafetyAuditor();
        auditor.Observe(Cluster(Node("n1", "Leader", 4, 0)));
        auditor.Observe(Cluster(Node("n1", "Follower", 4, 0), Node("n2", "Leader", 4, 0)));
        SafetyViolation violation = Assert.Single(auditor.Violations);
        Assert.Equal("Election Safety", violation.Property);
        Assert.Contains("n1 and n2 were both leader of term 4", violation.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Different_entries_at_one_index_and_term_break_log_matching_and_once_committed_state_machine_safety()
    {
        var auditor = new SafetyAuditor();
        auditor.Observe(Cluster(Node("n1", "Follower", 2, 1, E(1, 2, "put a=1")), Node("n2", "Follower", 2, 1, E(1, 2, "put a=forged"))));
        Assert.Equal(["Log Matching", "State Machine Safety"], auditor.Violations.Select(v => v.Property));
        Assert.Contains("put a=forged", auditor.Violations[1].Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void A_committed_index_that_holds_another_terms_entry_elsewhere_breaks_state_machine_safety()
    {
        var auditor = new SafetyAuditor();
        auditor.Observe(Cluster(Node("n1", "Follower", 3, 1, E(1, 2)), Node("n2", "Follower", 3, 1, E(1, 3))));
        Assert.Equal("State Machine Safety", Assert.Single(auditor.Violations).Property);
    }

    [Fact]
    public void Terms_and_commit_indexes_going_back_are_caught_but_a_restart_may_lower_the_commit_index()
    {
        var auditor = new SafetyAuditor();
        auditor.Observe(Cluster(Node("n1", "Follower", 5, 7)));
        auditor.Observe(Cluster(Node("n1", "Follower", 5, 7) with { Connected = false }));
        auditor.Observe(Cluster(Node("n1", "Follower", 5, 2))); // restarted: commit is volatile
        Assert.Empty(auditor.Violations);
        auditor.Observe(Cluster(Node("n1", "Follower", 4, 1)));
        Assert.Equal(["Terms never decrease", "Commit indexes never decrease"], auditor.Violations.Select(v => v.Property));
    }

    [Fact]
    public async Task The_banner_appears_with_the_evidence_when_the_stream_breaks_a_property()
    {
        await using var context = new BunitContext();
        context.JSInterop.Mode = JSRuntimeMode.Loose;
        context.Services.AddMudServices();
        var monitor = new FakeMonitor();
        var auditor = new SafetyAuditor(monitor);
        context.Services.AddSingleton(auditor);
        IRenderedComponent<SafetyBanner> banner = context.Render<SafetyBanner>();
        monitor.Publish(FakeMonitor.ThreeNodes());
        Assert.Empty(banner.FindAll("[data-testid=safety-banner]"));

        monitor.Publish(Cluster(Node("n2", "Leader", 2, 2))); // n1 led term 2 in ThreeNodes
        banner.WaitForAssertion(() => Assert.Equal("Election Safety", banner.Find("[data-testid=safety-violation]").GetAttribute("data-property")));
        Assert.Contains("n1 and n2 were both leader of term 2", banner.Find("[data-testid=safety-banner]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void A_server_that_left_is_forgotten_so_a_new_one_may_take_its_name()
    {
        var auditor = new SafetyAuditor();
        auditor.Observe(Cluster(Node("n1", "Leader", 5, 9), Node("n4", "Follower", 5, 9)));
        auditor.Observe(Cluster(Node("n1", "Leader", 5, 9)));
        auditor.Observe(Cluster(Node("n1", "Leader", 5, 10), Node("n4", "Follower", 0, 0))); // a new, empty n4
        Assert.Empty(auditor.Violations);
    }
}
