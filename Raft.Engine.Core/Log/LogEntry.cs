namespace Raft.Engine.Log;

/// <summary>What an entry carries: a client command, the no-op a new leader appends, or a cluster configuration.</summary>
public enum EntryKind : byte
{
    Command = 0,
    NoOp = 1,
    /// <summary>Data is an encoded <see cref="Membership.ClusterConfiguration"/>; it takes effect when appended.</summary>
    Configuration = 2,
}

/// <summary>One entry of the replicated log. Index and term identify it; the data is opaque to the engine.</summary>
public sealed record LogEntry(long Index, long Term, EntryKind Kind, byte[] Data)
{
    public static LogEntry NoOp(long index, long term) => new(index, term, EntryKind.NoOp, []);

    /// <summary>Approximate size on the wire, used to cap the bytes of one AppendEntries.</summary>
    public int Size => SizeOf(Data);

    /// <summary>The <see cref="Size"/> an entry carrying <paramref name="data"/> has.</summary>
    public static int SizeOf(byte[] data) => data.Length + 24;
}
