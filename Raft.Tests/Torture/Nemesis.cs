using System.Diagnostics;
using Raft.Protocol;

namespace Raft.Tests.Torture;

public enum FaultKind
{
    KillLeader,
    KillAny,
    PauseLeader,
    PauseAny,
    IsolateLeader,
    SplitTwoThree,
    OneWayCut,
    Bridge,
    RemoveAndAdd,
    Transfer,
    Snapshot,
    Unreliable,
}

/// <summary>One fault the nemesis applied: what, to whom, from when until it was healed (run time).</summary>
internal sealed record FaultWindow(FaultKind Kind, string Detail, TimeSpan Start, TimeSpan Healed);

/// <summary>
/// The faults, one at a time, chosen by a seeded random: apply, hold for a while, heal, let the cluster settle, next.
/// The leader is the favourite target (its loss is what clients feel). Which faults and in what order follow from the
/// seed; their timing meets real processes, so a run is reproducible in its plan, not to the millisecond.
/// </summary>
internal sealed class Nemesis(TortureCluster cluster, Random random, Stopwatch clock, Action<string> log)
{
    private static readonly (FaultKind Kind, int Weight)[] Weights =
    [
        (FaultKind.KillLeader, 3), (FaultKind.KillAny, 1), (FaultKind.PauseLeader, 2), (FaultKind.PauseAny, 1),
        (FaultKind.IsolateLeader, 2), (FaultKind.SplitTwoThree, 2), (FaultKind.OneWayCut, 1), (FaultKind.Bridge, 1),
        (FaultKind.RemoveAndAdd, 1), (FaultKind.Transfer, 1), (FaultKind.Snapshot, 1), (FaultKind.Unreliable, 2),
    ];

    public List<FaultWindow> Windows { get; } = [];

    /// <summary>Why the last attempt to add a member back failed, for the report.</summary>
    public string? LastRefusal { get; private set; }

    /// <summary>Members the nemesis removed and has not managed to add back yet.</summary>
    private readonly HashSet<string> _outOfCluster = new(StringComparer.Ordinal);

