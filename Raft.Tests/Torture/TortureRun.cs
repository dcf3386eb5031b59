using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Grpc.Core;
using Raft.Engine.StateMachines;
using Raft.Client;
using Raft.Protocol;
using Raft.Tests.Simulation;

namespace Raft.Tests.Torture;

/// <summary>What a torture run found: the report to print and, if it failed, why.</summary>
internal sealed record TortureResult(bool Passed, string Report);

/// <summary>
/// A Jepsen-style run on real processes: five nodes (<see cref="TortureCluster"/>), five clients doing put,
/// linearizable get, delete and compare-and-swap on a few keys (plus puts of keys of their own), and a
/// <see cref="Nemesis"/>. Every operation is recorded with its call and return on one clock and its outcome: ok, failed
/// (a read that got no answer: it has no effect) or unknown (a write that got no answer: it may take effect at any time
/// after its call). Then everything is healed, and the run checks that the history is linearizable, that every
/// acknowledged write of a key of its own is on every node, that all nodes applied the same state, that writes were
/// served again soon after the heal, and that no process died that the nemesis did not kill.
/// </summary>
internal sealed class TortureRun(int seed, TimeSpan duration, Action<string> log)
{
    private const int Clients = 5;
    private static readonly string[] Registers = ["r0", "r1", "r2", "r3"];
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(15);
    private readonly ConcurrentBag<Recorded> _history = [];
    private readonly ConcurrentDictionary<string, string> _acknowledgedOwnKeys = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = new();
    private long _tick;

    /// <summary>One operation as recorded: the history's view, plus wall times for the availability table.</summary>
    private sealed record Recorded(HistoryOp Op, TimeSpan CalledAt, bool Failed);

    public async Task<TortureResult> RunAsync()
    {
        var random = new Random(seed);
        // Every third seed runs with lease reads, so that the nemesis's pauses (SIGSTOP of the leader) test the lease too.
        bool leaseReads = seed % 3 == 0;
        await using var cluster = new TortureCluster(5, leaseReads ? ["--lease-reads", "true"] : []);
        cluster.StartAll();
        _clock.Start();
        var report = new StringBuilder();
        void Line(string text)
        {
            report.AppendLine(text);
            log(text);
        }
        Line($"torture run: seed {seed}, {duration.TotalSeconds:F0} s of faults, 5 node processes{(leaseReads ? " with lease reads" : "")}, {Clients} clients, data in {cluster.Folder}");
        await WaitForWriteAsync(cluster, TimeSpan.FromSeconds(60));

        using var stop = new CancellationTokenSource();
        Task[] clients = [.. Enumerable.Range(0, Clients).Select(i => RunClientAsync(cluster, i, new Random(seed * 31 + i), stop.Token))];
        var nemesis = new Nemesis(cluster, random, _clock, Line);
        Exception? nemesisError = null;
        try
        {
            await nemesis.RunAsync(duration, CancellationToken.None);
        }
        catch (Exception e)
        {
            nemesisError = e; // reported below; the checks still run on what was recorded
        }

        // Heal everything and settle: all processes up, no faults, every node a member again.
        TimeSpan healedAt = _clock.Elapsed;
        foreach (string id in cluster.Ids.Where(id => !cluster.IsRunning(id)))
        {
            cluster.Restart(id);
        }
        await cluster.HealAllAsync();
        bool allMembers = await EnsureMembersAsync(cluster, nemesis);
        TimeSpan? recovery = await WaitForWriteAsync(cluster, RecoveryBound);
        await Task.Delay(TimeSpan.FromSeconds(2)); // clients keep going on the healed cluster
        await stop.CancelAsync();
        await Task.WhenAll(clients);

        var failures = new List<string>();
        if (nemesisError != null)
        {
            failures.Add($"the nemesis failed: {nemesisError}");
        }
        if (!allMembers)
        {
            failures.Add($"not every node could be made a voter again after the heal: {await cluster.ConfigurationAsync()}; last refusal: {nemesis.LastRefusal ?? "none"}");
        }
        if (recovery is null)
        {
            failures.Add($"no write was served within {RecoveryBound.TotalSeconds:F0} s of the heal");
        }
        await FinalReadsAsync(cluster);
        failures.AddRange(await CheckNodesAgreeAsync(cluster));
        failures.AddRange(cluster.UnexpectedExits.Select(e => $"a process died that the nemesis did not kill: {e}"));

        List<HistoryOp> history = [.. _history.Where(r => !r.Failed).Select(r => r.Op)];
        if (!Linearizability.Check(history, out string explanation))
        {
            failures.Add("the history is not linearizable; the smallest failing prefix of that key's operations:\n" + SmallestFailingPrefix(history, explanation));
        }

        Summarize(Line, nemesis.Windows, healedAt, recovery);
        if (failures.Count > 0)
        {
            Line($"FAILED (seed {seed}; replay with RAFT_TORTURE_SEED={seed}):");
            foreach (string failure in failures)
            {
                Line("  - " + failure);
            }
            Line("each node's last log lines:\n" + cluster.Logs());
        }
        else
        {
            Line("passed: linearizable, no acknowledged write lost, all nodes applied the same state, no unexpected exit");
        }
        return new TortureResult(failures.Count == 0, report.ToString());
    }

