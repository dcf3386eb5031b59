using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;
using Raft.Node.Faults;
using Raft.Node.Metrics;
using Raft.Node.Transport;

namespace Raft.Node.Hosting;

/// <summary>
/// This process's cluster member: the engine's <see cref="RaftNode"/> on a SQLite store in the data folder, the
/// key-value state machine, the gRPC transport and the fault injector. Started and stopped with the web host.
/// </summary>
public sealed class ClusterMember : IHostedService, IAsyncDisposable
{
    /// <summary>Where versions before the bootstrap snapshot recorded the initial member list; read, never written.</summary>
    private const string LegacyBootstrapFile = "members.txt";
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly NodeMetrics _metrics;
    private IReadOnlyDictionary<string, string> _bootstrap;
    private MeteredLogStore? _store;
    private PersistentState? _existing;
    private SqliteLogStore? _sqlite;
    private RaftNode? _node;
    private Exception? _failure;
    private readonly IHostApplicationLifetime? _lifetime;
    private readonly SharedClusterTime? _sharedTime;

    /// <param name="sharedTime">
    /// For nodes of one process that a person watches (the dashboard's embedded cluster): one clock and one message
    /// gate for all of them, so that the whole cluster can be paused, stepped and slowed down. Null: real time.
    /// </param>
    /// <param name="certificates">For mutual TLS between peers (loaded and checked when the host is built).</param>
    public ClusterMember(NodeOptions options, NodeMetrics metrics, ILoggerFactory loggers, IHostApplicationLifetime? lifetime = null, SharedClusterTime? sharedTime = null,
        Security.PeerCertificates? certificates = null)
    {
        _sharedTime = sharedTime;
        _lifetime = lifetime;
        Options = options;
        _metrics = metrics;
        _loggers = loggers;
        _logger = loggers.CreateLogger<ClusterMember>();
        _bootstrap = options.ParseMembers();
        StateMachine = new KeyValueStateMachine(options.MaxSessions, TimeSpan.FromSeconds(options.SessionTimeoutSeconds));
        Faults = new FaultInjector(options.EnableFaultInjection);
        Certificates = certificates ?? (options.PeerTls ? Security.PeerCertificates.Load(options) : null);
        Transport = new GrpcTransport(options.Id, options.PeerAddress, AddressOf, Replies, Faults, metrics, Tracer, loggers.CreateLogger<GrpcTransport>())
        {
            Gate = sharedTime?.Gate,
            AdvertisedClientUrl = options.SeparatePeerPlane ? AdvertisedClientUrl(options, _bootstrap) : null,
            Certificates = Certificates,
        };
    }

    public NodeOptions Options { get; }
    public string Id => Options.Id;
    public KeyValueStateMachine StateMachine { get; }
    public FaultInjector Faults { get; }
    public Events.MessageTracer Tracer { get; } = new();
    public ReplyCorrelator Replies { get; } = new();
    public GrpcTransport Transport { get; }
    public RaftNode Node => _node ?? throw new InvalidOperationException("the node has not started");
    public TimeSpan RequestTimeout => TimeSpan.FromMilliseconds(Options.RequestTimeoutMs);

    /// <summary>This node's certificate and its peers' CA, when peers use mutual TLS.</summary>
    public Security.PeerCertificates? Certificates { get; }

    /// <summary>A member's peer address: from the configuration in force, else from the bootstrap list.</summary>
    public string? AddressOf(string id) =>
        _node?.Status.Configuration.Addresses.GetValueOrDefault(id) ?? _bootstrap.GetValueOrDefault(id);

    /// <summary>Where a member serves clients (for redirects): its peer address on one plane, else what it told this node.</summary>
    public string? ClientAddressOf(string id) => Options.SeparatePeerPlane ? Transport.ClientAddressOf(id) : AddressOf(id);

    /// <summary>
    /// The client address this node tells its peers: --grpc-url, or when that listens on every address (0.0.0.0), its
    /// port on the host peers reach this node at.
    /// </summary>
    private static string? AdvertisedClientUrl(NodeOptions options, IReadOnlyDictionary<string, string> bootstrap)
    {
        var client = new Uri(options.GrpcUrl);
        if (client.Host is not ("*" or "+" or "0.0.0.0"))
        {
            return options.GrpcUrl;
        }
        string? host = bootstrap.TryGetValue(options.Id, out string? own) ? new Uri(own).Host : new Uri(options.PeerAddress).Host;
        return host is "*" or "+" or "0.0.0.0" ? null : $"{client.Scheme}://{host}:{client.Port}";
    }

