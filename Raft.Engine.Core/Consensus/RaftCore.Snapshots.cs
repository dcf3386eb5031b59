using Raft.Engine.Log;
using Raft.Engine.Replication;

namespace Raft.Engine.Consensus;

/// <summary>
/// Snapshots and log compaction (section 7): the host snapshots the state machine, the core compacts its log, and a
/// follower that needs compacted entries receives the snapshot in chunks (InstallSnapshot; the chunks are collected by
/// <see cref="SnapshotReceiver"/>), resumable after a loss.
/// </summary>
public sealed partial class RaftCore
{
    /// <summary>
    /// The host's check of a snapshot received from the leader, run before it replaces anything: null when the bytes are
    /// a state the state machine can restore, else why not (see <c>IStateMachine.CheckSnapshot</c> in Raft.Engine).
    /// Without one, received snapshots are trusted.
    /// </summary>
    public Func<byte[], string?>? SnapshotCheck { get; init; }

    /// <summary>The latest snapshot this node holds (taken locally or installed), or null.</summary>
    public Snapshot? LatestSnapshot => _snapshot;

    public long SnapshotIndex => _snapshot?.Metadata.Index ?? 0;

    /// <summary>
    /// Whether the host should take a snapshot: enough entries applied since the last one, holding enough bytes
    /// compared with its size (<see cref="RaftOptions.SnapshotThreshold"/>, <see cref="RaftOptions.SnapshotLogRatio"/>).
    /// </summary>
    public bool IsSnapshotDue =>
        (AppliedIndex - SnapshotIndex >= _options.SnapshotThreshold || _appliedBytesSinceSnapshot >= _options.SnapshotLogBytes)
        && _appliedBytesSinceSnapshot >= _options.SnapshotLogRatio * (_snapshot?.Data.Length ?? 0);

