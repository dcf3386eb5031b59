using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;
using Raft.Client.Events;

namespace Raft.Tests.Dashboard;

/// <summary>A cluster snapshot built by hand, for component tests.</summary>
internal sealed class FakeMonitor : IClusterMonitor
{
    public ClusterSnapshot Current { get; set; } = ClusterSnapshot.Empty;

    public Dictionary<string, IReadOnlyList<KeyValuePair<string, string>>> Data { get; } = [];

    public event Action? Changed;

    public void Publish(ClusterSnapshot snapshot)
    {
        Current = snapshot;
        Changed?.Invoke();
    }

    public Task<IReadOnlyList<KeyValuePair<string, string>>> ReadDataAsync(string nodeId, CancellationToken cancellationToken = default) =>
        Task.FromResult(Data.GetValueOrDefault(nodeId) ?? []);

    public static StatusView Status(string id, string role, long term, string? leader, long commit, long last,
        string[] members, bool isolated = false, string[]? cut = null, long snapshot = 0) =>
        new(id, role, term, leader, leader, commit, commit, 1, last, term, snapshot, snapshot > 0 ? term : 0, 0,
            members.Select(m => new MemberView(m, $"http://{m}", true, last, last + 1, role == "Leader" && m != id ? "Replicate" : "", true)).ToList(),
            new FaultsView(true, cut ?? [], isolated, 0, 0), null, null, 3, 20, 10);

    public static NodeSnapshot Node(StatusView status, params LogEntryView[] log) =>
        new(status.Id, $"http://{status.Id}:7001", $"http://{status.Id}:8001", true, false, status, log);

    /// <summary>Three nodes, n1 leading term 2, entries 1-3 (1 of term 1, 2-3 of term 2), 2 committed.</summary>
    public static ClusterSnapshot ThreeNodes(bool isolateN3 = false, string[]? n1Cuts = null)
    {
        string[] members = ["n1", "n2", "n3"];
        LogEntryView[] log = [new(1, 1, "NoOp", "no-op"), new(2, 2, "NoOp", "no-op"), new(3, 2, "Command", "put color=blue")];
        return new ClusterSnapshot(
            [
                Node(Status("n1", "Leader", 2, "n1", 2, 3, members, cut: n1Cuts), log),
                Node(Status("n2", "Follower", 2, "n1", 2, 3, members), log),
                Node(Status("n3", isolateN3 ? "PreCandidate" : "Follower", 2, isolateN3 ? null : "n1", 2, 3, members, isolated: isolateN3, snapshot: 1), log),
            ],
            [new TimelineEvent(DateTimeOffset.UnixEpoch, "n1", "role", "became Leader in term 2"), new TimelineEvent(DateTimeOffset.UnixEpoch, "n2", "term", "term 2")],
            12.5,
            CanManageNodes: true);
    }
}

/// <summary>Records what the components asked for and answers with a prepared outcome.</summary>
internal sealed class FakeCommands : IClusterCommands
{
    public List<string> Calls { get; } = [];

    public CommandOutcome Outcome { get; set; } = new(true, "ok", "n1");

    private Task<CommandOutcome> Record(string call)
    {
        Calls.Add(call);
        return Task.FromResult(Outcome);
    }

    public Task<CommandOutcome> PutAsync(string key, string value) => Record($"put {key} {value}");
    public Task<CommandOutcome> PutToAsync(string nodeId, string key, string value) => Record($"put {key} {value} at {nodeId}");
    public Task<CommandOutcome> GetAsync(string key) => Record($"get {key}");
    public Task<CommandOutcome> DeleteAsync(string key) => Record($"delete {key}");
    public Task<CommandOutcome> CompareAndSwapAsync(string key, string? expected, string? value) => Record($"cas {key} {expected ?? "-"} {value ?? "-"}");
    public Task<CommandOutcome> AddServerAsync() => Record("add");
    public Task<CommandOutcome> RemoveServerAsync(string id) => Record($"remove {id}");
    public Task<CommandOutcome> TransferLeadershipAsync(string id) => Record($"transfer {id}");
    public Task<CommandOutcome> TakeSnapshotAsync(string id) => Record($"snapshot {id}");
    public Task<CommandOutcome> CrashAsync(string id) => Record($"crash {id}");
    public Task<CommandOutcome> RestartAsync(string id) => Record($"restart {id}");
    public Task<CommandOutcome> CutLinkAsync(string a, string b) => Record($"cut {a} {b}");
    public Task<CommandOutcome> HealLinkAsync(string a, string b) => Record($"heal {a} {b}");
    public Task<CommandOutcome> IsolateAsync(string id) => Record($"isolate {id}");
    public Task<CommandOutcome> HealNodeAsync(string id) => Record($"heal {id}");
    public Task<CommandOutcome> HealAllAsync() => Record("heal all");
}