    private long Now() => Interlocked.Increment(ref _tick);

    private async Task RunClientAsync(TortureCluster cluster, int id, Random random, CancellationToken stop)
    {
        using var client = new RaftClient(cluster.Endpoints.OrderBy(_ => random.Next()), $"torture{id}") { Timeout = TimeSpan.FromSeconds(3) };
        int written = 0;
        string? lastSeen = null;
        while (!stop.IsCancellationRequested)
        {
            string key = Registers[random.Next(Registers.Length)];
            string value = $"c{id}-{++written}";
            int roll = random.Next(100);
            KvCommand command = roll switch
            {
                < 30 => KvCommand.Put(key, value),
                < 60 => KvCommand.Get(key),
                < 70 => KvCommand.Delete(key),
                < 90 => KvCommand.CompareAndSwap(key, random.Next(3) == 0 ? null : lastSeen, value),
                _ => KvCommand.Put($"own-{id}-{written}", value),
            };
            KvResult? result = await ExecuteAsync(client, id, command);
            lastSeen = (command.Operation, result?.Status) switch
            {
                (KvOperation.Get, KvStatus.Ok) or (KvOperation.CompareAndSwap, KvStatus.CompareFailed) => result!.Value,
                (KvOperation.Put or KvOperation.CompareAndSwap, KvStatus.Ok) => command.Value,
                _ => lastSeen,
            };
            if (result?.Status == KvStatus.Ok && command.Key.StartsWith("own-", StringComparison.Ordinal))
            {
                _acknowledgedOwnKeys[command.Key] = command.Value!;
            }
            await Task.Delay(random.Next(5, 25), CancellationToken.None);
        }
    }

    /// <summary>Runs one operation and records it; null when it got no answer.</summary>
    private async Task<KvResult?> ExecuteAsync(RaftClient client, int clientId, KvCommand command)
    {
        TimeSpan calledAt = _clock.Elapsed;
        long call = Now();
        KvResult? result = null;
        try
        {
            result = command.Operation switch
            {
                KvOperation.Put => await PutAsync(client, command),
                KvOperation.Get => await GetAsync(client, command),
                KvOperation.Delete => await DeleteAsync(client, command),
                _ => await SwapAsync(client, command),
            };
        }
        catch (RpcException)
        {
            // No answer. A read has no effect; a write may still take effect: its outcome is unknown.
        }
        bool failed = result is null && command.Operation == KvOperation.Get;
        _history.Add(new Recorded(new HistoryOp(clientId, call, result is null ? long.MaxValue : Now(), command, result), calledAt, failed));
        return result;
    }

    private static async Task<KvResult> PutAsync(RaftClient client, KvCommand command)
    {
        PutReply reply = await client.PutAsync(command.Key, command.Value!);
        return new KvResult(KvStatus.Ok, reply.HasPrevious ? reply.Previous : null);
    }

