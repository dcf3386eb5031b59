using System.Diagnostics.Metrics;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;

namespace Raft.Node.Metrics;

/// <summary>The node's instruments (System.Diagnostics.Metrics), exported in the Prometheus format at /metrics.</summary>
public sealed class NodeMetrics : IDisposable
{
    public const string MeterName = "Raft.Node";
    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _proposals;
    private readonly Counter<long> _messagesSent;
    private readonly Counter<long> _bytesSent;
    private readonly Counter<long> _messagesReceived;
    private readonly Counter<long> _bytesReceived;
    private readonly Histogram<double> _writeLatency;
    private readonly Histogram<long> _persistBatch;
    private readonly Histogram<double> _persistDuration;
    private readonly Counter<long> _accessRefused;
    private Func<RaftNodeStatus?> _status = () => null;

    public NodeMetrics()
    {
        _proposals = _meter.CreateCounter<long>("raft_proposals", description: "Client commands proposed on this node, by outcome");
        _messagesSent = _meter.CreateCounter<long>("raft_peer_messages_sent", description: "Peer messages sent, by kind");
        _bytesSent = _meter.CreateCounter<long>("raft_peer_bytes_sent", "By", "Peer message bytes sent, by kind");
        _messagesReceived = _meter.CreateCounter<long>("raft_peer_messages_received", description: "Peer messages received, by kind");
        _bytesReceived = _meter.CreateCounter<long>("raft_peer_bytes_received", "By", "Peer message bytes received, by kind");
        _writeLatency = _meter.CreateHistogram<double>("raft_write_latency", "ms", "From proposal to applied answer, for client writes");
        _persistBatch = _meter.CreateHistogram<long>("raft_persist_batch_entries", description: "Entries written per durable save (one fsync)");
        _persistDuration = _meter.CreateHistogram<double>("raft_persist_duration", "ms", "Time of one durable save");
        _accessRefused = _meter.CreateCounter<long>("raft_access_refused", description:
            "Requests refused by access control, by reason: authentication, permission, plane (wrong endpoint), peer-identity (certificate)");
        _meter.CreateObservableGauge("raft_term", () => _status()?.Term ?? 0, description: "Current term");
        _meter.CreateObservableGauge("raft_commit_index", () => _status()?.CommitIndex ?? 0, description: "Commit index");
        _meter.CreateObservableGauge("raft_applied_index", () => _status()?.AppliedIndex ?? 0, description: "Applied index");
        _meter.CreateObservableGauge("raft_is_leader", () => _status()?.Role == Role.Leader ? 1 : 0, description: "1 on the leader");
    }

    public void Observe(Func<RaftNodeStatus?> status) => _status = status;

    public void Proposed(string outcome) => _proposals.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void Sent(string kind, int bytes)
    {
        var tag = new KeyValuePair<string, object?>("kind", kind);
        _messagesSent.Add(1, tag);
        _bytesSent.Add(bytes, tag);
    }

    public void Received(string kind, int bytes)
    {
        var tag = new KeyValuePair<string, object?>("kind", kind);
        _messagesReceived.Add(1, tag);
        _bytesReceived.Add(bytes, tag);
    }

    public void AccessRefused(string reason) => _accessRefused.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void WriteCompleted(TimeSpan latency) => _writeLatency.Record(latency.TotalMilliseconds);

    public void Persisted(int entries, TimeSpan duration)
    {
        _persistBatch.Record(entries);
        _persistDuration.Record(duration.TotalMilliseconds);
    }

    public void Dispose() => _meter.Dispose();
}
