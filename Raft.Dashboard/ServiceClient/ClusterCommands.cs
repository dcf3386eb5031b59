using Grpc.Core;
using Grpc.Net.Client;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.Model;
using Raft.Engine.StateMachines;
using Raft.Client;
using Raft.Client.Events;
using Raft.Protocol;

namespace Raft.Dashboard.ServiceClient;

/// <summary>
/// Sends the user's actions to the nodes over gRPC: key-value commands through a <see cref="RaftClient"/> (which follows
/// leader redirects), admin calls to the leader or to one node, and node crashes and restarts to the embedded cluster.
/// Every refusal comes back as a readable outcome.
/// </summary>
public sealed class ClusterCommands(INodeDirectory directory, IClusterMonitor monitor, NodeCredentials? credentials = null) : IClusterCommands, IDisposable
{
    private readonly NodeCredentials _credentials = credentials ?? NodeCredentials.None;
    private readonly Lock _lock = new();
    private RaftClient? _client;
    private string _clientEndpoints = "";
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    private RaftClient Client
    {
        get
        {
            lock (_lock)
            {
                string endpoints = string.Join(",", directory.Nodes.Select(n => n.GrpcUrl));
                if (_client is null || endpoints != _clientEndpoints)
                {
                    _client?.Dispose();
                    _client = new RaftClient(endpoints.Split(','), "dashboard")
                    {
                        Timeout = TimeSpan.FromSeconds(8), Token = _credentials.Token, CaFile = _credentials.CaFile,
                    };
                    _clientEndpoints = endpoints;
                }
                return _client;
            }
        }
    }

    private Admin.AdminClient AdminOf(string id) => new(ChannelOf(id));

    private GrpcChannel ChannelOf(string id)
    {
        NodeEndpoint node = directory.Nodes.FirstOrDefault(n => n.Id == id) ?? throw new InvalidOperationException($"unknown node {id}");
        lock (_lock)
        {
            if (!_channels.TryGetValue(node.GrpcUrl, out GrpcChannel? channel))
            {
                channel = GrpcChannel.ForAddress(node.GrpcUrl, ChannelOptions.For(node.GrpcUrl, _credentials.Token, _credentials.CaFile));
                _channels[node.GrpcUrl] = channel;
            }
            return channel;
        }
    }

    private string ServedBy(string? endpoint) =>
        directory.Nodes.FirstOrDefault(n => n.GrpcUrl == endpoint)?.Id ?? endpoint ?? "?";

    private static async Task<CommandOutcome> Guard(Func<Task<CommandOutcome>> action)
    {
        try
        {
            // Off the page's circuit: a slow action (a node that takes seconds to stop) never holds up the page.
            return await Task.Run(action);
        }
        catch (RpcException e)
        {
            return CommandOutcome.Failed(Explain(e));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or HttpRequestException or TimeoutException)
        {
            return CommandOutcome.Failed(e.Message);
        }
    }

    /// <summary>A refusal in plain words: what happened to the cluster, then the status as the node gave it.</summary>
    internal static string Explain(RpcException e)
    {
        string detail = e.Status.Detail ?? "";
        string? plain = e.StatusCode switch
        {
            StatusCode.Unavailable when detail.Contains("Error connecting", StringComparison.OrdinalIgnoreCase) || detail.Contains("subchannel", StringComparison.OrdinalIgnoreCase)
                => "No node answers: they are all down or unreachable.",
            StatusCode.Unavailable when detail.Contains("no leader is known", StringComparison.OrdinalIgnoreCase)
                => "No leader is known: a majority of the servers may be down or cut off from each other.",
            StatusCode.DeadlineExceeded => "No answer in time: the leader may have lost its majority, or the cluster is paused.",
            _ => null,
        };
        return plain is null ? $"{e.StatusCode}: {detail}" : $"{plain} ({e.StatusCode}: {detail})";
    }