    public async Task RunAsync(TimeSpan duration, CancellationToken stop)
    {
        while (clock.Elapsed < duration && !stop.IsCancellationRequested)
        {
            FaultKind kind = Pick();
            TimeSpan start = clock.Elapsed;
            string detail = await ApplyAsync(kind, Hold());
            Windows.Add(new FaultWindow(kind, detail, start, clock.Elapsed));
            log($"{start.TotalSeconds,7:F1}s {kind,-14} {detail} (healed at {clock.Elapsed.TotalSeconds:F1}s)");
            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(500, 1500)), CancellationToken.None); // settle
        }
    }

    private FaultKind Pick()
    {
        int total = Weights.Sum(w => w.Weight);
        int roll = random.Next(total);
        foreach ((FaultKind kind, int weight) in Weights)
        {
            if ((roll -= weight) < 0)
            {
                return kind;
            }
        }
        return FaultKind.KillAny;
    }

    /// <summary>How long a fault is held: longer than an election timeout (300 ms at most), so that it bites.</summary>
    private TimeSpan Hold() => TimeSpan.FromMilliseconds(random.Next(800, 3500));

    private string Any() => cluster.Ids.ElementAt(random.Next(cluster.Specs.Count));

    private List<string> Shuffled() => [.. cluster.Ids.OrderBy(_ => random.Next())];

    private async Task<string> TargetLeaderAsync() => await cluster.LeaderAsync() ?? Any();

    private async Task<string> ApplyAsync(FaultKind kind, TimeSpan hold)
    {
        if (_outOfCluster.Count > 0 && await TryAddBackAsync())
        {
            return $"added back {string.Join(",", _outOfCluster)}";
        }
        switch (kind)
        {
            case FaultKind.KillLeader:
            case FaultKind.KillAny:
            {
                string target = kind == FaultKind.KillLeader ? await TargetLeaderAsync() : Any();
                await cluster.KillAsync(target);
                await Task.Delay(hold);
                cluster.Restart(target, members: _outOfCluster.Contains(target) ? "" : null);
                return $"SIGKILL {target}, restarted";
            }
            case FaultKind.PauseLeader:
            case FaultKind.PauseAny:
            {
                string target = kind == FaultKind.PauseLeader ? await TargetLeaderAsync() : Any();
                await cluster.PauseAsync(target);
                await Task.Delay(hold);
                await cluster.ResumeAsync(target);
                return $"SIGSTOP {target} for {hold.TotalMilliseconds:F0} ms, SIGCONT";
            }
            case FaultKind.IsolateLeader:
            {
                string target = await TargetLeaderAsync();
                await cluster.SetFaultsAsync(target, new FaultSpec { Isolate = true });
                await Task.Delay(hold);
                await cluster.HealAllAsync();
                return $"isolated {target}";
            }
            case FaultKind.SplitTwoThree:
            {
                List<string> ids = Shuffled();
                (List<string> minority, List<string> majority) = (ids[..2], ids[2..]);
                await CutAsync(minority, majority);
                await Task.Delay(hold);
                await cluster.HealAllAsync();
                return $"split {string.Join(",", minority)} | {string.Join(",", majority)}";
            }
            case FaultKind.Bridge:
            {
                List<string> ids = Shuffled();
                (List<string> left, string bridge, List<string> right) = (ids[..2], ids[2], ids[3..]);
                await CutAsync(left, right);
                await Task.Delay(hold);
                await cluster.HealAllAsync();
                return $"bridge {string.Join(",", left)} | {bridge} | {string.Join(",", right)}";
            }
            case FaultKind.OneWayCut:
            {
                string from = await TargetLeaderAsync();
                string to = cluster.Ids.Where(id => id != from).ElementAt(random.Next(cluster.Specs.Count - 1));
                await cluster.SetFaultsAsync(from, new FaultSpec { CutOutgoing = { to } });
                await Task.Delay(hold);
                await cluster.HealAllAsync();
                return $"one-way cut {from} -> {to}";
            }
            case FaultKind.Unreliable:
            {
                double drop = Math.Round(0.05 + (random.NextDouble() * 0.2), 2);
                int delay = random.Next(5, 40);
                foreach (string id in cluster.Ids)
                {
                    await cluster.SetFaultsAsync(id, new FaultSpec { DropRate = drop, MaxDelayMs = delay });
                }
                await Task.Delay(hold);
                await cluster.HealAllAsync();
                return $"every link drops {drop:P0} and delays up to {delay} ms";
            }
            case FaultKind.Transfer:
            {
                string? leader = await cluster.LeaderAsync();
                string target = cluster.Ids.Where(id => id != leader).ElementAt(random.Next(cluster.Specs.Count - 1));
                string? refused = await cluster.TryAdminAsync(async (admin, token) =>
                    await admin.TransferLeadershipAsync(new TransferLeadershipRequest { Id = target }, cancellationToken: token));
                return $"transfer {leader} -> {target}: {refused ?? "done"}";
            }
            case FaultKind.Snapshot:
            {
                string target = Any();
                bool done;
                try
                {
                    await cluster.Admin.AdminOf(cluster[target].GrpcUrl).TakeSnapshotAsync(new TakeSnapshotRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                    done = true;
                }
                catch (Grpc.Core.RpcException)
                {
                    done = false;
                }
                return $"snapshot on {target}: {(done ? "taken" : "refused")}";
            }
            default:
            {
                string target = random.Next(3) == 0 ? await TargetLeaderAsync() : Any();
                string? refused = await cluster.TryAdminAsync(async (admin, token) =>
                    await admin.RemoveServerAsync(new RemoveServerRequest { Id = target }, cancellationToken: token));
                if (refused != null)
                {
                    return $"remove {target}: {refused}; {await cluster.ConfigurationAsync()}";
                }
                _outOfCluster.Add(target);
                await cluster.WipeAndStartEmptyAsync(target);
                await Task.Delay(hold);
                bool added = await TryAddBackAsync();
                return $"removed {target}, wiped it, {(added ? "added it back" : "could not add it back yet")}";
            }
        }
    }

    private async Task CutAsync(List<string> one, List<string> other)
    {
        foreach (string id in one)
        {
            await cluster.SetFaultsAsync(id, new FaultSpec { CutPeers = { other } });
        }
        foreach (string id in other)
        {
            await cluster.SetFaultsAsync(id, new FaultSpec { CutPeers = { one } });
        }
    }

    /// <summary>Adds the removed members back (started empty, in join mode); true if all are members again.</summary>
    public async Task<bool> TryAddBackAsync()
    {
        foreach (string id in _outOfCluster.ToList())
        {
            if (!cluster.IsRunning(id))
            {
                cluster.Restart(id, members: "");
            }
            string? refused = await cluster.TryAdminAsync(async (admin, token) =>
                await admin.AddServerAsync(new AddServerRequest { Id = id, Address = cluster[id].GrpcUrl }, cancellationToken: token));
            if (refused is null || (await cluster.MembersAsync())?.Contains(id) == true)
            {
                _outOfCluster.Remove(id);
            }
            else
            {
                LastRefusal = $"adding {id}: {refused}";
            }
        }
        return _outOfCluster.Count == 0;
    }
}
