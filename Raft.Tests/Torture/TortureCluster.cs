using System.Diagnostics;
using Grpc.Core;
using Raft.Client;
using Raft.Protocol;
using Raft.Tests.Node;

namespace Raft.Tests.Torture;

/// <summary>
/// Five real Raft.Node processes on loopback with fault injection on, and what a nemesis does to them: SIGKILL and
/// restart, SIGSTOP and SIGCONT, partitions and an unreliable network through each node's fault injection, removing a
/// member and adding it back with an empty data folder. It remembers what it did, so that a process that died on its
/// own is told apart from one it killed.
/// </summary>
internal sealed class TortureCluster : IAsyncDisposable
{
    private readonly Dictionary<string, NodeProcess> _processes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _paused = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RaftClient> _direct = new(StringComparer.Ordinal);
    private readonly List<string> _unexpectedExits = [];

    /// <summary>Arguments every node process gets (e.g. lease reads on, for a share of the seeds).</summary>
    private readonly string[] _nodeArguments;

    public TortureCluster(int size, params string[] nodeArguments)
    {
        _nodeArguments = nodeArguments;
        Folder = Directory.CreateTempSubdirectory("raft-torture-").FullName;
        Specs = Enumerable.Range(1, size).Select(i => MemberSpec.Create($"n{i}", Folder)).ToList();
        InitialMembers = string.Join(",", Specs.Select(s => $"{s.Id}={s.GrpcUrl}"));
        Admin = new RaftClient(Specs.Select(s => s.GrpcUrl), "nemesis") { Timeout = TimeSpan.FromSeconds(5) };
    }

    public string Folder { get; }
    public List<MemberSpec> Specs { get; }
    public string InitialMembers { get; }
    public IEnumerable<string> Ids => Specs.Select(s => s.Id);
    public IEnumerable<string> Endpoints => Specs.Select(s => s.GrpcUrl);

    /// <summary>A client for admin calls that follows the leader.</summary>
    public RaftClient Admin { get; }

    /// <summary>Processes that exited without the nemesis killing them, with their last lines.</summary>
    public IReadOnlyList<string> UnexpectedExits
    {
        get
        {
            CheckProcesses();
            return _unexpectedExits;
        }
    }

    public MemberSpec this[string id] => Specs.Single(s => s.Id == id);

    public bool IsRunning(string id) => _processes.ContainsKey(id);

    public bool IsPaused(string id) => _paused.Contains(id);

    public void StartAll()
    {
        foreach (MemberSpec spec in Specs)
        {
            _processes[spec.Id] = NodeProcess.Start(spec, InitialMembers, "Warning", _nodeArguments);
        }
    }

    /// <summary>A client that talks to one node only (stale reads of that node's state).</summary>
    public RaftClient Direct(string id)
    {
        if (!_direct.TryGetValue(id, out RaftClient? client))
        {
            client = new RaftClient([this[id].GrpcUrl], "check") { Timeout = TimeSpan.FromSeconds(5) };
            _direct[id] = client;
        }
        return client;
    }

    /// <summary>Records any process that exited though nothing killed it.</summary>
    private void CheckProcesses()
    {
        foreach ((string id, NodeProcess process) in _processes.ToList())
        {
            if (process.Process.HasExited)
            {
                _unexpectedExits.Add($"{id} exited with code {process.Process.ExitCode}; its last lines:\n    " + string.Join("\n    ", process.LastLines.TakeLast(40)));
                _processes.Remove(id);
            }
        }
    }

    public async Task KillAsync(string id)
    {
        CheckProcesses();
        if (_processes.Remove(id, out NodeProcess? process))
        {
            _paused.Remove(id);
            await process.DisposeAsync(); // SIGKILL, then wait for it to be gone
        }
    }

    public void Restart(string id, string? members = null)
    {
        if (!_processes.ContainsKey(id))
        {
            _processes[id] = NodeProcess.Start(this[id], members ?? InitialMembers, "Warning", _nodeArguments);
        }
    }

    public async Task PauseAsync(string id)
    {
        if (_processes.TryGetValue(id, out NodeProcess? process) && _paused.Add(id))
        {
            await SignalAsync(process.Process.Id, "STOP");
        }
    }