    /// <summary>
    /// From what the page knows (nodes stopped here, or whose event stream is down): why a write cannot commit now, or
    /// null. Said at once, rather than after the client's timeout as "no node answers" while one still does.
    /// </summary>
    internal static string? NoMajority(ClusterSnapshot cluster)
    {
        StatusView? reference = cluster.Leader?.Status ?? cluster.Nodes.Where(n => n.Status != null).MaxBy(n => n.Status!.Term)?.Status;
        if (reference is null)
        {
            return null;
        }
        string[] voters = [.. reference.Members.Where(m => m.Voter).Select(m => m.Id).Order(StringComparer.Ordinal)];
        string[] unreachable = [.. voters.Where(id => cluster[id] is not { Stopped: false, Connected: true })];
        int majority = voters.Length / 2 + 1;
        if (voters.Length - unreachable.Length >= majority)
        {
            return null;
        }
        return $"No majority: {string.Join(", ", unreachable)} {(unreachable.Length == 1 ? "is" : "are")} down or unreachable, "
            + $"so {voters.Length - unreachable.Length} of {voters.Length} voters answer and a write needs {majority}. Restart or heal one to write again.";
    }

    /// <summary>A write: refused at once when the page knows no majority can store it.</summary>
    private Task<CommandOutcome> Write(Func<Task<CommandOutcome>> action) =>
        NoMajority(monitor.Current) is { } why ? Task.FromResult(CommandOutcome.Failed(why)) : Guard(action);

    private List<string> Redirects(RaftClient client) =>
        client.LastRedirects.Select(r => string.Join(" -> ", r.Split(" -> ").Select(ServedBy))).ToList();

    /// <summary>A key's whole value, read through the leader (linearizable); null when the key is absent.</summary>
    public async Task<string?> ReadValueAsync(string key, CancellationToken cancellationToken = default)
    {
        GetReply reply = await Client.GetAsync(key, cancellationToken: cancellationToken);
        return reply.Found ? reply.Value : null;
    }

    public Task<CommandOutcome> PutAsync(string key, string value) => Write(async () =>
    {
        RaftClient client = Client;
        PutReply reply = await client.PutAsync(key, value);
        return new CommandOutcome(true, reply.HasPrevious ? $"put {key}={ValueText.Show(value)} (was {ValueText.Show(reply.Previous)})" : $"put {key}={ValueText.Show(value)}", reply.ServedBy, Redirects(client));
    });

    public Task<CommandOutcome> PutToAsync(string nodeId, string key, string value) => Guard(async () =>
    {
        // To this node only: a follower's refusal (with its leader) is the answer, not followed.
        PutReply reply = await new KeyValue.KeyValueClient(ChannelOf(nodeId)).PutAsync(new PutRequest { Key = key, Value = value }, deadline: DateTime.UtcNow.AddSeconds(10));
        return new CommandOutcome(true, $"put {key}={ValueText.Show(value)} at {nodeId}", reply.ServedBy);
    });

    public Task<CommandOutcome> GetAsync(string key) => Guard(async () =>
    {
        RaftClient client = Client;
        GetReply reply = await client.GetAsync(key);
        return new CommandOutcome(true, reply.Found ? $"{key} = {ValueText.Show(reply.Value)}" : $"{key} is not set", reply.ServedBy, Redirects(client));
    });

    public Task<CommandOutcome> DeleteAsync(string key) => Write(async () =>
    {
        RaftClient client = Client;
        DeleteReply reply = await client.DeleteAsync(key);
        return new CommandOutcome(true, reply.Deleted ? $"deleted {key} (was {ValueText.Show(reply.Previous)})" : $"{key} was not set", reply.ServedBy, Redirects(client));
    });

    public Task<CommandOutcome> CompareAndSwapAsync(string key, string? expected, string? value) => Write(async () =>
    {
        RaftClient client = Client;
        CompareAndSwapReply reply = await client.CompareAndSwapAsync(key, expected, value);
        string text = reply.Swapped
            ? $"swapped {key}: {expected ?? "(absent)"} -> {value ?? "(absent)"}"
            : $"not swapped: {key} is {(reply.HasCurrent ? reply.Current : "(absent)")}";
        return new CommandOutcome(reply.Swapped, text, reply.ServedBy, Redirects(client));
    });