    private static async Task<KvResult> GetAsync(RaftClient client, KvCommand command)
    {
        GetReply reply = await client.GetAsync(command.Key);
        return reply.Found ? new KvResult(KvStatus.Ok, reply.Value) : new KvResult(KvStatus.NotFound);
    }

    private static async Task<KvResult> DeleteAsync(RaftClient client, KvCommand command)
    {
        DeleteReply reply = await client.DeleteAsync(command.Key);
        return reply.Deleted ? new KvResult(KvStatus.Ok, reply.HasPrevious ? reply.Previous : null) : new KvResult(KvStatus.NotFound);
    }

    private static async Task<KvResult> SwapAsync(RaftClient client, KvCommand command)
    {
        CompareAndSwapReply reply = await client.CompareAndSwapAsync(command.Key, command.Expected, command.Value);
        string? current = reply.HasCurrent ? reply.Current : null;
        return new KvResult(reply.Swapped ? KvStatus.Ok : KvStatus.CompareFailed, current);
    }

    /// <summary>Waits for a write to succeed; returns how long it took, or null past <paramref name="bound"/>.</summary>
    private async Task<TimeSpan?> WaitForWriteAsync(TortureCluster cluster, TimeSpan bound)
    {
        var waited = Stopwatch.StartNew();
        using var client = new RaftClient(cluster.Endpoints, "probe") { Timeout = TimeSpan.FromSeconds(2) };
        while (waited.Elapsed < bound)
        {
            try
            {
                await client.PutAsync("probe", $"{_clock.Elapsed.TotalMilliseconds:F0}");
                return waited.Elapsed;
            }
            catch (RpcException)
            {
                await Task.Delay(50);
            }
        }
        return null;
    }

