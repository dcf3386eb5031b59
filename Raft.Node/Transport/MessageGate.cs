using Raft.Engine.Consensus;
using Raft.Engine.Hosting;

namespace Raft.Node.Transport;

/// <summary>A peer message on its way, as the gate holds it: who sends what to whom, and when it left and lands.</summary>
/// <param name="Dropped">Dropped by fault injection at its sender: drawn until it would have arrived, never delivered.</param>
public sealed record InFlightMessage(long Id, RaftMessage Message, TimeSpan SentAt, TimeSpan ArrivesAt, bool Dropped = false);

/// <summary>
/// Where the messages of an embedded cluster wait between their sender and the wire, on the cluster's
/// <see cref="ControllableClock"/>: each spends <see cref="FlightTime"/> of cluster time in flight (so a slowed-down
/// cluster shows it travelling), none moves while the clock is paused, and <see cref="DeliverNext"/> lets the oldest
/// one go at once (one message, stepped). Shared by every node of the cluster, so the order is the cluster's.
/// </summary>
public sealed class MessageGate(ControllableClock clock)
{
    private readonly Lock _lock = new();
    private readonly List<(InFlightMessage Message, Action Deliver, ITimer? Timer)> _held = [];
    private long _nextId;

    /// <summary>How long each message takes on this clock; zero hands it on at once while the clock runs.</summary>
    public TimeSpan FlightTime { get; set; }

    /// <summary>
    /// How long a message sent while the clock is paused takes, at least: so that stepping the clock shows each message
    /// in flight for a step (one tick is the natural choice) instead of delivering it in the step that sent it.
    /// </summary>
    public TimeSpan PausedFlightTime { get; set; }

    public ControllableClock Clock => clock;

    /// <summary>Raised when a message is held or delivered.</summary>
    public event Action? Changed;

    /// <summary>Raised for every message handed on to the wire, held or not (the page counts votes from it).</summary>
    public event Action<RaftMessage>? Delivered;

    /// <summary>The messages held now, oldest first.</summary>
    public IReadOnlyList<InFlightMessage> InFlight
    {
        get
        {
            lock (_lock)
            {
                return [.. _held.Select(h => h.Message)];
            }
        }
    }

    /// <summary>Holds <paramref name="message"/> for its flight time (or until released); then <paramref name="deliver"/> runs.</summary>
    public void Send(RaftMessage message, Action deliver)
    {
        if (FlightTime <= TimeSpan.Zero && !clock.Paused)
        {
            deliver();
            Delivered?.Invoke(message);
            return;
        }
        Hold(message, deliver, dropped: false);
    }

    /// <summary>A message fault injection dropped at its sender: shown on its way for its flight time, then gone.</summary>
    public void Dropped(RaftMessage message)
    {
        if (FlightTime > TimeSpan.Zero || clock.Paused)
        {
            Hold(message, () => { }, dropped: true);
        }
    }

    private void Hold(RaftMessage message, Action deliver, bool dropped)
    {
        TimeSpan now = clock.Elapsed;
        TimeSpan flight = clock.Paused && PausedFlightTime > FlightTime ? PausedFlightTime : FlightTime;
        lock (_lock)
        {
            var inFlight = new InFlightMessage(++_nextId, message, now, now + flight, dropped);
            ITimer timer = clock.CreateTimer(_ => Deliver(inFlight.Id), null, flight, Timeout.InfiniteTimeSpan);
            _held.Add((inFlight, deliver, timer));
        }
        Changed?.Invoke();
    }

    /// <summary>Delivers the oldest held message now, whatever the clock; false when none is held.</summary>
    public bool DeliverNext()
    {
        long? oldest;
        lock (_lock)
        {
            oldest = _held.FirstOrDefault(h => !h.Message.Dropped).Message?.Id;
        }
        return oldest is long id && Deliver(id);
    }

    private bool Deliver(long id)
    {
        Action deliver;
        InFlightMessage held;
        lock (_lock)
        {
            int at = _held.FindIndex(h => h.Message.Id == id);
            if (at < 0)
            {
                return false;
            }
            (held, deliver, ITimer? timer) = _held[at];
            timer?.Dispose();
            _held.RemoveAt(at);
        }
        deliver();
        if (!held.Dropped)
        {
            Delivered?.Invoke(held.Message);
        }
        Changed?.Invoke();
        return true;
    }

    /// <summary>Drops what is held for or from <paramref name="node"/> (it crashed: what it had sent is lost with it, what was sent to it finds no one).</summary>
    public void Forget(string node)
    {
        lock (_lock)
        {
            foreach (var held in _held.Where(h => h.Message.Message.From == node || h.Message.Message.To == node).ToList())
            {
                held.Timer?.Dispose();
                _held.Remove(held);
            }
        }
        Changed?.Invoke();
    }
}
