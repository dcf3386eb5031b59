using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Raft.Protocol;

namespace Raft.Client;

/// <summary>
/// A well-behaved client of the cluster: it remembers the leader, follows FAILED_PRECONDITION redirects (the leader
/// trailers), tries the other endpoints when one is down or has no leader, and numbers its writes with a session so that
/// a retried write is applied once.
/// </summary>
public sealed class RaftClient : IDisposable
{
    private readonly Dictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly List<string> _endpoints;
    private readonly Lock _lock = new();

    /// <param name="endpoints">The members' client addresses ("http://127.0.0.1:7001"); any one will do, the leader is found.</param>
    /// <param name="name">
    /// What the client calls itself in session ids ("dashboard"). Every instance adds a random part of its own: two
    /// clients never share a session id, and a restarted client never replays sequence numbers an earlier one used.
    /// </param>
    public RaftClient(IEnumerable<string> endpoints, string? name = null)
    {
        _endpoints = endpoints.Select(e => e.Trim()).Where(e => e.Length > 0).Distinct().ToList();
        if (_endpoints.Count == 0)
        {
            throw new ArgumentException("at least one endpoint is needed", nameof(endpoints));
        }
        ClientId = $"{name ?? "client"}-{Guid.NewGuid():N}";
    }

    public string ClientId { get; }

    /// <summary>The bearer token sent with every call (nodes started with --tokens-file require one).</summary>
    public string? Token { get; init; }

    /// <summary>A PEM file of the CA that https endpoints' certificates chain to, for a cluster with its own CA; null: the system's.</summary>
    public string? CaFile { get; init; }

    /// <summary>How long one connection attempt may take (null: the handler's default).</summary>
    public TimeSpan? DialTimeout { get; init; }

    /// <summary>How long one operation may take, retries included.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The endpoint that served the last request (after any redirect).</summary>
    public string? LastServedBy { get; private set; }

    /// <summary>Redirects followed by the last request, for display ("n2 -> n1").</summary>
    public IReadOnlyList<string> LastRedirects { get; private set; } = [];

    /// <summary>
    /// A session serves one write at a time (the server keeps only its latest answer), so concurrent writes each lease
    /// their own session ("client/slot") for the whole call, retries included.
    /// </summary>
    private sealed class SessionSlot(string clientId)
    {
        public string ClientId { get; } = clientId;
        public long Sequence { get; set; }
    }

    private readonly System.Collections.Concurrent.ConcurrentBag<SessionSlot> _idle = [];
    private int _slots;

    private SessionSlot NewSlot()
    {
        int n = Interlocked.Increment(ref _slots);
        return new SessionSlot(n == 1 ? ClientId : $"{ClientId}/{n}");
    }

    private async Task<T> WriteAsync<T>(Func<Session, Func<GrpcChannel, Task<T>>> call, CancellationToken cancellationToken)
    {
        if (!_idle.TryTake(out SessionSlot? slot))
        {
            slot = NewSlot();
        }
        bool reusable = false;
        try
        {
            var session = new Session { ClientId = slot.ClientId, Sequence = ++slot.Sequence };
            var attempts = new Attempts();
            T reply;
            try
            {
                reply = await CallAsync(call(session), cancellationToken, attempts);
            }
            catch (RpcException e) when (e.Trailers.GetValue(RaftTrailers.SessionExpired) != null && attempts.Uncertain == 0)
            {
                // The session expired while idle and no earlier try of this write can have been applied: a new session
                // (a new id: numbers restart) sends it again. After a try whose outcome is unknown, it is thrown.
                slot = NewSlot();
                reply = await CallAsync(call(new Session { ClientId = slot.ClientId, Sequence = ++slot.Sequence }), cancellationToken);
            }
            reusable = true;
            return reply;
        }
        finally
        {
            // A session whose write failed is dropped: that write may still be applied (or never), and the state machine
            // takes an unknown session past number 1 for an expired one. The next write starts a new session at 1.
            if (reusable)
            {
                _idle.Add(slot);
            }
        }
    }

    public Task<PutReply> PutAsync(string key, string value, CancellationToken cancellationToken = default) =>
        WriteAsync<PutReply>(session => channel => new KeyValue.KeyValueClient(channel).PutAsync(
            new PutRequest { Session = session, Key = key, Value = value }, cancellationToken: cancellationToken).ResponseAsync, cancellationToken);

