using Raft.Engine.Membership;

namespace Raft.Engine.Log;

/// <summary>What a snapshot stands in for: the log up to <see cref="Index"/> (whose entry had <see cref="Term"/>) and the configuration there.</summary>
public sealed record SnapshotMetadata(long Index, long Term, ClusterConfiguration Configuration);

/// <summary>A snapshot: its metadata and the state machine's state (client sessions included) as written by it.</summary>
public sealed record Snapshot(SnapshotMetadata Metadata, byte[] Data);
