using System.Collections.Concurrent;
using System.Threading.Channels;
using Grpc.Core;
using Grpc.Net.Client;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Node.Faults;
using Raft.Node.Metrics;
using Raft.Protocol;
using EngineAppendEntries = Raft.Engine.Consensus.AppendEntries;
using EngineRequestVote = Raft.Engine.Consensus.RequestVote;
using EngineTimeoutNow = Raft.Engine.Consensus.TimeoutNow;

namespace Raft.Node.Transport;

/// <summary>
/// <see cref="ITransport"/> over gRPC: every message to a peer, request or answer, goes out in batches on one long-lived
/// stream to that peer (see <see cref="PeerLink"/>). An answer to a request that came in on a unary call (tools, tests)
/// leaves as that call's reply instead (see <see cref="ReplyCorrelator"/>). Fault injection applies here, to peer traffic only.
/// </summary>
public sealed class GrpcTransport : ITransport, IAsyncDisposable
{
    private readonly string _self;
    private readonly string? _selfUrl;
    private readonly Func<string, string?> _addressOf;
    private readonly ReplyCorrelator _replies;
    private readonly FaultInjector _faults;
    private readonly NodeMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, PeerLink> _links = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _learned = new(StringComparer.Ordinal);
    private const int MaxLearnedAddresses = 256;

    /// <summary>The metadata with which a peer stream names its sender and where the sender takes its own stream.</summary>
    public const string SenderIdHeader = "raft-sender-id";
    public const string SenderAddressHeader = "raft-sender-address";

    /// <summary>Where the sender serves clients, when that is not its peer address (separate planes): for redirects to a leader.</summary>
    public const string SenderClientAddressHeader = "raft-sender-client-address";

    private readonly ConcurrentDictionary<string, string> _clientAddresses = new(StringComparer.Ordinal);

    /// <summary>This node's client address as it tells its peers; null when clients use the peer address (one plane).</summary>
    public string? AdvertisedClientUrl { get; init; }

    /// <summary>Mutual TLS to peers: present this node's certificate, accept only the dialed peer's. Null: plain h2c.</summary>
    public Security.PeerCertificates? Certificates { get; init; }