    public Task<GetReply> GetAsync(string key, bool stale = false, CancellationToken cancellationToken = default)
    {
        var request = new GetRequest { Key = key, Stale = stale };
        return CallAsync(channel => new KeyValue.KeyValueClient(channel).GetAsync(request, cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
    }

    public Task<DeleteReply> DeleteAsync(string key, CancellationToken cancellationToken = default) =>
        WriteAsync<DeleteReply>(session => channel => new KeyValue.KeyValueClient(channel).DeleteAsync(
            new DeleteRequest { Session = session, Key = key }, cancellationToken: cancellationToken).ResponseAsync, cancellationToken);

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/> if it holds <paramref name="expected"/> (null: absent; a null value deletes).</summary>
    public Task<CompareAndSwapReply> CompareAndSwapAsync(string key, string? expected, string? value, CancellationToken cancellationToken = default) =>
        WriteAsync<CompareAndSwapReply>(session =>
        {
            var request = new CompareAndSwapRequest { Session = session, Key = key };
            if (expected != null)
            {
                request.Expected = expected;
            }
            if (value != null)
            {
                request.Value = value;
            }
            return channel => new KeyValue.KeyValueClient(channel).CompareAndSwapAsync(request, cancellationToken: cancellationToken).ResponseAsync;
        }, cancellationToken);

    /// <summary>An admin call that must reach the leader (membership, transfer).</summary>
    public Task<T> LeaderAdminAsync<T>(Func<Admin.AdminClient, CancellationToken, Task<T>> call, CancellationToken cancellationToken = default) =>
        CallAsync(channel => call(new Admin.AdminClient(channel), cancellationToken), cancellationToken);

    /// <summary>An admin call to one node, by address (status, snapshot, faults).</summary>
    public Admin.AdminClient AdminOf(string endpoint) => new(ChannelFor(endpoint));

    public async Task<IReadOnlyList<(string Endpoint, NodeStatus? Status, string? Error)>> StatusOfAllAsync(CancellationToken cancellationToken = default)
    {
        var results = await Task.WhenAll(_endpoints.Select(async endpoint =>
        {
            try
            {
                NodeStatus status = await AdminOf(endpoint).GetStatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: cancellationToken);
                return (endpoint, (NodeStatus?)status, (string?)null);
            }
            catch (RpcException e)
            {
                return (endpoint, null, e.Status.Detail);
            }
        }));
        return results;
    }

    /// <summary>How many tries of a call failed in a way that leaves its outcome unknown (it may have been applied).</summary>
    private sealed class Attempts
    {
        public int Uncertain { get; set; }
    }

    /// <summary>
    /// What this client's calls learned about the cluster, shared by all of them: the endpoint that last served a call
    /// (the leader, as far as anyone knows), endpoints whose connection failed lately, and a signal completed whenever a
    /// call is served, so that calls waiting out a failover go to the new leader as soon as one of them finds it.
    /// </summary>
    private string? _leader;
    private readonly Dictionary<string, long> _unreachableSince = new(StringComparer.Ordinal);
    private TaskCompletionSource _served = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How long an endpoint whose connection failed is passed over (and a redirect to it taken as "no leader").</summary>
    private static readonly TimeSpan UnreachableFor = TimeSpan.FromMilliseconds(250);

    private bool IsUnreachable(string endpoint)
    {
        lock (_lock)
        {
            return _unreachableSince.TryGetValue(endpoint, out long since) && Stopwatch.GetElapsedTime(since) < UnreachableFor;
        }
    }

    private string? KnownLeader()
    {
        lock (_lock)
        {
            return _leader;
        }
    }

    private void Served(string endpoint)
    {
        TaskCompletionSource served;
        lock (_lock)
        {
            _leader = endpoint;
            _unreachableSince.Remove(endpoint);
            served = _served;
            _served = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        served.TrySetResult();
    }

    /// <summary>
    /// Raised by the channel, not sent by a server: the endpoint could not be reached. A channel waiting out its
    /// reconnection backoff fails calls with the status of its last attempt, without the exception that caused it.
    /// </summary>
    private static bool ConnectionFailed(RpcException e) =>
        e.StatusCode == StatusCode.Unavailable && (e.Status.DebugException is not null
            || e.Status.Detail.StartsWith("Error connecting to subchannel", StringComparison.Ordinal)
            || e.Status.Detail.StartsWith("Error starting gRPC call", StringComparison.Ordinal));

    /// <summary>The next endpoint after <paramref name="from"/> not tried in this round, reachable ones first; null when all were tried.</summary>
    private string? NextUntried(string from, HashSet<string> tried)
    {
        int start = _endpoints.IndexOf(from);
        var untried = Enumerable.Range(1, _endpoints.Count).Select(i => _endpoints[(start + i) % _endpoints.Count]).Where(e => !tried.Contains(e)).ToList();
        return untried.FirstOrDefault(e => !IsUnreachable(e)) ?? untried.FirstOrDefault();
    }

    /// <summary>
    /// Runs <paramref name="call"/> on the leader. It starts at the leader last known (to any call of this client),
    /// follows redirects, and tries every endpoint once per round. A redirect to an endpoint whose connection just
    /// failed counts as "no leader": the member naming it has not noticed yet that it is gone (members that know no
    /// leader hold the call until an election names one). After a round without an answer the call waits, 10 ms
    /// doubling to 100 ms, or less if another call finds the leader first.
    /// </summary>
    private async Task<T> CallAsync<T>(Func<GrpcChannel, Task<T>> call, CancellationToken cancellationToken, Attempts? attempts = null)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Timeout);
        var redirects = new List<string>();
        var tried = new HashSet<string>(StringComparer.Ordinal);
        var asked = new SortedSet<string>(StringComparer.Ordinal);
        string endpoint = KnownLeader() ?? _endpoints.FirstOrDefault(e => !IsUnreachable(e)) ?? _endpoints[0];
        RpcException? last = null;
        for (int waits = 0; !deadline.IsCancellationRequested;)
        {
            Task anotherServed;
            lock (_lock)
            {
                anotherServed = _served.Task;
            }
            tried.Add(endpoint);
            asked.Add(endpoint);
            try
            {
                T reply = await call(ChannelFor(endpoint));
                Served(endpoint);
                LastServedBy = endpoint;
                LastRedirects = redirects;
                return reply;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition && e.Trailers.GetValue(RaftTrailers.LeaderAddress) is { } leader)
            {
                last = e;
                if (!tried.Contains(leader) && !IsUnreachable(leader))
                {
                    redirects.Add($"{endpoint} -> {leader}");
                    endpoint = leader;
                    continue;
                }
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted)
            {
                last = e;
                if (attempts != null)
                {
                    attempts.Uncertain++;
                }
                if (ConnectionFailed(e))
                {
                    lock (_lock)
                    {
                        _unreachableSince[endpoint] = Stopwatch.GetTimestamp();
                    }
                }
            }
            if (NextUntried(endpoint, tried) is { } next)
            {
                endpoint = next;
                continue;
            }
            // Every member was asked and none is (or names) a leader this client can reach: an election is running.
            tried.Clear();
            TimeSpan pause = TimeSpan.FromMilliseconds(Math.Min(10 << Math.Min(waits++, 4), 100) * (0.75 + 0.5 * Random.Shared.NextDouble()));
            await Task.WhenAny(anotherServed, Task.Delay(pause, deadline.Token)); // never throws: the loop ends at the deadline
            endpoint = (anotherServed.IsCompleted ? KnownLeader() : null) ?? NextUntried(endpoint, tried) ?? endpoint;
        }
        if (last is null)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, $"no answer from {string.Join(", ", asked)} within {Timeout.TotalSeconds:0.#} s"));
        }
        // The last refusal, saying whom this call asked and for how long (its status code and trailers kept for callers).
        throw new RpcException(new Status(last.StatusCode, $"{last.Status.Detail} (asked {string.Join(", ", asked)} for {Timeout.TotalSeconds:0.#} s)", last.Status.DebugException), last.Trailers);
    }

    private GrpcChannel ChannelFor(string endpoint)
    {
        lock (_lock)
        {
            if (!_channels.TryGetValue(endpoint, out GrpcChannel? channel))
            {
                // Past 100 concurrent calls (a server's stream limit per connection) open more connections instead of queueing.
                channel = GrpcChannel.ForAddress(endpoint, ChannelOptions.For(endpoint, Token, CaFile, DialTimeout));
                _channels[endpoint] = channel;
            }
            return channel;
        }
    }

    public void Dispose()
    {
        foreach (GrpcChannel channel in _channels.Values)
        {
            channel.Dispose();
        }
    }
}