    public Task<CommandOutcome> AddServerAsync() => Guard(async () =>
    {
        if (!directory.CanManageNodes)
        {
            return CommandOutcome.Failed("this dashboard does not run the nodes: start the new node where the cluster runs, then add it with Raft.Node add");
        }
        NodeEndpoint node = await directory.StartNewNodeAsync();
        try
        {
            AdminReply reply = await Client.LeaderAdminAsync(async (admin, token) =>
                await admin.AddServerAsync(new AddServerRequest { Id = node.Id, Address = node.GrpcUrl }, cancellationToken: token));
            return new CommandOutcome(true, reply.Message, node.Id);
        }
        catch (RpcException e)
        {
            // A failed call does not mean the server did not join: leadership may have moved after the change was
            // appended, and a later leader finishes (or undoes) it. So the cluster decides: a voter is a success,
            // a server no node has in its configuration is stopped, and one still joining keeps running.
            for (DateTime deadline = DateTime.UtcNow.AddSeconds(10); ; await Task.Delay(250))
            {
                Membership seen = await MembershipOfAsync(node.Id);
                if (seen == Membership.Voter)
                {
                    return new CommandOutcome(true, $"{node.Id} ({node.GrpcUrl}) is a voter (the request itself failed: {Explain(e)})", node.Id);
                }
                if (seen == Membership.Absent)
                {
                    await directory.RetireAsync(node.Id);
                    throw;
                }
                if (DateTime.UtcNow > deadline)
                {
                    return CommandOutcome.Failed($"{Explain(e)}; {node.Id} is in the configuration, so it keeps running: the leader finishes or undoes its joining");
                }
            }
        }
    });

    public Task<CommandOutcome> RemoveServerAsync(string id) => Guard(async () =>
    {
        string message;
        try
        {
            AdminReply reply = await Client.LeaderAdminAsync(async (admin, token) =>
                await admin.RemoveServerAsync(new RemoveServerRequest { Id = id }, cancellationToken: token));
            message = reply.Message;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            // Also the answer to a retry after "leadership changed" once the first attempt had committed.
            if (await MembershipOfAsync(id) != Membership.Absent)
            {
                throw;
            }
            message = $"{id} is not a member";
        }
        if (directory.CanManageNodes)
        {
            await directory.RetireAsync(id);
        }
        return new CommandOutcome(true, message, id);
    });

    private enum Membership { Absent, Joining, Voter, Unknown }

    /// <summary>
    /// Where <paramref name="id"/> stands, as the reachable nodes see it: a voter for the leader and a majority of the
    /// nodes that answer; absent from every node's configuration; joining in between; unknown if no node answers.
    /// </summary>
    private async Task<Membership> MembershipOfAsync(string id)
    {
        List<NodeStatus> statuses = [.. (await Client.StatusOfAllAsync()).Select(s => s.Status).OfType<NodeStatus>()];
        if (statuses.Count == 0)
        {
            return Membership.Unknown;
        }
        if (!statuses.Any(s => s.Members.Any(m => m.Id == id)))
        {
            return Membership.Absent;
        }
        bool IsVoterFor(NodeStatus s) => s.Members.Any(m => m.Id == id && m.Voter);
        bool leaderSaysVoter = statuses.Any(s => s.Role == "Leader" && IsVoterFor(s));
        return leaderSaysVoter && statuses.Count(IsVoterFor) * 2 > statuses.Count ? Membership.Voter : Membership.Joining;
    }

    public Task<CommandOutcome> TransferLeadershipAsync(string id) => Guard(async () =>
    {
        AdminReply reply = await Client.LeaderAdminAsync(async (admin, token) =>
            await admin.TransferLeadershipAsync(new TransferLeadershipRequest { Id = id }, cancellationToken: token));
        return new CommandOutcome(true, reply.Message, id);
    });

