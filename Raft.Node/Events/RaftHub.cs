using Raft.Client.Events;
using Microsoft.AspNetCore.SignalR;
using Raft.Node.Hosting;

namespace Raft.Node.Events;

/// <summary>
/// The node's live event stream at <see cref="HubContract.Path"/>; its methods and messages are named in
/// <see cref="HubContract"/>.
/// </summary>
public sealed class RaftHub(EventStreamer streamer, ClusterMember member) : Hub
{
    public override Task OnConnectedAsync()
    {
        streamer.SubscriberConnected();
        return base.OnConnectedAsync();
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        streamer.SubscriberDisconnected();
        return base.OnDisconnectedAsync(exception);
    }

    public Task<FullState> GetState() => streamer.GetFullStateAsync(Context.ConnectionAborted);

    public IReadOnlyList<KeyValuePair<string, string>> GetData() => member.StateMachine.Snapshot();

    /// <summary>Turns the (high-volume) stream of peer messages on or off: "message-sent" and "message-received" changes.</summary>
    public void TraceMessages(bool enabled) => member.Tracer.Enabled = enabled;
}
