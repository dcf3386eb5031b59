using System.Collections.Concurrent;
using Raft.Engine.Consensus;

namespace Raft.Engine.Hosting;

/// <summary>
/// Connects <see cref="RaftNode"/>s in one process, for tests and demos: each node gets a transport from
/// <see cref="TransportFor"/> and registers itself with <see cref="Attach"/>. Links can be cut to make partitions.
/// </summary>
public sealed class InMemoryNetwork
{
    private readonly ConcurrentDictionary<string, RaftNode> _nodes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string From, string To), bool> _cut = new();

    public ITransport TransportFor(string nodeId) => new Transport(this, nodeId);

    public void Attach(RaftNode node) => _nodes[node.Id] = node;

    public void Detach(string nodeId) => _nodes.TryRemove(nodeId, out _);

    /// <summary>Drops traffic in both directions between two nodes.</summary>
    public void Cut(string a, string b)
    {
        _cut[(a, b)] = true;
        _cut[(b, a)] = true;
    }

    /// <summary>Cuts every link of one node.</summary>
    public void Isolate(string nodeId)
    {
        foreach (string other in _nodes.Keys)
        {
            if (other != nodeId)
            {
                Cut(nodeId, other);
            }
        }
    }

    public void HealAll() => _cut.Clear();

    private void Deliver(RaftMessage message)
    {
        if (!_cut.ContainsKey((message.From, message.To)) && _nodes.TryGetValue(message.To, out RaftNode? node))
        {
            node.Receive(message);
        }
    }

    private sealed class Transport(InMemoryNetwork network, string nodeId) : ITransport
    {
        public void Send(RaftMessage message)
        {
            if (message.From != nodeId)
            {
                throw new ArgumentException($"transport of {nodeId} asked to send a message from {message.From}", nameof(message));
            }
            network.Deliver(message);
        }
    }
}
