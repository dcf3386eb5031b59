using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Replication;

/// <summary>What a follower did with one chunk of an InstallSnapshot.</summary>
public enum ChunkResult
{
    /// <summary>Taken; the sender goes on from <see cref="ChunkOutcome.NextOffset"/>.</summary>
    Continue,
    /// <summary>Not the chunk expected (lost, reordered, or of another snapshot): resend from <see cref="ChunkOutcome.NextOffset"/>.</summary>
    OutOfOrder,
    /// <summary>The snapshot would exceed the size limit: its bytes are dropped.</summary>
    TooLarge,
    /// <summary>The last chunk arrived: <see cref="ChunkOutcome.Snapshot"/> is complete.</summary>
    Complete,
}

internal readonly record struct ChunkOutcome(ChunkResult Result, long NextOffset = 0, Snapshot? Snapshot = null);

/// <summary>
/// A follower's side of InstallSnapshot: the chunks of one snapshot collected in order, resumable after a loss
/// (a chunk at offset 0 of the same snapshot does not throw away what arrived), and bounded by
/// <see cref="RaftOptions.MaxSnapshotBytes"/> so that no sender can make the server buffer more.
/// </summary>
internal sealed class SnapshotReceiver(long maxBytes)
{
    private SnapshotMetadata? _metadata;
    private MemoryStream? _data;

    /// <summary>Forgets a partly received snapshot (it is no longer needed).</summary>
    public void Discard()
    {
        _metadata = null;
        _data = null;
    }

    public ChunkOutcome Receive(InstallSnapshot chunk)
    {
        SnapshotMetadata metadata = chunk.Metadata;
        bool same = _metadata == metadata && _data is not null;
        if (chunk.Offset == 0 && !(same && _data!.Length > 0))
        {
            (_metadata, _data) = (metadata, new MemoryStream());
            same = true;
        }
        if (!same || chunk.Offset != _data!.Length)
        {
            return new ChunkOutcome(ChunkResult.OutOfOrder, same ? _data!.Length : 0);
        }
        if (_data.Length + chunk.Data.Length > maxBytes)
        {
            Discard();
            return new ChunkOutcome(ChunkResult.TooLarge);
        }
        _data.Write(chunk.Data);
        if (!chunk.Done)
        {
            return new ChunkOutcome(ChunkResult.Continue, _data.Length);
        }
        var snapshot = new Snapshot(metadata, _data.ToArray());
        Discard();
        return new ChunkOutcome(ChunkResult.Complete, Snapshot: snapshot);
    }
}
