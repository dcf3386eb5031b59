using Raft.Protocol;

namespace Raft.Node.Faults;

/// <summary>
/// The node's own fault injection, for teaching and testing: drop peer traffic to and from chosen peers (both
/// directions), all peers (isolate), a random fraction of messages, and delay the rest. Client, admin and hub traffic
/// is never touched, so an isolated node stays observable. Off unless the node was started with it enabled.
/// </summary>
public sealed class FaultInjector(bool enabled)
{
    private readonly Lock _lock = new();
    private readonly Random _random = new();
    private HashSet<string> _cut = new(StringComparer.Ordinal);
    private HashSet<string> _cutOutgoing = new(StringComparer.Ordinal);
    private bool _isolated;
    private double _dropRate;
    private int _maxDelayMs;

    public bool Enabled { get; } = enabled;

    /// <summary>Raised after the faults change.</summary>
    public event Action<FaultSpec>? Changed;

    public FaultSpec Current
    {
        get
        {
            lock (_lock)
            {
                var spec = new FaultSpec { Isolate = _isolated, DropRate = _dropRate, MaxDelayMs = _maxDelayMs };
                spec.CutPeers.AddRange(_cut.Order(StringComparer.Ordinal));
                spec.CutOutgoing.AddRange(_cutOutgoing.Order(StringComparer.Ordinal));
                return spec;
            }
        }
    }

    public bool Active
    {
        get
        {
            lock (_lock)
            {
                return _isolated || _cut.Count > 0 || _cutOutgoing.Count > 0 || _dropRate > 0 || _maxDelayMs > 0;
            }
        }
    }

    public void Set(FaultSpec spec)
    {
        if (!Enabled)
        {
            throw new InvalidOperationException("fault injection is disabled on this node (start it with --enable-fault-injection true)");
        }
        if (!(spec.DropRate is >= 0 and <= 1) || spec.MaxDelayMs is < 0 or > 60_000)
        {
            throw new ArgumentException("drop_rate must be within [0, 1] and max_delay_ms within [0, 60000]");
        }
        lock (_lock)
        {
            _cut = new HashSet<string>(spec.CutPeers, StringComparer.Ordinal);
            _cutOutgoing = new HashSet<string>(spec.CutOutgoing, StringComparer.Ordinal);
            _isolated = spec.Isolate;
            _dropRate = spec.DropRate;
            _maxDelayMs = spec.MaxDelayMs;
        }
        Changed?.Invoke(Current);
    }

    public void Heal() => Set(new FaultSpec());

    /// <summary>Whether a message from <paramref name="peer"/> is to be dropped now.</summary>
    public bool ShouldDrop(string peer) => ShouldDrop(peer, outgoing: false);

    /// <summary>Whether a message to <paramref name="peer"/> is to be dropped now.</summary>
    public bool ShouldDropOutgoing(string peer) => ShouldDrop(peer, outgoing: true);

    private bool ShouldDrop(string peer, bool outgoing)
    {
        lock (_lock)
        {
            return _isolated || _cut.Contains(peer) || (outgoing && _cutOutgoing.Contains(peer)) || (_dropRate > 0 && _random.NextDouble() < _dropRate);
        }
    }

    /// <summary>How long to hold a message to <paramref name="peer"/> before sending it.</summary>
    public TimeSpan Delay()
    {
        lock (_lock)
        {
            return _maxDelayMs > 0 ? TimeSpan.FromMilliseconds(_random.Next(_maxDelayMs + 1)) : TimeSpan.Zero;
        }
    }
}