    /// <summary>
    /// Opens the data folder's store and reads it back. Throws <see cref="StorageException"/> (one line naming the file)
    /// for a file that is in use, not ours or damaged; Raft.Node calls this before it starts serving, and exits 65.
    /// </summary>
    public async Task OpenStoreAsync(CancellationToken cancellationToken = default)
    {
        if (_store != null)
        {
            return;
        }
        Directory.CreateDirectory(Options.DataDirectory);
        var sqlite = SqliteLogStore.Open(Path.Combine(Options.DataDirectory, "raft.db"), Options.Id);
        _sqlite = sqlite;
        try
        {
            _existing = await sqlite.LoadAsync(cancellationToken);
        }
        catch
        {
            await sqlite.DisposeAsync();
            throw;
        }
        _store = new MeteredLogStore(sqlite, _metrics);
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await OpenStoreAsync(cancellationToken);
        PersistentState existing = _existing!;
        _bootstrap = ResolveBootstrap(existing);

        RaftOptions raft = Options.ToRaftOptions();
        _node = new RaftNode(
            new RaftNodeOptions
            {
                Id = Options.Id,
                Members = [.. _bootstrap.Keys],
                Addresses = _bootstrap,
                Raft = raft,
                TickInterval = TimeSpan.FromMilliseconds(Options.TickMs),
            },
            _store!,
            StateMachine,
            Transport,
            _sharedTime?.Clock);
        _node.EventRaised += LogEvent;
        _node.EventRaised += _metrics.Count;
        _metrics.Observe(() => _node?.Status);
        await _node.StartAsync(cancellationToken);
        _node.EventRaised += e =>
        {
            if (e is ConfigurationChanged c)
            {
                Transport.Connect([.. c.Configuration.Voters, .. c.Configuration.Learners]);
            }
        };
        Transport.Connect([.. _node.Status.Configuration.Voters, .. _node.Status.Configuration.Learners]);
        _ = WatchAsync(_node);
        _logger.LogInformation("node {Node} started: {Options}; term {Term}, {Entries} entries, members {Members}",
            Id, Options, existing.HardState.Term, existing.Entries.Count, string.Join(",", _bootstrap.Select(m => $"{m.Key}={m.Value}")));
    }

    /// <summary>
    /// The initial members, for a node that starts with no state: the engine records them as its first snapshot, and
    /// from then on the log and its snapshots are the one record of the membership. A node that holds state ignores
    /// --members (and says so when they differ). A data folder from before the bootstrap snapshot has no snapshot and
    /// a members.txt: that list is used as it was then.
    /// </summary>
    private IReadOnlyDictionary<string, string> ResolveBootstrap(PersistentState existing)
    {
        bool hasState = existing.HardState.Term > 0 || existing.Entries.Count > 0 || existing.Snapshot != null;
        if (!hasState)
        {
            return _bootstrap;
        }
        string legacy = Path.Combine(Options.DataDirectory, LegacyBootstrapFile);
        if (existing.Snapshot is null && File.Exists(legacy))
        {
            return new NodeOptions { Id = Options.Id, Members = File.ReadAllText(legacy).Trim() }.ParseMembers(checkOwnAddress: false);
        }
        ClusterConfiguration? recorded = existing.Entries.LastOrDefault(e => e.Kind == EntryKind.Configuration) is { } entry
            ? ClusterConfiguration.Decode(entry.Data)
            : existing.Snapshot?.Metadata.Configuration;
        if (_bootstrap.Count > 0 && (recorded is null || !recorded.Voters.Concat(recorded.Learners).Order(StringComparer.Ordinal).SequenceEqual(_bootstrap.Keys.Order(StringComparer.Ordinal))))
        {
            _logger.LogWarning("{Folder} holds state: ignoring --members; the cluster recorded there is {Configuration}", Options.DataDirectory, recorded?.ToString() ?? "not known yet");
        }
        return new Dictionary<string, string>();
    }

    private Role _loggedRole = Role.Follower;
    private long? _readyAt;

    /// <summary>
    /// Ready to serve (/readyz): the engine runs, a leader is known, and this node has applied everything that was
    /// committed when it first learned of a leader (so a restarted or new node is not sent reads and writes it would
    /// answer from far behind). Null when ready; else why not.
    /// </summary>
    public string? NotReadyReason()
    {
        if (Failure is { } failure)
        {
            return $"the engine failed: {failure.Message}";
        }
        if (_node is not { } node)
        {
            return "starting";
        }
        RaftNodeStatus status = node.Status;
        if (status.LeaderId is null)
        {
            return "no leader is known";
        }
        long mark = _readyAt ??= status.CommitIndex; // the commit index as of the first leader it heard of
        return status.AppliedIndex >= mark ? null : $"catching up: applied {status.AppliedIndex} of {mark}";
    }

