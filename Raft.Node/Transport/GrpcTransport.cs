using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;
using Grpc.Net.Client;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Node.Faults;
using Raft.Node.Metrics;
using Raft.Node.Protocol;
using EngineAppendEntries = Raft.Engine.Consensus.AppendEntries;
using EngineRequestVote = Raft.Engine.Consensus.RequestVote;
using EngineTimeoutNow = Raft.Engine.Consensus.TimeoutNow;

namespace Raft.Node.Transport;

/// <summary>
/// <see cref="ITransport"/> over gRPC. Requests (AppendEntries, RequestVote, InstallSnapshot, TimeoutNow, ReadIndex) go out
/// as calls, several in flight per peer so that replication pipelines; the engine's answers to requests from others
/// leave as those requests' replies (see <see cref="ReplyCorrelator"/>). Fault injection applies here, to peer traffic only.
/// </summary>
public sealed class GrpcTransport : ITransport, IAsyncDisposable
{
    private const int MaxInflightCallsPerPeer = 64;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(2);
    private readonly string _self;
    private readonly Func<string, string?> _addressOf;
    private readonly ReplyCorrelator _replies;
    private readonly FaultInjector _faults;
    private readonly NodeMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, PeerLink> _links = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private Action<RaftMessage> _deliver = _ => { };
    private int _disposed;

