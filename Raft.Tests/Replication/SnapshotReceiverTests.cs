using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Replication;

namespace Raft.Tests.Replication;

public sealed class SnapshotReceiverTests
{
    private static readonly SnapshotMetadata At10 = new(10, 2, new ClusterConfiguration(["a", "b"]));
    private static readonly SnapshotMetadata At20 = new(20, 3, new ClusterConfiguration(["a", "b"]));

    private static InstallSnapshot Chunk(SnapshotMetadata metadata, long offset, string data, bool done) =>
        new("a", "b", 3, metadata, offset, System.Text.Encoding.UTF8.GetBytes(data), done);

    [Fact]
    public void Chunks_in_order_make_the_snapshot()
    {
        var receiver = new SnapshotReceiver(maxBytes: 100);
        Assert.Equal(new ChunkOutcome(ChunkResult.Continue, 3), receiver.Receive(Chunk(At10, 0, "abc", false)));
        ChunkOutcome last = receiver.Receive(Chunk(At10, 3, "de", true));
        Assert.Equal(ChunkResult.Complete, last.Result);
        Assert.Equal("abcde", System.Text.Encoding.UTF8.GetString(last.Snapshot!.Data));
        Assert.Equal(At10, last.Snapshot.Metadata);
    }

    [Fact]
    public void A_lost_or_reordered_chunk_asks_for_the_offset_expected()
    {
        var receiver = new SnapshotReceiver(100);
        Assert.Equal(new ChunkOutcome(ChunkResult.OutOfOrder, 0), receiver.Receive(Chunk(At10, 3, "de", true)));
        receiver.Receive(Chunk(At10, 0, "abc", false));
        Assert.Equal(new ChunkOutcome(ChunkResult.OutOfOrder, 3), receiver.Receive(Chunk(At10, 5, "x", true)));
        // A resent first chunk of the same snapshot does not throw away what arrived.
        Assert.Equal(new ChunkOutcome(ChunkResult.OutOfOrder, 3), receiver.Receive(Chunk(At10, 0, "abc", false)));
        // A chunk of another snapshot (not from its start) is out of order too; its first chunk starts over.
        Assert.Equal(new ChunkOutcome(ChunkResult.OutOfOrder, 0), receiver.Receive(Chunk(At20, 3, "zz", false)));
        Assert.Equal(new ChunkOutcome(ChunkResult.Continue, 1), receiver.Receive(Chunk(At20, 0, "z", false)));
    }

    [Fact]
    public void A_snapshot_past_the_limit_is_dropped()
    {
        var receiver = new SnapshotReceiver(maxBytes: 4);
        receiver.Receive(Chunk(At10, 0, "abc", false));
        Assert.Equal(ChunkResult.TooLarge, receiver.Receive(Chunk(At10, 3, "de", true)).Result);
        Assert.Equal(new ChunkOutcome(ChunkResult.OutOfOrder, 0), receiver.Receive(Chunk(At10, 3, "d", true))); // nothing kept
    }
}
