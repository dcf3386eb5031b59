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

    private readonly Events.MessageTracer _tracer;

    public GrpcTransport(string self, Func<string, string?> addressOf, ReplyCorrelator replies, FaultInjector faults, NodeMetrics metrics,
        Events.MessageTracer tracer, ILogger<GrpcTransport> logger)
    {
        _tracer = tracer;
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
            if (_replies.TryComplete(message)) // the answer rides back on the request's reply
            {
                _tracer.Sent(message);
            }
            return;
        }
        if (_faults.ShouldDrop(message.To))
        {
            return;
        }
        _tracer.Sent(message);
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
                string kind = ProtoMapping.KindOf(message);
                RaftMessage? answer = message switch
                {
                    EngineAppendEntries m => await ExchangeAsync(kind, ProtoMapping.ToProto(m), r => _client.AppendEntriesAsync(r, options),
                        reply => reply.Response is { } a ? ProtoMapping.FromProto(a, self) : null),
                    EngineRequestVote m => await ExchangeAsync(kind, ProtoMapping.ToProto(m), r => _client.RequestVoteAsync(r, options),
                        reply => reply.Response is { } a ? ProtoMapping.FromProto(a, self) : null),
                    ReadIndexRequest m => await ExchangeAsync(kind, ProtoMapping.ToProto(m), r => _client.ReadIndexAsync(r, options),
                        reply => reply.Response is { } a ? ProtoMapping.FromProto(a, self) : null),
                    EngineTimeoutNow m => await ExchangeAsync(kind, ProtoMapping.ToProto(m), r => _client.TimeoutNowAsync(r, options), _ => null),
                    InstallSnapshot m => await SendChunkAsync(kind, ProtoMapping.ToProto(m), options, self, stopping),
                    _ => null,
                };
                if (answer != null && !_transport._faults.ShouldDrop(_peer))
                {
                    _transport._metrics.Received(ProtoMapping.KindOf(answer), 0);
                    _transport._tracer.Received(answer);
                    _transport._deliver(answer);
                }
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or HttpRequestException or FormatException or ObjectDisposedException)
            {
                // A lost message: Raft retries by itself (heartbeats, probes, chunk resends).
                _transport._logger.LogDebug("{Kind} to {Peer} failed: {Error}", ProtoMapping.KindOf(message), _peer, e.Message);
            }
        }

        /// <summary>One unary call: count it, send it, turn the reply into the engine's answer (if any).</summary>
        private async Task<RaftMessage?> ExchangeAsync<TRequest, TReply>(string kind, TRequest request, Func<TRequest, AsyncUnaryCall<TReply>> call, Func<TReply, RaftMessage?> answer)
            where TRequest : Google.Protobuf.IMessage
        {
            _transport._metrics.Sent(kind, request.CalculateSize());
            return answer(await call(request));
        }

        /// <summary>A snapshot chunk goes out on the client-streaming InstallSnapshot call.</summary>
        private async Task<RaftMessage?> SendChunkAsync(string kind, InstallSnapshotChunk chunk, CallOptions options, string self, CancellationToken stopping)
        {
            _transport._metrics.Sent(kind, chunk.CalculateSize());
            using AsyncClientStreamingCall<InstallSnapshotChunk, InstallSnapshotReply> call = _client.InstallSnapshot(options);
            await call.RequestStream.WriteAsync(chunk, stopping);
            await call.RequestStream.CompleteAsync();
            InstallSnapshotReply reply = await call;
            return reply.Response is { } r ? ProtoMapping.FromProto(r, self) : null;
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