    public Task<CommandOutcome> TakeSnapshotAsync(string id) => Guard(async () =>
    {
        AdminReply reply = await AdminOf(id).TakeSnapshotAsync(new TakeSnapshotRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
        return new CommandOutcome(true, $"{id}: {reply.Message}", id);
    });

    public Task<CommandOutcome> CrashAsync(string id) => Guard(async () =>
    {
        await directory.CrashAsync(id);
        return new CommandOutcome(true, $"{id} crashed", id);
    });

    public Task<CommandOutcome> RestartAsync(string id) => Guard(async () =>
    {
        await directory.RestartAsync(id);
        return new CommandOutcome(true, $"{id} restarted from its data folder", id);
    });

    /// <summary>Cuts one link: each side drops the other's traffic.</summary>
    public Task<CommandOutcome> CutLinkAsync(string a, string b) => Guard(async () =>
    {
        await ChangeCutAsync(a, b, cut: true);
        await ChangeCutAsync(b, a, cut: true);
        return new CommandOutcome(true, $"cut the link {a} - {b}");
    });

    public Task<CommandOutcome> HealLinkAsync(string a, string b) => Guard(async () =>
    {
        await ChangeCutAsync(a, b, cut: false);
        await ChangeCutAsync(b, a, cut: false);
        return new CommandOutcome(true, $"healed the link {a} - {b}");
    });

    private async Task ChangeCutAsync(string node, string peer, bool cut)
    {
        NodeStatus status = await AdminOf(node).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(3));
        FaultSpec spec = status.Faults.Clone();
        spec.CutPeers.Remove(peer);
        if (cut)
        {
            spec.CutPeers.Add(peer);
        }
        else
        {
            spec.Isolate = false;
        }
        await AdminOf(node).SetFaultsAsync(spec, deadline: DateTime.UtcNow.AddSeconds(3));
    }

    public Task<CommandOutcome> IsolateAsync(string id) => Guard(async () =>
    {
        await AdminOf(id).SetFaultsAsync(new FaultSpec { Isolate = true }, deadline: DateTime.UtcNow.AddSeconds(3));
        return new CommandOutcome(true, $"{id} is isolated from every peer", id);
    });

    public Task<CommandOutcome> HealNodeAsync(string id) => Guard(async () =>
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(3);
        FaultSpec own = (await AdminOf(id).GetStatusAsync(new StatusRequest(), deadline: deadline)).Faults.Clone();
        own.Isolate = false;
        own.CutPeers.Clear();
        own.CutOutgoing.Clear();
        await AdminOf(id).SetFaultsAsync(own, deadline: deadline);
        // The other side of each cut: a link is cut when either end drops the other's traffic.
        foreach (string other in monitor.Current.Nodes.Where(n => n.Connected && n.Id != id).Select(n => n.Id))
        {
            FaultSpec spec = (await AdminOf(other).GetStatusAsync(new StatusRequest(), deadline: deadline)).Faults.Clone();
            if (spec.CutPeers.Remove(id) | spec.CutOutgoing.Remove(id))
            {
                await AdminOf(other).SetFaultsAsync(spec, deadline: deadline);
            }
        }
        return new CommandOutcome(true, $"healed the links of {id}", id);
    });

    public Task<CommandOutcome> HealAllAsync() => Guard(async () =>
    {
        var running = monitor.Current.Nodes.Where(n => n.Connected).Select(n => n.Id).ToList();
        await Task.WhenAll(running.Select(async id => await AdminOf(id).HealAsync(new HealRequest(), deadline: DateTime.UtcNow.AddSeconds(3))));
        return new CommandOutcome(true, $"healed every link ({string.Join(", ", running)})");
    });

    public void Dispose()
    {
        _client?.Dispose();
        foreach (GrpcChannel channel in _channels.Values)
        {
            channel.Dispose();
        }
    }
}
