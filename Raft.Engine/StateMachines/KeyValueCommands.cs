using System.Text;

namespace Raft.Engine.StateMachines;

/// <summary>What a <see cref="KvCommand"/> does to the key-value state machine.</summary>
public enum KvOperation : byte
{
    Put = 1,
    Get = 2,
    Delete = 3,
    CompareAndSwap = 4,
}

/// <summary>
/// A key-value command. <see cref="ClientId"/> and <see cref="Sequence"/> form the client session (dissertation 6.3):
/// a client numbers its commands 1, 2, 3, ... and retries a command with the same number; it is applied once.
/// An empty client id means no session (no deduplication).
/// For compare-and-swap, <see cref="Expected"/> null means "the key must be absent" and <see cref="Value"/> null means "delete".
/// <see cref="IssuedAtMs"/> is the proposing leader's clock (Unix milliseconds, 0 if unknown): once in the log it is the
/// same on every replica, so sessions expire by it deterministically (dissertation 6.3).
/// </summary>
public sealed record KvCommand(KvOperation Operation, string Key, string? Value = null, string? Expected = null, string ClientId = "", long Sequence = 0)
{
    private const byte FormatVersion = 1;
    private const byte FormatVersionWithTime = 2;

    public long IssuedAtMs { get; init; }

    public static KvCommand Put(string key, string value, string clientId = "", long sequence = 0) => new(KvOperation.Put, key, value, null, clientId, sequence);
    public static KvCommand Get(string key, string clientId = "", long sequence = 0) => new(KvOperation.Get, key, null, null, clientId, sequence);
    public static KvCommand Delete(string key, string clientId = "", long sequence = 0) => new(KvOperation.Delete, key, null, null, clientId, sequence);
    public static KvCommand CompareAndSwap(string key, string? expected, string? value, string clientId = "", long sequence = 0) =>
        new(KvOperation.CompareAndSwap, key, value, expected, clientId, sequence);

    public byte[] Encode()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(IssuedAtMs == 0 ? FormatVersion : FormatVersionWithTime);
            if (IssuedAtMs != 0)
            {
                writer.Write(IssuedAtMs);
            }
            writer.Write((byte)Operation);
            writer.Write(ClientId);
            writer.Write(Sequence);
            writer.Write(Key);
            WriteOptional(writer, Value);
            WriteOptional(writer, Expected);
        }
        return buffer.ToArray();
    }

    /// <summary>Decodes a command; throws <see cref="FormatException"/> for bytes that are not one.</summary>
    public static KvCommand Decode(byte[] data)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(data, writable: false), Encoding.UTF8);
            byte version = reader.ReadByte();
            if (version is not (FormatVersion or FormatVersionWithTime))
            {
                throw new FormatException($"unknown command format {version}");
            }
            long issuedAt = version == FormatVersionWithTime ? reader.ReadInt64() : 0;
            var operation = (KvOperation)reader.ReadByte();
            if (!Enum.IsDefined(operation))
            {
                throw new FormatException($"unknown operation {(byte)operation}");
            }
            string clientId = reader.ReadString();
            long sequence = reader.ReadInt64();
            string key = reader.ReadString();
            string? value = ReadOptional(reader);
            string? expected = ReadOptional(reader);
            if (reader.BaseStream.Position != reader.BaseStream.Length)
            {
                throw new FormatException("bytes follow the end of the command");
            }
            return new KvCommand(operation, key, value, expected, clientId, sequence) { IssuedAtMs = issuedAt };
        }
        catch (EndOfStreamException e)
        {
            throw new FormatException("truncated command", e);
        }
    }

    /// <summary>The command in one line, long keys and values abbreviated (<see cref="ValueText"/>).</summary>
    public override string ToString() => Operation switch
    {
        KvOperation.Put => $"put {ValueText.Show(Key)}={ValueText.Show(Value)}",
        KvOperation.Get => $"get {ValueText.Show(Key)}",
        KvOperation.Delete => $"delete {ValueText.Show(Key)}",
        _ => $"cas {ValueText.Show(Key)} {ValueText.Show(Expected)}->{ValueText.Show(Value)}",
    };

    internal static void WriteOptional(BinaryWriter writer, string? value)
    {
        writer.Write(value != null);
        if (value != null)
        {
            writer.Write(value);
        }
    }

    internal static string? ReadOptional(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;
}

/// <summary>How the key-value state machine answered a command.</summary>
public enum KvStatus : byte
{
    Ok = 0,
    NotFound = 1,
    /// <summary>Compare-and-swap found a different value; <see cref="KvResult.Value"/> holds the current one.</summary>
    CompareFailed = 2,
    /// <summary>The command's sequence number is older than the session's last: its answer is gone.</summary>
    StaleSequence = 3,
    /// <summary>The command could not be decoded.</summary>
    Invalid = 4,
    /// <summary>
    /// The session's last sequence number was used again for a different command: two clients share an id (or one
    /// restarted its numbering). Nothing was applied, and the earlier answer is not handed out for a command it does not belong to.
    /// </summary>
    SessionReused = 5,
    /// <summary>
    /// The command names a session the state machine does not hold (it was idle past the session timeout, or evicted
    /// as the least recently used) with a sequence number past 1. Nothing was applied; start a new session.
    /// </summary>
    SessionExpired = 6,
}

/// <summary>The answer to a <see cref="KvCommand"/>: a status and, for get and put, the value (or previous value).</summary>
public sealed record KvResult(KvStatus Status, string? Value = null)
{
    /// <summary>
    /// The log index of the entry whose command produced this result (a retry in a session gets the first one's);
    /// 0 for results stored by versions that did not record it.
    /// </summary>
    public long Index { get; init; }

    /// <summary>Results are equal when their outcomes are (status and value): where they were applied is not part of it.</summary>
    public bool Equals(KvResult? other) => other is not null && Status == other.Status && Value == other.Value;

    public override int GetHashCode() => HashCode.Combine(Status, Value);

    public byte[] Encode()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write((byte)Status);
            KvCommand.WriteOptional(writer, Value);
            writer.Write(Index);
        }
        return buffer.ToArray();
    }

    public static KvResult Decode(byte[] data)
    {
        using var reader = new BinaryReader(new MemoryStream(data, writable: false), Encoding.UTF8);
        var status = (KvStatus)reader.ReadByte();
        string? value = KvCommand.ReadOptional(reader);
        // Results cached in sessions by earlier versions end here.
        long index = reader.BaseStream.Position < reader.BaseStream.Length ? reader.ReadInt64() : 0;
        return new KvResult(status, value) { Index = index };
    }
}
