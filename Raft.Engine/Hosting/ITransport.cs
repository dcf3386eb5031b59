using Raft.Engine.Consensus;

namespace Raft.Engine.Hosting;

/// <summary>
/// Carries messages to peers. Delivery is best effort: Raft tolerates lost, duplicated and reordered messages.
/// <see cref="Send"/> must not block the node's loop (queue and return). Incoming messages go to <see cref="RaftNode.Receive"/>.
/// </summary>
public interface ITransport
{
    void Send(RaftMessage message);
}