    /// <summary>Records where a peer serves clients (what its stream said), under the same bound as peer addresses.</summary>
    public void LearnClientAddress(string id, string address)
    {
        if ((_clientAddresses.Count < MaxLearnedAddresses || _clientAddresses.ContainsKey(id))
            && Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https")
        {
            _clientAddresses[id] = address;
        }
    }

    /// <summary>Where a peer said it serves clients, or null.</summary>
    public string? ClientAddressOf(string id) => id == _self ? AdvertisedClientUrl : _clientAddresses.GetValueOrDefault(id);

    /// <summary>
    /// Where to reach a peer that opened a stream to this node, for when neither the configuration nor the bootstrap list
    /// names it: a new server has no configuration until it has caught up, but must answer the leader before that.
    /// Never overrides an address the configuration gives, and holds at most <see cref="MaxLearnedAddresses"/>
    /// (anyone can open a stream and claim a name).
    /// </summary>
    public void LearnAddress(string id, string address)
    {
        if (_addressOf(id) is null && (_learned.Count < MaxLearnedAddresses || _learned.ContainsKey(id))
            && Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https")
        {
            _learned[id] = address;
        }
    }

    private readonly CancellationTokenSource _stopping = new();
    private int _disposed;

    private readonly Events.MessageTracer _tracer;

    /// <summary>Where messages wait on a shared, controllable clock (the embedded cluster); null sends at once.</summary>
    public MessageGate? Gate { get; init; }

    public GrpcTransport(string self, string? selfUrl, Func<string, string?> addressOf, ReplyCorrelator replies, FaultInjector faults, NodeMetrics metrics,
        Events.MessageTracer tracer, ILogger<GrpcTransport> logger)
    {
        _tracer = tracer;
        _self = self;
        _selfUrl = selfUrl;
        _addressOf = addressOf;
        _replies = replies;
        _faults = faults;
        _metrics = metrics;
        _logger = logger;
    }

    public void Send(RaftMessage message)
    {
        if (message is Engine.Consensus.AppendEntriesResponse or Engine.Consensus.RequestVoteResponse or Engine.Consensus.InstallSnapshotResponse or ReadIndexResponse
            && _replies.TryComplete(message))
        {
            _tracer.Sent(message); // the answer rides back on a unary request's reply
            return;
        }
        if (_faults.ShouldDropOutgoing(message.To))
        {
            Gate?.Dropped(message); // a watched cluster shows it falling
            return;
        }
        _tracer.Sent(message);
        if (Gate is { } gate)
        {
            gate.Send(message, () => Transmit(message));
            return;
        }
        Transmit(message);
    }

    private void Transmit(RaftMessage message)
    {
        if (LinkTo(message.To) is { } link)
        {
            link.Enqueue(message);
        }
        else
        {
            _logger.LogDebug("no address for {Peer}; dropping {Kind}", message.To, ProtoMapping.KindOf(message));
        }
    }

    private PeerLink? LinkTo(string peer)
    {
        if (Volatile.Read(ref _disposed) == 1 || (_addressOf(peer) ?? _learned.GetValueOrDefault(peer)) is not { } address)
        {
            return null;
        }
        return _links.AddOrUpdate(peer,
            id => new PeerLink(this, id, address),
            (id, existing) => existing.Address == address ? existing : Replace(existing, new PeerLink(this, id, address)));
    }

    /// <summary>
    /// <paramref name="peer"/> opened a stream to this node: it is up, so a link to it waiting out its reconnection
    /// backoff tries again now. A restarted member is otherwise left unreached for up to the longest backoff, and a
    /// follower does not notice (it sends nothing) until the next election needs its vote to get through.
    /// </summary>
    public void PeerIsUp(string peer)
    {
        if (_links.TryGetValue(peer, out PeerLink? link))
        {
            link.RetryNow();
        }
    }

    /// <summary>
    /// Opens the streams to <paramref name="peers"/> now and keeps them open, instead of on the first message. A follower
    /// sends another follower nothing until an election, and the first vote request then paid for a connection, a TLS
    /// handshake and a stream (and, in a process just started, for their code being compiled) while the cluster had no
    /// leader.
    /// A link kept open for a server that has left the configuration is closed: it would otherwise try to reach a
    /// retired server every backoff for as long as this node runs (a message to it later opens a link again).
    /// </summary>
    public void Connect(IReadOnlyCollection<string> peers)
    {
        foreach (string peer in peers)
        {
            if (peer != _self)
            {
                LinkTo(peer)?.OpenNow();
            }
        }
        foreach ((string peer, PeerLink link) in _links)
        {
            if (link.KeptOpen && !peers.Contains(peer) && _links.TryRemove(new KeyValuePair<string, PeerLink>(peer, link)))
            {
                _ = link.DisposeAsync().AsTask();
            }
        }
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

    /// <summary>
    /// One peer: a queue, a channel, and one long-lived <c>Peer/Stream</c> call. Whatever is queued when the stream is
    /// free goes out as one batch (one HTTP/2 frame for many messages); nothing waits for a reply. A broken stream is
    /// reopened with backoff; the messages of a failed write are lost, which Raft repairs by itself.
    /// </summary>
    private sealed class PeerLink : IAsyncDisposable
    {
        private const int MaxMessagesPerBatch = 256;
        private const long MaxBatchBytes = 4 * 1024 * 1024;
        private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(10);
        /// <summary>
        /// Short: a follower sends its peers nothing between elections, so a link left waiting is found out only when an
        /// election needs it (votes queued behind a one-second backoff made elections fail for a second). A refused
        /// connection costs little.
        /// </summary>
        private static readonly TimeSpan MaxBackoff = TimeSpan.FromMilliseconds(200);
        private readonly GrpcTransport _transport;
        private readonly string _peer;
        private readonly GrpcChannel _channel;
        private readonly Peer.PeerClient _client;
        private readonly Channel<RaftMessage> _queue = Channel.CreateBounded<RaftMessage>(new BoundedChannelOptions(8192) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        private readonly Task _loop;
        /// <summary>Set: the stream is opened (and reopened) without waiting for a message to send.</summary>
        private readonly TaskCompletionSource _eager = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public PeerLink(GrpcTransport transport, string peer, string address)
        {
            _transport = transport;
            _peer = peer;
            Address = address;
            _channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler
                {
                    ConnectTimeout = TimeSpan.FromSeconds(1),
                    KeepAlivePingDelay = TimeSpan.FromSeconds(10),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                    SslOptions = transport.Certificates?.ClientOptions(peer) ?? new System.Net.Security.SslClientAuthenticationOptions(),
                },
                MaxSendMessageSize = null,
                // gRPC's own reconnection backoff (1 s doubling to 120 s by default) would keep a restarted peer
                // unreached long after it came back, whatever this link's own backoff says.
                InitialReconnectBackoff = FirstBackoff,
                MaxReconnectBackoff = MaxBackoff,
            });
            _client = new Peer.PeerClient(_channel);
            _loop = Task.Run(RunAsync);
        }

        public string Address { get; }

        public void OpenNow() => _eager.TrySetResult();

        public bool KeptOpen => _eager.Task.IsCompleted;

        /// <summary>Completed to cut a reconnection backoff short (and replaced).</summary>
        private TaskCompletionSource _retryNow = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void RetryNow() => Interlocked.Exchange(ref _retryNow, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

        public void Enqueue(RaftMessage message)
        {
            TimeSpan delay = _transport._faults.Delay();
            if (delay > TimeSpan.Zero)
            {
                _ = Task.Delay(delay, _transport._stopping.Token).ContinueWith(_ => _queue.Writer.TryWrite(message), TaskScheduler.Default);
                return;
            }
            _queue.Writer.TryWrite(message);
        }

        private async Task RunAsync()
        {
            CancellationToken stopping = _transport._stopping.Token;
            TimeSpan backoff = FirstBackoff;
            var batch = new PeerBatch();
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    if (!_eager.Task.IsCompleted)
                    {
                        Task<bool> queued = _queue.Reader.WaitToReadAsync(stopping).AsTask();
                        if (await Task.WhenAny(queued, _eager.Task) == queued && !await queued)
                        {
                            return; // closed
                        }
                    }
                    var headers = new Metadata { { SenderIdHeader, _transport._self } };
                    if ((_transport._addressOf(_transport._self) ?? _transport._selfUrl) is { } own)
                    {
                        headers.Add(SenderAddressHeader, own);
                    }
                    if (_transport.AdvertisedClientUrl is { } client)
                    {
                        headers.Add(SenderClientAddressHeader, client);
                    }
                    using AsyncClientStreamingCall<PeerBatch, PeerAck> call = _client.Stream(headers, cancellationToken: stopping);
                    if (_eager.Task.IsCompleted)
                    {
                        await call.RequestStream.WriteAsync(new PeerBatch(), stopping); // the stream exists at both ends now
                        backoff = FirstBackoff;
                    }
                    Task ended = call.ResponseAsync;
                    while (await MessagesOrEndAsync(ended, stopping))
                    {
                        batch.Messages.Clear();
                        long bytes = 0;
                        while (batch.Messages.Count < MaxMessagesPerBatch && bytes < MaxBatchBytes && _queue.Reader.TryRead(out RaftMessage? message))
                        {
                            PeerMessage item = ProtoMapping.ToPeerMessage(message);
                            int size = item.CalculateSize();
                            bytes += size;
                            _transport._metrics.Sent(ProtoMapping.KindOf(message), size);
                            batch.Messages.Add(item);
                        }
                        await call.RequestStream.WriteAsync(batch, stopping);
                        backoff = FirstBackoff;
                    }
                    return;
                }
                catch (Exception) when (stopping.IsCancellationRequested)
                {
                    return; // the transport is closing: the call was cancelled with it
                }
                catch (Exception e) when (e is RpcException or IOException or HttpRequestException or InvalidOperationException or ObjectDisposedException)
                {
                    _transport._logger.LogDebug("stream to {Peer} broke: {Error}; reopening in {Backoff} ms", _peer, e.Message, backoff.TotalMilliseconds);
                    Task retry = Volatile.Read(ref _retryNow).Task;
                    await Task.WhenAny(Task.Delay(backoff, stopping), retry);
                    if (stopping.IsCancellationRequested)
                    {
                        return;
                    }
                    // The peer said it is up: if this try fails too (it may not listen yet), the next is soon again.
                    backoff = retry.IsCompleted ? FirstBackoff : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
                }
            }
        }

        /// <summary>
        /// Waits for messages to send (false: the link closes), and throws when the peer ended the stream first: it
        /// stopped or its process died. A follower sends another follower nothing for long stretches; without this the
        /// link would find out with the next message, a vote, lost with the write that failed.
        /// </summary>
        private async ValueTask<bool> MessagesOrEndAsync(Task ended, CancellationToken stopping)
        {
            if (_queue.Reader.TryPeek(out _))
            {
                return true;
            }
            Task<bool> queued = _queue.Reader.WaitToReadAsync(stopping).AsTask();
            if (await Task.WhenAny(queued, ended) == ended)
            {
                await ended; // a broken call throws its error
                throw new IOException($"{_peer} ended the stream");
            }
            return await queued;
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