/// <summary>How clients of the cluster (the CLI, the dashboard) open channels: a bearer token on every call, a private CA.</summary>
public static class ChannelOptions
{
    public static GrpcChannelOptions For(string endpoint, string? token, string? caFile, TimeSpan? connectTimeout = null)
    {
        SocketsHttpHandler handler = Handler(caFile);
        if (connectTimeout is { } timeout)
        {
            handler.ConnectTimeout = timeout;
        }
        var options = new GrpcChannelOptions
        {
            HttpHandler = handler,
            // gRPC's default (1 s doubling to 120 s) would keep a restarted member out of reach long after it is back.
            InitialReconnectBackoff = TimeSpan.FromMilliseconds(50),
            MaxReconnectBackoff = TimeSpan.FromSeconds(1),
        };
        if (token != null)
        {
            var bearer = CallCredentials.FromInterceptor((_, metadata) =>
            {
                metadata.Add("authorization", $"Bearer {token}");
                return Task.CompletedTask;
            });
            bool tls = endpoint.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
            options.Credentials = ChannelCredentials.Create(tls ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure, bearer);
            // Sending a token over h2c is the operator's choice (loopback, a private network): the channel would refuse it otherwise.
            options.UnsafeUseInsecureChannelCallCredentials = !tls;
        }
        return options;
    }

    /// <summary>
    /// The HTTP handler for a node's endpoints (gRPC and the hub): with <paramref name="caFile"/>, a TLS server is trusted
    /// only when its certificate chains to that CA (PEM) and names the host dialed.
    /// </summary>
    public static SocketsHttpHandler Handler(string? caFile)
    {
        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (caFile != null)
        {
            var authorities = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
            authorities.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                {
                    return false;
                }
                using var chain = new System.Security.Cryptography.X509Certificates.X509Chain();
                chain.ChainPolicy.TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
                chain.ChainPolicy.RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
                return chain.Build(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            };
        }
        return handler;
    }
}