    public GrpcTransport(string self, Func<string, string?> addressOf, ReplyCorrelator replies, FaultInjector faults, NodeMetrics metrics, ILogger<GrpcTransport> logger)
    {
        _self = self;
        _addressOf = addressOf;
        _replies = replies;
        _faults = faults;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>Where replies from peers go: the node's inbox.</summary>
    public void DeliverTo(RaftNode node) => _deliver = node.Receive;

    public void Send(RaftMessage message)
    {
        if (message is Engine.Consensus.AppendEntriesResponse or Engine.Consensus.RequestVoteResponse or Engine.Consensus.InstallSnapshotResponse or ReadIndexResponse)
        {
            _replies.TryComplete(message); // the answer rides back on the request's reply
            return;
        }
        if (_faults.ShouldDrop(message.To))
        {
            return;
        }
        string? address = _addressOf(message.To);
        if (address is null)
        {
            _logger.LogDebug("no address for {Peer}; dropping {Kind}", message.To, ProtoMapping.KindOf(message));
            return;
        }
        PeerLink link = _links.AddOrUpdate(message.To,
            peer => new PeerLink(this, peer, address),
            (peer, existing) => existing.Address == address ? existing : Replace(existing, new PeerLink(this, peer, address)));
        link.Enqueue(message);
    }

    private static PeerLink Replace(PeerLink old, PeerLink replacement)
    {
        _ = old.DisposeAsync().AsTask();
        return replacement;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _stopping.CancelAsync();
        foreach (PeerLink link in _links.Values)
        {
            await link.DisposeAsync();
        }
        _stopping.Dispose();
    }

    /// <summary>One peer: a queue, a channel, and a loop that starts calls without waiting for earlier ones.</summary>
    private sealed class PeerLink : IAsyncDisposable
    {
        private readonly GrpcTransport _transport;
        private readonly string _peer;
        private readonly GrpcChannel _channel;
        private readonly Peer.PeerClient _client;
        private readonly Channel<RaftMessage> _queue = Channel.CreateBounded<RaftMessage>(new BoundedChannelOptions(8192) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        private readonly SemaphoreSlim _inflight = new(MaxInflightCallsPerPeer);
        private readonly Task _loop;

        public PeerLink(GrpcTransport transport, string peer, string address)
        {
            _transport = transport;
            _peer = peer;
            Address = address;
            _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler
                {
                    EnableMultipleHttp2Connections = true,
                    ConnectTimeout = TimeSpan.FromSeconds(1),
                    KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                },
            });
            _client = new Peer.PeerClient(_channel);
            _loop = Task.Run(RunAsync);
        }

        public string Address { get; }

        public void Enqueue(RaftMessage message) => _queue.Writer.TryWrite(message);

        private async Task RunAsync()
        {
            CancellationToken stopping = _transport._stopping.Token;
            try
            {
                await foreach (RaftMessage message in _queue.Reader.ReadAllAsync(stopping))
                {
                    await _inflight.WaitAsync(stopping);
                    _ = CallAsync(message, stopping).ContinueWith(_ => _inflight.Release(), TaskScheduler.Default);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        private async Task CallAsync(RaftMessage message, CancellationToken stopping)
        {
            try
            {
                TimeSpan delay = _transport._faults.Delay();
                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, stopping);
                }
                var options = new CallOptions(deadline: DateTime.UtcNow + CallTimeout, cancellationToken: stopping);
                string self = _transport._self;
                RaftMessage? answer;
                switch (message)
                {
                    case EngineAppendEntries append:
                    {
                        AppendEntriesRequest request = ProtoMapping.ToProto(append);
                        _transport._metrics.Sent(ProtoMapping.KindOf(message), request.CalculateSize());
                        AppendEntriesReply reply = await _client.AppendEntriesAsync(request, options);
                        answer = reply.Response is { } r ? ProtoMapping.FromProto(r, self) : null;
                        break;
                    }
                    case EngineRequestVote vote:
                    {
                        RequestVoteRequest request = ProtoMapping.ToProto(vote);
                        _transport._metrics.Sent(ProtoMapping.KindOf(message), request.CalculateSize());
                        RequestVoteReply reply = await _client.RequestVoteAsync(request, options);
                        answer = reply.Response is { } r ? ProtoMapping.FromProto(r, self) : null;
                        break;
                    }
                    case InstallSnapshot chunk:
                    {
                        InstallSnapshotChunk request = ProtoMapping.ToProto(chunk);
                        _transport._metrics.Sent(ProtoMapping.KindOf(message), request.CalculateSize());
                        using AsyncClientStreamingCall<InstallSnapshotChunk, InstallSnapshotReply> call = _client.InstallSnapshot(options);
                        await call.RequestStream.WriteAsync(request, stopping);
                        await call.RequestStream.CompleteAsync();
                        InstallSnapshotReply reply = await call;
                        answer = reply.Response is { } r ? ProtoMapping.FromProto(r, self) : null;
                        break;
                    }
                    case EngineTimeoutNow timeoutNow:
                    {
                        TimeoutNowRequest request = ProtoMapping.ToProto(timeoutNow);
                        _transport._metrics.Sent(ProtoMapping.KindOf(message), request.CalculateSize());
                        await _client.TimeoutNowAsync(request, options);
                        answer = null;
                        break;
                    }
                    case ReadIndexRequest read:
                    {
                        ReadIndexPeerRequest request = ProtoMapping.ToProto(read);
                        _transport._metrics.Sent(ProtoMapping.KindOf(message), request.CalculateSize());
                        ReadIndexPeerReply reply = await _client.ReadIndexAsync(request, options);
                        answer = reply.Response is { } r ? ProtoMapping.FromProto(r, self) : null;
                        break;
                    }
                    default:
                        return;
                }
                if (answer != null && !_transport._faults.ShouldDrop(_peer))
                {
                    _transport._metrics.Received(ProtoMapping.KindOf(answer), 0);
                    _transport._deliver(answer);
                }
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or HttpRequestException or FormatException or ObjectDisposedException)
            {
                // A lost message: Raft retries by itself (heartbeats, probes, chunk resends).
                _transport._logger.LogDebug("{Kind} to {Peer} failed: {Error}", ProtoMapping.KindOf(message), _peer, e.Message);
            }
        }

        public async ValueTask DisposeAsync()
        {
            _queue.Writer.TryComplete();
            try
            {
                await _loop.WaitAsync(TimeSpan.FromSeconds(2));
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
            }
            _channel.Dispose();
        }
    }
}