    private static async Task<bool> EnsureMembersAsync(TortureCluster cluster, Nemesis nemesis)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (await nemesis.TryAddBackAsync())
            {
                string? leader = await cluster.LeaderAsync();
                NodeStatus? status = leader is null ? null : await cluster.StatusAsync(leader);
                if (status != null && cluster.Ids.All(id => status.Members.Any(m => m.Id == id && m.Voter)))
                {
                    return true;
                }
            }
            await Task.Delay(250);
        }
        return false;
    }

    /// <summary>One linearizable read of every register after the heal, recorded: a lost write shows up here at the latest.</summary>
    private async Task FinalReadsAsync(TortureCluster cluster)
    {
        using var client = new RaftClient(cluster.Endpoints, "final") { Timeout = TimeSpan.FromSeconds(10) };
        foreach (string key in Registers)
        {
            await ExecuteAsync(client, Clients, KvCommand.Get(key));
        }
    }

    /// <summary>Every node applied the same state, and every acknowledged write of a client's own keys is on every node.</summary>
    private async Task<List<string>> CheckNodesAgreeAsync(TortureCluster cluster)
    {
        var problems = new List<string>();
        // Converged: every node has applied what the leader has committed.
        var clock = Stopwatch.StartNew();
        NodeStatus?[] statuses = [];
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            statuses = await Task.WhenAll(cluster.Ids.Select(cluster.StatusAsync));
            NodeStatus? leader = statuses.FirstOrDefault(s => s?.Role == "Leader");
            if (leader != null && statuses.All(s => s != null && s.AppliedIndex >= leader.CommitIndex))
            {
                break;
            }
            await Task.Delay(200);
        }
        if (statuses.Any(s => s is null) || statuses.Select(s => s!.AppliedIndex).Distinct().Count() > 1)
        {
            // Applied indexes may differ by the last heartbeat's worth; what matters is the data, compared below.
            log("applied indexes after settling: " + string.Join(", ", statuses.Select((s, i) => $"n{i + 1}={s?.AppliedIndex.ToString(CultureInfo.InvariantCulture) ?? "down"}")));
        }
        string[] keys = [.. Registers, .. _acknowledgedOwnKeys.Keys.Order(StringComparer.Ordinal)];
        Dictionary<string, string?>? reference = null;
        string referenceId = "";
        foreach (string id in cluster.Ids)
        {
            var data = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (string key in keys)
            {
                GetReply reply = await cluster.Direct(id).GetAsync(key, stale: true);
                data[key] = reply.Found ? reply.Value : null;
            }
            foreach ((string key, string value) in _acknowledgedOwnKeys)
            {
                if (data[key] != value)
                {
                    problems.Add($"{id} lost the acknowledged write {key}={value} (it holds {data[key] ?? "nothing"})");
                }
            }
            if (reference is null)
            {
                (reference, referenceId) = (data, id);
            }
            else if (keys.FirstOrDefault(k => reference[k] != data[k]) is { } differing)
            {
                problems.Add($"{id} and {referenceId} applied different states: {differing} is {data[differing] ?? "absent"} on {id}, {reference[differing] ?? "absent"} on {referenceId}");
            }
        }
        return problems;
    }

    private static string SmallestFailingPrefix(List<HistoryOp> history, string explanation)
    {
        string key = explanation.Split('\'')[1];
        List<HistoryOp> ops = [.. history.Where(o => o.Command.Key == key).OrderBy(o => o.Call)];
        // The first prefix (in call order) that already has no linearization: its last operations are the culprits.
        int low = 1, high = ops.Count;
        while (low < high)
        {
            int middle = (low + high) / 2;
            if (Linearizability.Check(ops[..middle], out _))
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }
        Linearizability.Check(ops[..low], out string prefix);
        string[] lines = prefix.Split('\n');
        return string.Join("\n", lines.Take(1).Concat(lines.Skip(1).TakeLast(40)));
    }

    private void Summarize(Action<string> line, List<FaultWindow> windows, TimeSpan healedAt, TimeSpan? recovery)
    {
        Recorded[] all = [.. _history.OrderBy(r => r.CalledAt)];
        int ok = all.Count(r => r.Op.Result != null);
        int failed = all.Count(r => r.Failed);
        int unknown = all.Count(r => r.Op.Result is null && !r.Failed);
        line($"operations: {all.Length} ({ok} ok, {failed} failed reads, {unknown} writes of unknown outcome); {_acknowledgedOwnKeys.Count} acknowledged writes of own keys checked on every node");
        line($"faults: {windows.Count} ({string.Join(", ", windows.GroupBy(w => w.Kind).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"))})");
        line("availability per kind of fault (operations answered / called during its windows):");
        foreach (IGrouping<FaultKind, FaultWindow> kind in windows.GroupBy(w => w.Kind).OrderBy(g => g.Key))
        {
            Recorded[] during = [.. all.Where(r => kind.Any(w => r.CalledAt >= w.Start && r.CalledAt < w.Healed))];
            double share = during.Length == 0 ? 1 : (double)during.Count(r => r.Op.Result != null) / during.Length;
            line($"  {kind.Key,-14} {share,6:P0} of {during.Length}");
        }
        Recorded[] calm = [.. all.Where(r => !windows.Any(w => r.CalledAt >= w.Start && r.CalledAt < w.Healed))];
        line($"  {"between faults",-14} {(calm.Length == 0 ? 1 : (double)calm.Count(r => r.Op.Result != null) / calm.Length),6:P0} of {calm.Length}");
        // After each heal: how long until the next answered write.
        var gaps = windows.Select(w => all.FirstOrDefault(r => r.CalledAt >= w.Healed && r.Op.Result != null && r.Op.Command.Operation != KvOperation.Get) is { } first ? first.CalledAt - w.Healed : (TimeSpan?)null)
            .Where(g => g != null).Select(g => g!.Value.TotalMilliseconds).Order().ToList();
        if (gaps.Count > 0)
        {
            line($"first answered write after a heal: median {gaps[gaps.Count / 2]:F0} ms, max {gaps[^1]:F0} ms");
        }
        line($"after the final heal at {healedAt.TotalSeconds:F1} s: {(recovery is { } r ? $"a write was served after {r.TotalMilliseconds:F0} ms" : "no write was served")}");
    }
}
