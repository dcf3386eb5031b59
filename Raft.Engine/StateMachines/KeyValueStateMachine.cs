using System.Text;

namespace Raft.Engine.StateMachines;

/// <summary>
/// The built-in key-value store: put, get, delete, compare-and-swap, with client sessions so that a retried
/// command is applied once and answered with its first result (dissertation 6.3). Sessions are part of the state
/// (and of snapshots), so every node deduplicates the same way. Least recently used sessions are evicted past
/// <see cref="MaxSessions"/>, by log index, which is deterministic.
/// </summary>
public sealed class KeyValueStateMachine(int maxSessions = 10_000) : IStateMachine
{
    private const uint SnapshotMagicV1 = 0x52_4B_56_31; // "RKV1": sessions without command digests
    private const uint SnapshotMagic = 0x52_4B_56_32; // "RKV2"
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, string> _data = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);

    /// <summary>A client session's last command: its number, a digest of it (to tell a retry from a reuse), its answer.</summary>
    private sealed record Session(long Sequence, byte[] Result, long LastIndex, byte[] Digest);

    /// <summary>16 bytes of SHA-256 of the encoded command (which includes its session): equal for a retry only.</summary>
    private static byte[] DigestOf(byte[] command) => System.Security.Cryptography.SHA256.HashData(command)[..16];

    public int MaxSessions { get; } = maxSessions;

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

            bool tracked = decoded.ClientId.Length > 0;
            if (tracked && _sessions.TryGetValue(decoded.ClientId, out Session? session))
            {
                if (decoded.Sequence == session.Sequence)
                {
                    return session.Digest.Length == 0 || session.Digest.AsSpan().SequenceEqual(DigestOf(command))
                        ? session.Result // a retry: answered with the first result, not applied again
                        : new KvResult(KvStatus.SessionReused, $"session {decoded.ClientId} already used sequence {decoded.Sequence} for another command").Encode();
                }
                if (decoded.Sequence < session.Sequence)
                {
                    return new KvResult(KvStatus.StaleSequence).Encode();
                }
            }

            byte[] result = Execute(decoded).Encode();
            if (tracked)
            {
                _sessions[decoded.ClientId] = new Session(decoded.Sequence, result, index, DigestOf(command));
                if (_sessions.Count > MaxSessions)
                {
                    _sessions.Remove(_sessions.MinBy(s => s.Value.LastIndex).Key);
                }
            }
            return result;
        }
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
            return new Capture(AppliedIndex, [.. _data], [.. _sessions]);
        }
    }

    /// <summary>Writes a snapshot of the state as of now (a capture written at once).</summary>
    public ValueTask WriteSnapshotAsync(Stream destination, CancellationToken cancellationToken = default) =>
        CaptureSnapshot().WriteToAsync(destination, cancellationToken);

    private sealed class Capture(long applied, KeyValuePair<string, string>[] data, KeyValuePair<string, Session>[] sessions) : IStateCapture
    {
        public ValueTask WriteToAsync(Stream destination, CancellationToken cancellationToken = default)
        {
            using var writer = new BinaryWriter(destination, Encoding.UTF8, leaveOpen: true);
            writer.Write(SnapshotMagic);
            writer.Write(applied);
            writer.Write(data.Length);
            foreach ((string key, string value) in data)
            {
                writer.Write(key);
                writer.Write(value);
            }
            writer.Write(sessions.Length);
            Array.Sort(sessions, (a, b) => string.CompareOrdinal(a.Key, b.Key)); // the same bytes on every node
            foreach ((string client, Session session) in sessions)
            {
                writer.Write(client);
                writer.Write(session.Sequence);
                writer.Write(session.LastIndex);
                writer.Write(session.Result.Length);
                writer.Write(session.Result);
                writer.Write(session.Digest.Length);
                writer.Write(session.Digest);
            }
            return ValueTask.CompletedTask;
        }
    }

    public string? CheckSnapshot(byte[] data)
    {
        try
        {
            var scratch = new KeyValueStateMachine(MaxSessions);
            scratch.RestoreSnapshotAsync(new MemoryStream(data, writable: false)).AsTask().GetAwaiter().GetResult();
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException or FormatException or ArgumentException or OverflowException or OutOfMemoryException)
        {
            return $"not a key-value snapshot this node can restore ({e.GetType().Name}: {e.Message})";
        }
    }

    public ValueTask RestoreSnapshotAsync(Stream source, CancellationToken cancellationToken = default)
    {
        using var reader = new BinaryReader(source, Encoding.UTF8, leaveOpen: true);
        uint magic = reader.ReadUInt32();
        if (magic is not (SnapshotMagic or SnapshotMagicV1))
        {
            throw new InvalidDataException("not a key-value snapshot");
        }
        // Read everything before touching the current state, so a bad snapshot leaves it intact.
        long applied = reader.ReadInt64();
        var data = new List<KeyValuePair<string, string>>();
        for (int i = reader.ReadInt32(); i > 0; i--)
        {
            data.Add(new(reader.ReadString(), reader.ReadString()));
        }
        var sessions = new List<KeyValuePair<string, Session>>();
        for (int i = reader.ReadInt32(); i > 0; i--)
        {
            string client = reader.ReadString();
            long sequence = reader.ReadInt64();
            long lastIndex = reader.ReadInt64();
            byte[] result = reader.ReadBytes(reader.ReadInt32());
            byte[] digest = magic == SnapshotMagic ? reader.ReadBytes(reader.ReadInt32()) : []; // older snapshots: no digest, retries trusted
            sessions.Add(new(client, new Session(sequence, result, lastIndex, digest)));
        }
        if (source.CanSeek && source.Position != source.Length)
        {
            throw new InvalidDataException($"{source.Length - source.Position} bytes follow the end of the snapshot");
        }
        lock (_lock)
        {
            AppliedIndex = applied;
            _data.Clear();
            foreach ((string key, string value) in data)
            {
                _data[key] = value;
            }
            _sessions.Clear();
            foreach ((string client, Session session) in sessions)
            {
                _sessions[client] = session;
            }
        }
        return ValueTask.CompletedTask;
    }
}