    /// <summary>
    /// What an operator reading the log must see: elections won and lost, term changes, committed membership
    /// changes, snapshots, abandoned operations and problems. Pre-votes are debug: an isolated node starts one every
    /// election timeout.
    /// </summary>
    private void LogEvent(RaftEvent e)
    {
        switch (e)
        {
            case RoleChanged { Role: Role.PreCandidate } r:
                _logger.LogDebug("node {Node} asks for pre-votes for term {Term}", Id, r.Term + 1);
                break;
            case RoleChanged r when r.Role is Role.Leader or Role.Candidate || _loggedRole is Role.Leader or Role.Candidate:
                _logger.LogInformation("node {Node} became {Role} in term {Term}", Id, r.Role, r.Term);
                _loggedRole = r.Role;
                break;
            case TermChanged t:
                _logger.LogInformation("node {Node} is in term {Term}", Id, t.Term);
                break;
            case CampaignStarted { PreVote: false } c:
                _logger.LogInformation("node {Node} starts an election for term {Term}: {Why}", Id, c.Term,
                    c.LastHeardFromLeader is { } heard ? $"nothing from the leader for {(c.At - heard).TotalMilliseconds:F0} ms" : "it has heard from no leader since it started");
                break;
            case LeaderChanged { LeaderId: null } l:
                _logger.LogInformation("node {Node} knows no leader in term {Term}", Id, l.Term);
                break;
            case LeaderChanged l:
                _logger.LogInformation("node {Node}: the leader is {Leader} in term {Term}", Id, l.LeaderId, l.Term);
                break;
            case ConfigurationChanged { Committed: true } c:
                _logger.LogInformation("node {Node}: configuration committed: {Configuration}", Id, c.Configuration);
                break;
            case SnapshotTaken s:
                _logger.LogInformation("node {Node} took a snapshot at index {Index} (term {Term}, {Bytes} bytes)", Id, s.Index, s.Term, s.Bytes);
                break;
            case SnapshotInstalled s:
                _logger.LogInformation("node {Node} installed a snapshot at index {Index} (term {Term}, {Bytes} bytes) from {Leader}", Id, s.Index, s.Term, s.Bytes, s.FromLeader);
                break;
            case OperationAbandoned a:
                _logger.LogWarning("node {Node}: gave up: {Notice}", Id, Events.EventStreamer.Describe(a.Notice));
                break;
            case ProblemDetected problem:
                _logger.LogWarning("node {Node}: {Problem}", Id, Events.EventStreamer.Describe(problem.Notice));
                break;
        }
    }

    /// <summary>Why this member's engine stopped working, or null: health reports it, and the process exits non-zero.</summary>
    public Exception? Failure => _node?.Failure ?? _failure;

    /// <summary>A node whose loop died must not look alive: log the cause and stop the host (compose, Kubernetes restart it).</summary>
    private async Task WatchAsync(RaftNode node)
    {
        try
        {
            await node.Completion;
        }
        catch (Exception e) when (node.Failure != null)
        {
            _failure = e;
            _logger.LogCritical(e, "node {Node} failed and stops: {Error}", Id, e.Message);
            _lifetime?.StopApplication();
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync();

    /// <summary>
    /// Stops this member as a kill would: queued writes are dropped, the batch in hand is not finished (nothing more is
    /// sent, applied or answered), peer streams are cut. The embedded cluster's "crash" is this; restart reopens the files.
    /// </summary>
    public async Task CrashAsync()
    {
        SqliteLogStore? sqlite = _sqlite;
        if (_node != null)
        {
            await _node.CrashAsync(sqlite is null ? null : sqlite.AbandonAsync);
            _node = null;
        }
        else if (sqlite != null)
        {
            await sqlite.AbandonAsync();
        }
        await DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_node != null)
        {
            await _node.DisposeAsync();
            _node = null;
        }
        await Transport.DisposeAsync();
        if (_store != null)
        {
            await _store.DisposeAsync();
            _store = null;
        }
    }
}

/// <summary>The clock and the message gate that the nodes of one watched cluster share (see <see cref="ControllableClock"/>).</summary>
public sealed record SharedClusterTime(ControllableClock Clock, MessageGate Gate);
