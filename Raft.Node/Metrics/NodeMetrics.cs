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
    private readonly Counter<long> _leaderChanges;
    private readonly Histogram<double> _snapshotDuration;
    private readonly Histogram<long> _snapshotBytes;
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
        _meter.CreateObservableCounter("raft_elections", Elections, description:
            "Elections this node started, by kind: pre-vote (asks whether it could win, changes no term) or vote (a new term)");
        _leaderChanges = _meter.CreateCounter<long>("raft_leader_changes", description: "Times this node learned of a new leader (itself included)");
        _snapshotDuration = _meter.CreateHistogram<double>("raft_snapshot_duration", "ms",
            "Snapshots, by kind: taken (capture and store the state machine) or installed (store and restore one from the leader)");
        _snapshotBytes = _meter.CreateHistogram<long>("raft_snapshot_size", "By", "Size of the snapshots taken and installed, by kind");
        _meter.CreateObservableGauge("raft_follower_lag_entries", FollowerLag,
            description: "On the leader: entries each follower has not stored yet (the leader's last index minus its match index)");
        _meter.CreateObservableGauge("raft_apply_lag_entries", () => _status() is { } s ? s.CommitIndex - s.AppliedIndex : 0,
            description: "Committed entries this node has not applied yet");
        _meter.CreateObservableGauge("raft_term", () => _status()?.Term ?? 0, description: "Current term");
        _meter.CreateObservableGauge("raft_commit_index", () => _status()?.CommitIndex ?? 0, description: "Commit index");
        _meter.CreateObservableGauge("raft_applied_index", () => _status()?.AppliedIndex ?? 0, description: "Applied index");
        _meter.CreateObservableGauge("raft_is_leader", () => _status()?.Role == Role.Leader ? 1 : 0, description: "1 on the leader");
    }

    public void Observe(Func<RaftNodeStatus?> status) => _status = status;

    private IEnumerable<Measurement<long>> FollowerLag()
    {
        if (_status() is not { Role: Role.Leader } leader)
        {
            return [];
        }
        return leader.Followers.Select(f => new Measurement<long>(Math.Max(0, leader.LastIndex - f.MatchIndex),
            new KeyValuePair<string, object?>("follower", f.Id)));
    }

    private IEnumerable<Measurement<long>> Elections() => _status() is not { } status ? [] :
    [
        new(status.PreVotesStarted, new KeyValuePair<string, object?>("kind", "pre-vote")),
        new(status.ElectionsStarted, new KeyValuePair<string, object?>("kind", "vote")),
    ];

    /// <summary>Counts what an operator watches over time from the node's events: new leaders and snapshots.</summary>
    public void Count(RaftEvent e)
    {
        switch (e)
        {
            case LeaderChanged { LeaderId: not null }:
                _leaderChanges.Add(1);
                break;
            case SnapshotTaken taken:
                Snapshot("taken", taken.Duration, taken.Bytes);
                break;
            case SnapshotInstalled installed:
                Snapshot("installed", installed.Duration, installed.Bytes);
                break;
        }
    }

    private void Snapshot(string kind, TimeSpan duration, int bytes)
    {
        var tag = new KeyValuePair<string, object?>("kind", kind);
        _snapshotDuration.Record(duration.TotalMilliseconds, tag);
        _snapshotBytes.Record(bytes, tag);
    }

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
