using System.Text;

namespace Raft.Engine.StateMachines;

/// <summary>
/// The built-in key-value store: put, get, delete, compare-and-swap, with client sessions so that a retried
/// command is applied once and answered with its first result (dissertation 6.3). Sessions are part of the state
/// (and of snapshots), so every node deduplicates the same way. A session idle for longer than
/// <see cref="SessionTimeout"/>, by the clock the leaders stamp on commands (<see cref="KvCommand.IssuedAtMs"/>), expires;
/// past <see cref="MaxSessions"/> the least recently used one is evicted. Both are decided by what is in the log, so every
/// replica expires the same sessions at the same index. Every replica must be given the same two limits.
/// </summary>
public sealed class KeyValueStateMachine(int maxSessions = 10_000, TimeSpan? sessionTimeout = null) : IStateMachine
{
    private const uint SnapshotMagicV1 = 0x52_4B_56_31; // "RKV1": sessions without command digests
    private const uint SnapshotMagicV2 = 0x52_4B_56_32; // "RKV2": no session clock
    private const uint SnapshotMagic = 0x52_4B_56_33; // "RKV3"
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, string> _data = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LinkedListNode<Session>> _sessions = new(StringComparer.Ordinal);
    /// <summary>Sessions from least to most recently used: expiry and eviction take from the front.</summary>
    private readonly LinkedList<Session> _byLastUse = new();
    /// <summary>The latest time stamped on an applied command: the state machine's clock, the same on every replica.</summary>
    private long _clockMs;

    /// <summary>
    /// A client session's last command: its number, a digest of it (to tell a retry from a reuse), its answer, and when
    /// (log index, and the clock) it was last used.
    /// </summary>
    private sealed record Session(string ClientId, long Sequence, byte[] Result, long LastIndex, byte[] Digest, long LastUsedMs);

    /// <summary>
    /// 16 bytes of SHA-256 of the encoded command (which includes its session) without its time stamp, which a retry
    /// through another leader carries differently: equal for a retry only.
    /// </summary>
    private static byte[] DigestOf(KvCommand command) => System.Security.Cryptography.SHA256.HashData((command with { IssuedAtMs = 0 }).Encode())[..16];

    public int MaxSessions { get; } = maxSessions;

    /// <summary>How long a session may be idle before it expires (1 hour unless given).</summary>
    public TimeSpan SessionTimeout { get; } = sessionTimeout ?? TimeSpan.FromHours(1);

