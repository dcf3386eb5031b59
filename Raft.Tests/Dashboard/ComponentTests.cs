using Bunit;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;
using Raft.Dashboard.Components.Controls;
using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Node.Transport;

namespace Raft.Tests.Dashboard;

/// <summary>Each dashboard component against a fake cluster: what it renders, and which service call each action makes.</summary>
public sealed class ComponentTests : IAsyncDisposable
{
    private readonly BunitContext _context = new();
    private readonly FakeMonitor _monitor = new();
    private readonly FakeCommands _commands = new();

    public ComponentTests()
    {
        _context.JSInterop.Mode = JSRuntimeMode.Loose;
        _context.Services.AddMudServices();
        _context.Services.AddSingleton<IClusterMonitor>(_monitor);
        _context.Services.AddSingleton<IClusterCommands>(_commands);
        _context.Services.AddSingleton<Raft.Dashboard.Cluster.IClusterClock>(new Raft.Dashboard.Cluster.UnavailableClusterClock());
        _monitor.Current = FakeMonitor.ThreeNodes();
        // An operator: the controls are rendered (a viewer's page is checked against the real dashboard in DashboardAccessTests).
        var authorization = _context.AddAuthorization();
        authorization.SetAuthorized("ada");
        authorization.SetRoles(Raft.Dashboard.Access.DashboardRoles.Operator);
        authorization.SetPolicies(Raft.Dashboard.Access.DashboardRoles.OperatorPolicy);
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();

    [Fact]
    public void The_key_value_view_abbreviates_a_long_value_and_offers_it_as_a_download()
    {
        // A 1 MiB value once made the page too heavy to screenshot in 30 s: the view carries its start, size and digest.
        string huge = new('x', 1024 * 1024);
        _monitor.Data["n1"] = [new("big", huge), new("small", "blue")];
        IRenderedComponent<KeyValueView> view = _context.Render<KeyValueView>();
        view.WaitForAssertion(() => Assert.Contains("1,048,576 bytes, sha256 ", view.Find("[data-testid=kv-row-big]").TextContent, StringComparison.Ordinal));
        Assert.True(view.Markup.Length < 20_000, $"the view's markup has {view.Markup.Length:N0} characters");
        Assert.Equal("/value?key=big", view.Find("[data-testid=kv-download-big]").GetAttribute("href"));
        Assert.Contains("blue", view.Find("[data-testid=kv-row-small]").TextContent, StringComparison.Ordinal);
        Assert.Empty(view.FindAll("[data-testid=kv-download-small]"));
    }

    [Fact]
    public void The_picture_shows_every_member_with_its_role_and_term()
    {
        IRenderedComponent<ClusterPicture> picture = _context.Render<ClusterPicture>();
        Assert.Equal("Leader", picture.Find("[data-testid=node-n1]").GetAttribute("data-role"));
        Assert.Equal("Follower", picture.Find("[data-testid=node-n2]").GetAttribute("data-role"));
        Assert.Contains("Leader t2", picture.Find("[data-testid=node-n1]").TextContent, StringComparison.Ordinal);
        Assert.Equal(3, picture.FindAll("[data-testid^=link-]").Count);
        Assert.All(picture.FindAll("[data-testid^=link-]"), link => Assert.Equal("false", link.GetAttribute("data-cut")));
    }

    [Fact]
    public void A_cut_link_and_an_isolated_node_are_drawn_as_such_and_re_render_on_change()
    {
        IRenderedComponent<ClusterPicture> picture = _context.Render<ClusterPicture>();
        _monitor.Publish(FakeMonitor.ThreeNodes(isolateN3: false, n1Cuts: ["n2"]));
        picture.WaitForAssertion(() => Assert.Equal("true", picture.Find("[data-testid=link-n1-n2]").GetAttribute("data-cut")));
        Assert.Equal("false", picture.Find("[data-testid=link-n1-n3]").GetAttribute("data-cut"));

        _monitor.Publish(FakeMonitor.ThreeNodes(isolateN3: true));
        picture.WaitForAssertion(() => Assert.Equal("true", picture.Find("[data-testid=node-n3]").GetAttribute("data-isolated")));
        Assert.Equal("true", picture.Find("[data-testid=link-n2-n3]").GetAttribute("data-cut"));
        Assert.Contains("isolated", picture.Find("[data-testid=node-n3]").TextContent, StringComparison.Ordinal);
    }

    [Fact]
    public void Clicking_a_link_cuts_it_and_clicking_a_cut_link_heals_it()
    {
        _monitor.Current = FakeMonitor.ThreeNodes(n1Cuts: ["n2"]);
        IRenderedComponent<ClusterPicture> picture = _context.Render<ClusterPicture>();
        picture.Find("[data-testid=link-n1-n3]").Click();
        picture.Find("[data-testid=link-n1-n2]").Click();
        Assert.Equal(["cut n1 n3", "heal n1 n2"], _commands.Calls);
    }

    [Fact]
    public void A_viewers_links_are_drawn_but_not_offered_for_cutting()
    {
        // Before, a viewer saw a pointer and "click to cut" on every link, and a click sent a command to be refused.
        var authorization = _context.AddAuthorization();
        authorization.SetRoles(Raft.Dashboard.Access.DashboardRoles.Viewer);
        authorization.SetPolicies();
        _monitor.Current = FakeMonitor.ThreeNodes(n1Cuts: ["n2"]);
        IRenderedComponent<ClusterPicture> picture = _context.Render<ClusterPicture>();

        AngleSharp.Dom.IElement link = picture.Find("[data-testid=link-n1-n2]");
        Assert.Null(link.GetAttribute("style"));
        Assert.Equal("n1 - n2 is cut", link.QuerySelector("title")!.TextContent);
        Assert.DoesNotContain("click", picture.Find("[data-testid=link-n1-n3]").QuerySelector("title")!.TextContent, StringComparison.Ordinal);
        link.Click();
        Assert.Empty(_commands.Calls);
    }

    [Fact]
    public void Heal_on_an_isolated_node_heals_that_node_only()
    {
        _monitor.Current = FakeMonitor.ThreeNodes(isolateN3: true);
        IRenderedComponent<NodeTable> table = _context.Render<NodeTable>();
        table.Find("[data-testid=heal-n3]").Click();
        Assert.Equal(["heal n3"], _commands.Calls); // before: "heal all", every link of the cluster
    }

    [Fact]
    public void The_node_table_shows_each_node_and_its_buttons_call_the_right_commands()
    {
        IRenderedComponent<NodeTable> table = _context.Render<NodeTable>();
        Assert.Equal("Leader", table.Find("[data-testid=role-n1]").TextContent.Trim());
        Assert.Equal("2", table.Find("[data-testid=commit-n2]").TextContent.Trim());
        Assert.Equal("1", table.Find("[data-testid=snapshot-n3]").TextContent.Trim());

        table.Find("[data-testid=crash-n2]").Click();
        table.Find("[data-testid=snapshot-btn-n1]").Click();
        table.Find("[data-testid=transfer-n3]").Click();
        table.Find("[data-testid=isolate-n2]").Click();
        table.Find("[data-testid=remove-n3]").Click();
        Assert.Equal(["crash n2", "snapshot n1", "transfer n3", "isolate n2", "remove n3"], _commands.Calls);
        Assert.True(table.Find("[data-testid=transfer-n1]").HasAttribute("disabled")); // it already leads
    }

    [Fact]
    public void A_crashed_node_offers_restart()
    {
        var snapshot = FakeMonitor.ThreeNodes();
        _monitor.Current = snapshot with { Nodes = [.. snapshot.Nodes.Select(n => n.Id == "n2" ? n with { Connected = false, Stopped = true } : n)] };
        IRenderedComponent<NodeTable> table = _context.Render<NodeTable>();
        Assert.Equal("crashed", table.Find("[data-testid=role-n2]").TextContent.Trim());
        table.Find("[data-testid=restart-n2]").Click();
        Assert.Equal(["restart n2"], _commands.Calls);
    }

    [Fact]
    public void The_command_panel_sends_the_command_and_shows_who_served_it()
    {
        _commands.Outcome = new CommandOutcome(true, "put color=blue", "n1", ["n2 -> n1"]);
        IRenderedComponent<CommandPanel> panel = _context.Render<CommandPanel>();
        panel.Find("input[data-testid=kv-key]").Change("color");
        panel.Find("input[data-testid=kv-value]").Input("blue");
        panel.Find("[data-testid=btn-put]").Click();
        Assert.Equal(["put color blue"], _commands.Calls);
        string result = panel.Find("[data-testid=command-result]").TextContent;
        Assert.Contains("served by n1", result, StringComparison.Ordinal);
        Assert.Contains("redirected n2 -> n1", result, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refusal_is_shown_as_an_error_not_swallowed()
    {
        _commands.Outcome = CommandOutcome.Failed("Unavailable: no leader is known yet");
        IRenderedComponent<CommandPanel> panel = _context.Render<CommandPanel>();
        panel.Find("input[data-testid=kv-key]").Change("x");
        panel.Find("[data-testid=btn-get]").Click();
        var alert = panel.Find("[data-testid=command-result]");
        Assert.Contains("no leader is known yet", alert.TextContent, StringComparison.Ordinal);
        Assert.Contains("error", alert.ClassName, StringComparison.OrdinalIgnoreCase);

        panel.Find("input[data-testid=kv-key]").Change("");
        panel.Find("[data-testid=btn-put]").Click();
        Assert.Contains("enter a key first", panel.Find("[data-testid=command-result]").TextContent, StringComparison.Ordinal);
        Assert.Single(_commands.Calls); // the empty key never reached the cluster
    }

    [Fact]
    public void The_log_view_aligns_entries_by_index_colours_them_by_term_and_marks_commitment_and_the_snapshot()
    {
        IRenderedComponent<LogView> log = _context.Render<LogView>();
        var committed = log.Find("[data-testid=log-n1-2]");
        var uncommitted = log.Find("[data-testid=log-n1-3]");
        Assert.Equal(("2", "true"), (committed.GetAttribute("data-term"), committed.GetAttribute("data-committed")));
        Assert.Equal("false", uncommitted.GetAttribute("data-committed"));
        Assert.NotEqual(log.Find("[data-testid=log-n1-1]").GetAttribute("style"), committed.GetAttribute("style")); // another term, another colour
        Assert.Equal("true", log.Find("[data-testid=log-n3-1]").GetAttribute("data-in-snapshot"));
        Assert.Contains("snapshot ≤ 1", log.Find("[data-testid=snapshot-boundary-n3]").TextContent, StringComparison.Ordinal);
        Assert.Contains("put color=blue", log.Find("[data-testid=log-n2-3]").GetAttribute("title"), StringComparison.Ordinal);
        // The leader's view of each follower, on the follower's own row: matchIndex and nextIndex.
        Assert.Contains("match 3 · next 4", log.Find("[data-testid=progress-n2]").TextContent, StringComparison.Ordinal);
        Assert.Contains("match-marker", log.Find("[data-testid=log-n2-3]").GetAttribute("class"), StringComparison.Ordinal);
        Assert.Single(log.FindAll("[data-testid=log-row-n2] [data-marker=next-marker]"));
    }

    [Fact]
    public void A_match_the_leader_reports_past_a_followers_own_last_entry_is_drawn_at_that_entry()
    {
        // The leader was sampled after n2 answered for entry 5; n2's own status is older and ends at 3.
        ClusterSnapshot cluster = FakeMonitor.ThreeNodes();
        NodeSnapshot leader = cluster.Nodes[0];
        var members = leader.Status!.Members.Select(m => m.Id == "n2" ? m with { MatchIndex = 5, NextIndex = 6 } : m).ToList();
        _monitor.Current = cluster with { Nodes = [leader with { Status = leader.Status with { Members = members } }, .. cluster.Nodes.Skip(1)] };
        IRenderedComponent<LogView> log = _context.Render<LogView>();
        Assert.Contains("match 3 · next 6", log.Find("[data-testid=progress-n2]").TextContent, StringComparison.Ordinal);
        Assert.Contains("match-marker", log.Find("[data-testid=log-n2-3]").GetAttribute("class"), StringComparison.Ordinal);
    }

    [Fact]
    public void The_cluster_panel_shows_the_leader_and_throughput_and_adds_servers()
    {
        IRenderedComponent<ClusterPanel> panel = _context.Render<ClusterPanel>();
        Assert.Contains("n1 (term 2)", panel.Find("[data-testid=leader]").TextContent, StringComparison.Ordinal);
        Assert.Contains("12 commits/s", panel.Find("[data-testid=throughput]").TextContent, StringComparison.Ordinal);
        panel.Find("[data-testid=btn-add-server]").Click();
        panel.Find("[data-testid=btn-heal-all]").Click();
        Assert.Equal(["add", "heal all"], _commands.Calls);
    }

    [Fact]
    public void Messages_in_flight_are_drawn_along_their_way_labelled_with_what_they_say()
    {
        var positions = new Dictionary<string, (double X, double Y)> { ["n1"] = (0, 0), ["n2"] = (100, 0), ["n3"] = (0, 100) };
        var now = TimeSpan.FromMilliseconds(50);
        InFlightMessage[] messages =
        [
            new(1, new RequestVote("n1", "n2", 3, 7, 2, PreVote: true), TimeSpan.Zero, TimeSpan.FromMilliseconds(100)),
            new(2, new RequestVoteResponse("n3", "n1", 3, Granted: false, PreVote: false), TimeSpan.Zero, TimeSpan.FromMilliseconds(100)),
            new(3, new AppendEntries("n1", "n3", 3, 7, 2, [], 7), TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(150)),
            new(4, new TimeoutNow("n1", "gone", 3), TimeSpan.Zero, TimeSpan.FromMilliseconds(100)), // to a node not drawn: skipped
        ];
        IRenderedComponent<MessagesInFlight> layer = _context.Render<MessagesInFlight>(p => p
            .Add(c => c.Messages, messages).Add(c => c.Positions, positions).Add(c => c.Now, now));

        var drawn = layer.FindAll("[data-testid=msg]");
        Assert.Equal(["PreVote n1>n2", "RequestVoteResponse n3>n1", "Heartbeat n1>n3"],
            drawn.Select(g => $"{g.GetAttribute("data-kind")} {g.GetAttribute("data-from")}>{g.GetAttribute("data-to")}"));
        Assert.Equal(["pre-vote?", "vote no", "heartbeat"], drawn.Select(g => g.QuerySelector("text")!.TextContent));
        // Half way in time is half way along the link (between the circles), offset to one side.
        double x = double.Parse(drawn[0].QuerySelector("rect")!.GetAttribute("x")!, System.Globalization.CultureInfo.InvariantCulture)
            + (double.Parse(drawn[0].QuerySelector("rect")!.GetAttribute("width")!, System.Globalization.CultureInfo.InvariantCulture) / 2);
        Assert.InRange(x, 49, 51);
        // Just sent: still next to its sender.
        double y = double.Parse(drawn[2].QuerySelector("rect")!.GetAttribute("y")!, System.Globalization.CultureInfo.InvariantCulture) + 9;
        Assert.InRange(y, 20, 24);
    }

    [Fact]
    public void Labels_of_messages_held_by_a_paused_clock_cover_neither_each_other_nor_a_node()
    {
        // Where the picture draws three members. Paused, every message waits just outside its sender (no flight time):
        // before, two on one link were drawn on the same spot, and long labels lay over the node's text.
        var positions = new Dictionary<string, (double X, double Y)> { ["n1"] = (260, 70), ["n2"] = (372.6, 250), ["n3"] = (147.4, 250) };
        var held = TimeSpan.FromSeconds(3);
        InFlightMessage[] messages =
        [
            new(1, new AppendEntries("n1", "n2", 3, 7, 2, [], 7), held, held),
            new(2, new AppendEntries("n1", "n3", 3, 7, 2, [], 7), held, held),
            new(3, new AppendEntries("n1", "n2", 3, 7, 2, [new LogEntry(8, 3, EntryKind.Command, [1])], 7), held, held),
            new(4, new AppendEntries("n1", "n3", 3, 7, 2, [new LogEntry(8, 3, EntryKind.Command, [1])], 7), held, held),
            new(5, new AppendEntriesResponse("n2", "n1", 3, true, 7, 0, 0, 0), held, held),
            new(6, new AppendEntriesResponse("n3", "n1", 3, true, 7, 0, 0, 0), held, held),
            new(7, new RequestVote("n2", "n3", 4, 7, 3, PreVote: false, Transfer: true), held, held),
            new(8, new RequestVote("n2", "n1", 4, 7, 3, PreVote: false, Transfer: true), held, held),
            new(9, new RequestVoteResponse("n3", "n2", 4, Granted: true, PreVote: false), held, held),
        ];
        IRenderedComponent<MessagesInFlight> layer = _context.Render<MessagesInFlight>(p => p
            .Add(c => c.Messages, messages).Add(c => c.Positions, positions).Add(c => c.Now, held));

        static double Number(AngleSharp.Dom.IElement rect, string name) =>
            double.Parse(rect.GetAttribute(name)!, System.Globalization.CultureInfo.InvariantCulture);
        var boxes = layer.FindAll("[data-testid=msg] rect").Select(r => (X: Number(r, "x"), Y: Number(r, "y"), W: Number(r, "width"), H: Number(r, "height"))).ToList();
        Assert.Equal(messages.Length, boxes.Count);
        for (int i = 0; i < boxes.Count; i++)
        {
            for (int j = i + 1; j < boxes.Count; j++)
            {
                bool apart = boxes[i].X + boxes[i].W <= boxes[j].X || boxes[j].X + boxes[j].W <= boxes[i].X
                    || boxes[i].Y + boxes[i].H <= boxes[j].Y || boxes[j].Y + boxes[j].H <= boxes[i].Y;
                Assert.True(apart, $"the labels of messages {i + 1} and {j + 1} overlap: {boxes[i]} and {boxes[j]}");
            }
            foreach ((string id, (double x, double y)) in positions)
            {
                double dx = Math.Clamp(x, boxes[i].X, boxes[i].X + boxes[i].W) - x, dy = Math.Clamp(y, boxes[i].Y, boxes[i].Y + boxes[i].H) - y;
                Assert.True(Math.Sqrt((dx * dx) + (dy * dy)) >= 38, $"the label of message {i + 1} covers {id}'s circle");
            }
        }
    }

    [Fact]
    public void Roles_have_distinct_colours_and_twelve_terms_never_share_one()
    {
        Assert.Equal(Palette.Roles.Count, Palette.Roles.Select(r => r.Colour).Distinct().Count());
        Assert.NotEqual(Palette.Role("Leader", true), Palette.Role("PreCandidate", true));
        Assert.Equal(12, Enumerable.Range(1, 12).Select(t => Palette.Term(t)).Distinct().Count());
    }

    [Fact]
    public void In_attach_mode_the_clock_controls_are_hidden_with_the_reason()
    {
        IRenderedComponent<ClockPanel> panel = _context.Render<ClockPanel>();
        Assert.Contains("own cluster", panel.Find("[data-testid=clock-unavailable]").TextContent, StringComparison.Ordinal);
        Assert.Empty(panel.FindAll("[data-testid=clock-pause]"));
        IRenderedComponent<ScenarioPanel> scenarios = _context.Render<ScenarioPanel>();
        Assert.NotNull(scenarios.Find("[data-testid=scenarios-unavailable]"));
        Assert.Empty(scenarios.FindAll("[data-testid^=scenario-leader]"));
    }

    [Fact]
    public void The_timeline_is_sorted_by_when_things_happened_and_shows_each_nodes_roles_in_a_lane()
    {
        DateTimeOffset t0 = DateTimeOffset.UnixEpoch.AddHours(1);
        // As node streams deliver them: not in time order.
        TimelineEvent[] events =
        [
            new(t0.AddMilliseconds(278), "n2", "role", "became Follower in term 2"),
            new(t0.AddMilliseconds(270), "n1", "role", "became Leader in term 2"),
            new(t0.AddMilliseconds(291), "n3", "term", "term 2"),
            new(t0.AddMilliseconds(100), "n1", "role", "became PreCandidate in term 1"),
        ];
        _monitor.Current = FakeMonitor.ThreeNodes() with { Timeline = events };
        IRenderedComponent<Timeline> timeline = _context.Render<Timeline>();
        long[] shown = [.. timeline.FindAll("[data-testid=timeline-row]").Select(r => long.Parse(r.GetAttribute("data-at")!, System.Globalization.CultureInfo.InvariantCulture))];
        Assert.Equal(shown.OrderDescending(), shown);
        Assert.Equal(4, shown.Length);
        Assert.Equal(["PreCandidate", "Leader"], timeline.FindAll("[data-testid=lane-n1]").Select(r => r.GetAttribute("data-role")));
        Assert.Equal(["Follower"], timeline.FindAll("[data-testid=lane-n2]").Select(r => r.GetAttribute("data-role")));
    }
}