    /// <summary>The metadata for a snapshot of the state machine as of <paramref name="index"/>, an applied index.</summary>
    public SnapshotMetadata SnapshotMetadataAt(long index)
    {
        if (index > AppliedIndex || index <= SnapshotIndex)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"a snapshot must cover applied entries after {SnapshotIndex}; applied is {AppliedIndex}");
        }
        return new SnapshotMetadata(index, _log.TermAt(index)!.Value, _configurations.At(index));
    }

    /// <summary>
    /// The host stored a snapshot it took: the log up to its index is compacted, except for
    /// <see cref="RaftOptions.EntriesKeptAfterSnapshot"/> entries kept in memory for followers slightly behind.
    /// </summary>
    public void OnSnapshotTaken(Snapshot snapshot)
    {
        SnapshotMetadata metadata = snapshot.Metadata;
        if (metadata.Index <= SnapshotIndex || metadata.Index > AppliedIndex || _log.TermAt(metadata.Index) is { } term && term != metadata.Term)
        {
            throw new ArgumentException($"snapshot at {metadata.Index} (term {metadata.Term}) does not fit: last snapshot {SnapshotIndex}, applied {AppliedIndex}", nameof(snapshot));
        }
        _snapshot = snapshot;
        _appliedBytesSinceSnapshot = 0;
        long compactTo = metadata.Index - _options.EntriesKeptAfterSnapshot;
        if (compactTo > _log.CompactedIndex)
        {
            _configurations.CompactTo(compactTo);
            _log.CompactTo(compactTo);
        }
    }

    /// <summary>Sends the follower the next chunk of the latest snapshot, from the offset it asked for.</summary>
    private void SendSnapshotChunk(string to, Progress progress)
    {
        Snapshot snapshot = _snapshot ?? throw new InvalidOperationException("entries were compacted without a snapshot");
        if (progress.State != ReplicationState.Snapshot || progress.PendingSnapshot != snapshot.Metadata.Index)
        {
            progress.BecomeSnapshot(snapshot.Metadata.Index); // a newer snapshot replaces one half sent
        }
        int offset = (int)Math.Min(progress.SnapshotOffset, snapshot.Data.Length);
        int length = Math.Min(_options.SnapshotChunkSize, snapshot.Data.Length - offset);
        byte[] chunk = snapshot.Data.AsSpan(offset, length).ToArray();
        Send(new InstallSnapshot(Id, to, Term, snapshot.Metadata, offset, chunk, offset + length >= snapshot.Data.Length));
        progress.ChunkInFlight = true;
    }

    /// <summary>InstallSnapshot receiver: collect chunks in order, then install atomically (never an older state).</summary>
    private void HandleInstallSnapshot(InstallSnapshot install)
    {
        if (Role != Role.Follower)
        {
            BecomeFollower(Term, install.From);
        }
        LeaderId = install.From;
        _electionElapsed = 0;
        SnapshotMetadata metadata = install.Metadata;

        if (metadata.Index <= CommitIndex)
        {
            // Nothing to learn: this log already holds everything up to its commit index, which matches the leader.
            _incomingSnapshot.Discard();
            Send(new InstallSnapshotResponse(Id, install.From, Term, CommitIndex, 0, true));
            return;
        }
        ChunkOutcome outcome = _incomingSnapshot.Receive(install);
        switch (outcome.Result)
        {
            case ChunkResult.OutOfOrder:
                Send(new InstallSnapshotResponse(Id, install.From, Term, metadata.Index, outcome.NextOffset, false));
                return;
            case ChunkResult.TooLarge:
                _outbox.Add(new SnapshotRefused(install.From, metadata.Index, $"it is larger than the limit of {_options.MaxSnapshotBytes} bytes"));
                Send(new InstallSnapshotResponse(Id, install.From, Term, metadata.Index, 0, false));
                return;
            case ChunkResult.Continue:
                Send(new InstallSnapshotResponse(Id, install.From, Term, metadata.Index, outcome.NextOffset, false));
                return;
        }
        Snapshot snapshot = outcome.Snapshot!;
        if (SnapshotCheck?.Invoke(snapshot.Data) is { } problem)
        {
            // Nothing is replaced by a state that cannot be restored: the sender may start over with a good one.
            _outbox.Add(new SnapshotRefused(install.From, metadata.Index, problem));
            Send(new InstallSnapshotResponse(Id, install.From, Term, metadata.Index, 0, false));
            return;
        }
        // The one place that decides what survives of the log after a snapshot: the suffix that continues it, here in
        // memory and, if it is durable already, in the store too; otherwise the store drops it all and the suffix kept
        // here is written again after the snapshot.
        bool keptSuffix = _log.ResetTo(metadata.Index, metadata.Term);
        _snapshotKeepsStoredEntries = keptSuffix && _stableIndex >= metadata.Index;
        _stableIndex = _snapshotKeepsStoredEntries ? _stableIndex : metadata.Index;
        _configurations.ResetTo(metadata.Index, metadata.Configuration);
        CommitIndex = Math.Max(CommitIndex, metadata.Index);
        _applyHandedOut = Math.Max(_applyHandedOut, metadata.Index);
        _snapshot = snapshot;
        _appliedBytesSinceSnapshot = 0;
        _snapshotToInstall = snapshot;
        Send(new InstallSnapshotResponse(Id, install.From, Term, metadata.Index, 0, true));
    }

    private void HandleInstallSnapshotResponse(InstallSnapshotResponse response)
    {
        if (Role != Role.Leader || !_progress.TryGet(response.From, out Progress progress))
        {
            return;
        }
        progress.RecentActive = true;
        if (response.Done)
        {
            progress.TryAdvance(response.SnapshotIndex);
            if (progress.State == ReplicationState.Snapshot)
            {
                progress.BecomeProbe();
            }
            MaybeCommit();
            if (Role == Role.Leader)
            {
                SendAppend(response.From, sendIfEmpty: true);
                AdvanceCatchUp();
            }
            return;
        }
        if (progress.State != ReplicationState.Snapshot || response.SnapshotIndex != progress.PendingSnapshot)
        {
            return;
        }
        progress.SnapshotOffset = response.NextOffset;
        progress.ChunkInFlight = false;
        SendAppend(response.From, sendIfEmpty: true);
    }
}