    public async Task ResumeAsync(string id)
    {
        if (_processes.TryGetValue(id, out NodeProcess? process) && _paused.Remove(id))
        {
            await SignalAsync(process.Process.Id, "CONT");
        }
    }

    private static async Task SignalAsync(int pid, string signal)
    {
        using Process kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { $"-{signal}", $"{pid}" }, RedirectStandardError = true })!;
        await kill.WaitForExitAsync();
    }

    /// <summary>Sets a node's faults; false if it could not be reached (down or paused).</summary>
    public async Task<bool> SetFaultsAsync(string id, FaultSpec spec)
    {
        try
        {
            await Admin.AdminOf(this[id].GrpcUrl).SetFaultsAsync(spec, deadline: DateTime.UtcNow.AddSeconds(3));
            return true;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    /// <summary>Every node: running, not paused, no faults. Nodes that stay unreachable are returned.</summary>
    public async Task<List<string>> HealAllAsync()
    {
        foreach (string id in _paused.ToList())
        {
            await ResumeAsync(id);
        }
        var unreachable = new List<string>();
        foreach (string id in Ids)
        {
            if (IsRunning(id) && !await SetFaultsAsync(id, new FaultSpec()))
            {
                unreachable.Add(id);
            }
        }
        return unreachable;
    }

    public async Task<NodeStatus?> StatusAsync(string id)
    {
        if (!IsRunning(id) || IsPaused(id))
        {
            return null;
        }
        try
        {
            return await Admin.AdminOf(this[id].GrpcUrl).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
        }
        catch (RpcException)
        {
            return null;
        }
    }

    /// <summary>The leader that the most reachable nodes name, or null.</summary>
    public async Task<string?> LeaderAsync()
    {
        NodeStatus?[] statuses = await Task.WhenAll(Ids.Select(StatusAsync));
        return statuses.Where(s => s?.Role == "Leader").OrderByDescending(s => s!.Term).FirstOrDefault()?.Id;
    }

    /// <summary>The voters and learners of the configuration the leader holds, or null without a leader.</summary>
    public async Task<IReadOnlyList<string>?> MembersAsync()
    {
        string? leader = await LeaderAsync();
        NodeStatus? status = leader is null ? null : await StatusAsync(leader);
        return status?.Members.Select(m => m.Id).ToList();
    }

    /// <summary>An admin call to the leader; null when it succeeded, else the status it got.</summary>
    public async Task<string?> TryAdminAsync(Func<Admin.AdminClient, CancellationToken, Task<AdminReply>> call)
    {
        try
        {
            await Admin.LeaderAdminAsync(call);
            return null;
        }
        catch (RpcException e)
        {
            return $"{e.StatusCode}: {e.Status.Detail}";
        }
    }

    /// <summary>The leader's view of the configuration and the changes in flight, for reports.</summary>
    public async Task<string> ConfigurationAsync()
    {
        string? leader = await LeaderAsync();
        NodeStatus? status = leader is null ? null : await StatusAsync(leader);
        return status is null ? "no leader"
            : $"leader {leader} term {status.Term}: " + string.Join(", ", status.Members.Select(m => $"{m.Id}{(m.Voter ? "" : " (learner)")} match {m.MatchIndex}"))
              + $"; commit {status.CommitIndex}, last {status.LastIndex}; catching up: {(status.CatchingUp.Length > 0 ? status.CatchingUp : "none")}; transfer: {(status.TransferTarget.Length > 0 ? status.TransferTarget : "none")}";
    }

    /// <summary>Stops a node, empties its data folder and starts it with no members: a new server that waits to be added.</summary>
    public async Task WipeAndStartEmptyAsync(string id)
    {
        await KillAsync(id);
        if (Directory.Exists(this[id].DataDir))
        {
            Directory.Delete(this[id].DataDir, recursive: true);
        }
        Restart(id, members: "");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (string id in _paused.ToList())
        {
            await ResumeAsync(id);
        }
        foreach (NodeProcess process in _processes.Values)
        {
            await process.DisposeAsync();
        }
        _processes.Clear();
        foreach (RaftClient client in _direct.Values)
        {
            client.Dispose();
        }
        Admin.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Each running node's last log lines, for a failure report.</summary>
    public string Logs() => string.Join("\n", _processes.Select(p => $"--- {p.Key} ---\n    " + string.Join("\n    ", p.Value.LastLines.TakeLast(40))));
}