    /// <summary>The last applied index (0 before any).</summary>
    public long AppliedIndex { get; private set; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _data.Count;
            }
        }
    }

    public int SessionCount
    {
        get
        {
            lock (_lock)
            {
                return _sessions.Count;
            }
        }
    }

    /// <summary>A local (possibly stale) read of this node's applied state.</summary>
    public string? GetLocal(string key)
    {
        lock (_lock)
        {
            return _data.GetValueOrDefault(key);
        }
    }

    /// <summary>A copy of every key and value, in key order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Snapshot()
    {
        lock (_lock)
        {
            return [.. _data];
        }
    }

    public byte[] Apply(long index, byte[] command)
    {
        lock (_lock)
        {
            AppliedIndex = index;
            KvCommand decoded;
            try
            {
                decoded = KvCommand.Decode(command);
            }
            catch (FormatException e)
            {
                return new KvResult(KvStatus.Invalid, e.Message).Encode();
            }
            if (_clockMs == 0 && decoded.IssuedAtMs > 0)
            {
                StartClock(decoded.IssuedAtMs);
            }
            _clockMs = Math.Max(_clockMs, decoded.IssuedAtMs);
            ExpireIdleSessions();
            if (decoded.ClientId.Length == 0)
            {
                return (Execute(decoded) with { Index = index }).Encode(); // no session: a retry may apply twice
            }

            byte[] digest = DigestOf(decoded);
            if (_sessions.TryGetValue(decoded.ClientId, out LinkedListNode<Session>? node))
            {
                Session session = node.Value;
                if (decoded.Sequence == session.Sequence)
                {
                    return session.Digest.Length == 0 || session.Digest.AsSpan().SequenceEqual(digest)
                        ? session.Result // a retry: answered with the first result, not applied again
                        : new KvResult(KvStatus.SessionReused, $"session {decoded.ClientId} already used sequence {decoded.Sequence} for another command").Encode();
                }
                if (decoded.Sequence < session.Sequence)
                {
                    return new KvResult(KvStatus.StaleSequence).Encode();
                }
            }
            else if (decoded.Sequence > 1)
            {
                // Its record is gone, so whether an earlier try of this command was applied cannot be told: refuse.
                return new KvResult(KvStatus.SessionExpired,
                    $"session {decoded.ClientId} is not known here (idle past {SessionTimeout.TotalSeconds:F0} s, or evicted); nothing was applied: start a new session").Encode();
            }

            byte[] result = (Execute(decoded) with { Index = index }).Encode();
            Remember(new Session(decoded.ClientId, decoded.Sequence, result, index, digest, _clockMs));
            return result;
        }
    }

    /// <summary>Records a session's latest command as its most recently used, evicting the least recently used past the limit.</summary>
    private void Remember(Session session)
    {
        if (_sessions.Remove(session.ClientId, out LinkedListNode<Session>? old))
        {
            _byLastUse.Remove(old);
        }
        _sessions[session.ClientId] = _byLastUse.AddLast(session);
        while (_sessions.Count > MaxSessions)
        {
            Forget(_byLastUse.First!);
        }
    }

    /// <summary>The first time-stamped command: sessions from before (older snapshots, unstamped commands) count as used now.</summary>
    private void StartClock(long nowMs)
    {
        for (LinkedListNode<Session>? node = _byLastUse.First; node != null; node = node.Next)
        {
            node.Value = node.Value with { LastUsedMs = nowMs };
        }
    }

    private void ExpireIdleSessions()
    {
        long timeout = (long)SessionTimeout.TotalMilliseconds;
        while (_byLastUse.First is { } oldest && _clockMs - oldest.Value.LastUsedMs > timeout)
        {
            Forget(oldest);
        }
    }

    private void Forget(LinkedListNode<Session> node)
    {
        _byLastUse.Remove(node);
        _sessions.Remove(node.Value.ClientId);
    }

    private KvResult Execute(KvCommand command)
    {
        switch (command.Operation)
        {
            case KvOperation.Put:
            {
                string? previous = _data.GetValueOrDefault(command.Key);
                _data[command.Key] = command.Value ?? "";
                return new KvResult(KvStatus.Ok, previous);
            }
            case KvOperation.Get:
                return _data.TryGetValue(command.Key, out string? value) ? new KvResult(KvStatus.Ok, value) : new KvResult(KvStatus.NotFound);
            case KvOperation.Delete:
                return _data.Remove(command.Key, out string? removed) ? new KvResult(KvStatus.Ok, removed) : new KvResult(KvStatus.NotFound);
            case KvOperation.CompareAndSwap:
            {
                string? current = _data.GetValueOrDefault(command.Key);
                if (current != command.Expected)
                {
                    return new KvResult(KvStatus.CompareFailed, current);
                }
                if (command.Value is null)
                {
                    _data.Remove(command.Key);
                }
                else
                {
                    _data[command.Key] = command.Value;
                }
                return new KvResult(KvStatus.Ok, current);
            }
            default:
                return new KvResult(KvStatus.Invalid, $"unknown operation {command.Operation}");
        }
    }

    /// <summary>Copies the contents and sessions (references to immutable strings: one array copy each).</summary>
    public IStateCapture CaptureSnapshot()
    {
        lock (_lock)
        {
            return new Capture(AppliedIndex, _clockMs, [.. _data], [.. _byLastUse]);
        }
    }

    /// <summary>Writes a snapshot of the state as of now (a capture written at once).</summary>
    public ValueTask WriteSnapshotAsync(Stream destination, CancellationToken cancellationToken = default) =>
        CaptureSnapshot().WriteToAsync(destination, cancellationToken);

    private sealed class Capture(long applied, long clockMs, KeyValuePair<string, string>[] data, Session[] sessions) : IStateCapture
    {
        /// <summary>Encodes in memory (cheap, CPU only), then writes to <paramref name="destination"/> asynchronously.</summary>
        public async ValueTask WriteToAsync(Stream destination, CancellationToken cancellationToken = default)
        {
            using var encoded = new MemoryStream();
            Encode(encoded);
            await destination.WriteAsync(encoded.GetBuffer().AsMemory(0, (int)encoded.Length), cancellationToken);
        }

        private void Encode(Stream destination)
        {
            using var writer = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            writer.Write(SnapshotMagic);
            writer.Write(applied);
            writer.Write(clockMs);
            writer.Write(data.Length);
            foreach ((string key, string value) in data)
            {
                writer.Write(key);
                writer.Write(value);
            }
            writer.Write(sessions.Length);
            foreach (Session session in sessions) // least recently used first: the order is part of the state
            {
                writer.Write(session.ClientId);
                writer.Write(session.Sequence);
                writer.Write(session.LastIndex);
                writer.Write(session.Result.Length);
                writer.Write(session.Result);
                writer.Write(session.Digest.Length);
                writer.Write(session.Digest);
                writer.Write(session.LastUsedMs);
            }
        }
    }

    public string? CheckSnapshot(byte[] data)
    {
        try
        {
            var scratch = new KeyValueStateMachine(MaxSessions, SessionTimeout);
            scratch.Restore(new MemoryStream(data, writable: false));
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or FormatException or ArgumentException or OverflowException or OutOfMemoryException)
        {
            return $"not a key-value snapshot this node can restore ({e.GetType().Name}: {e.Message})";
        }
    }

    /// <summary>Reads <paramref name="source"/> asynchronously (unless it is in memory already), then restores from memory.</summary>
    public async ValueTask RestoreSnapshotAsync(Stream source, CancellationToken cancellationToken = default)
    {
        if (source is not MemoryStream)
        {
            var copy = new MemoryStream();
            await source.CopyToAsync(copy, cancellationToken);
            copy.Position = 0;
            source = copy;
        }
        Restore(source);
    }

    private void Restore(Stream source)
    {
        using var reader = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        uint magic = reader.ReadUInt32();
        if (magic is not (SnapshotMagic or SnapshotMagicV2 or SnapshotMagicV1))
        {
            throw new InvalidDataException("not a key-value snapshot");
        }
        // Read everything before touching the current state, so a bad snapshot leaves it intact.
        long applied = reader.ReadInt64();
        long clock = magic == SnapshotMagic ? reader.ReadInt64() : 0;
        var data = new List<KeyValuePair<string, string>>();
        for (int i = reader.ReadInt32(); i > 0; i--)
        {
            data.Add(new(reader.ReadString(), reader.ReadString()));
        }
        var sessions = new List<Session>();
        for (int i = reader.ReadInt32(); i > 0; i--)
        {
            string client = reader.ReadString();
            long sequence = reader.ReadInt64();
            long lastIndex = reader.ReadInt64();
            byte[] result = reader.ReadBytes(reader.ReadInt32());
            byte[] digest = magic == SnapshotMagicV1 ? [] : reader.ReadBytes(reader.ReadInt32()); // RKV1: no digest, retries trusted
            long lastUsed = magic == SnapshotMagic ? reader.ReadInt64() : 0;
            sessions.Add(new Session(client, sequence, result, lastIndex, digest, lastUsed));
        }
        if (source.CanSeek && source.Position != source.Length)
        {
            throw new InvalidDataException($"{source.Length - source.Position} bytes follow the end of the snapshot");
        }
        if (magic != SnapshotMagic)
        {
            sessions.Sort((a, b) => a.LastIndex.CompareTo(b.LastIndex)); // older snapshots were in client order
        }
        lock (_lock)
        {
            AppliedIndex = applied;
            _clockMs = clock;
            _data.Clear();
            foreach ((string key, string value) in data)
            {
                _data[key] = value;
            }
            _sessions.Clear();
            _byLastUse.Clear();
            foreach (Session session in sessions)
            {
                _sessions[session.ClientId] = _byLastUse.AddLast(session);
            }
        }
    }
}
