using Raft.Engine.Log;

namespace Raft.Engine.Consensus;

/// <summary>
/// The output side: what is pending, the batch the host takes (<see cref="TakeReady"/>) and its confirmation
/// (<see cref="Advance"/>). The order a host must carry a batch out in is documented on <see cref="Ready"/>.
/// </summary>
public sealed partial class RaftCore
{
    public bool HasReady => HasOutputBesidesApplying || CommitIndex > _applyHandedOut;

    /// <summary>Whether the only pending output is committed entries to apply (the host may take new inputs first).</summary>
    public bool HasOnlyApplyWork => !HasOutputBesidesApplying && CommitIndex > _applyHandedOut;

    private bool HasOutputBesidesApplying =>
        (Role == Role.Leader && (_broadcastPending || _reads.HeartbeatWanted))
        || !_outbox.IsEmpty
        || _snapshotToInstall != null
        || new HardState(Term, VotedFor) != _persistedHardState
        || _log.LastIndex > _stableIndex;

    /// <summary>Takes the pending output. The host must carry it out (see <see cref="Ready"/>) and then call <see cref="Advance"/>.</summary>
    public Ready TakeReady()
    {
        if (Role == Role.Leader)
        {
            if (_reads.HeartbeatWanted)
            {
                BroadcastHeartbeat();
            }
            if (_broadcastPending)
            {
                BroadcastAppend();
            }
        }
        _broadcastPending = false;
        _reads.OnBatchTaken();

        HardState? hardState = null;
        var current = new HardState(Term, VotedFor);
        if (current != _persistedHardState)
        {
            hardState = _rules.PersistVote ? current : current with { VotedFor = null };
            _persistedHardState = current;
        }

        IReadOnlyList<LogEntry> toPersist = _log.LastIndex > _stableIndex ? _log.Slice(_stableIndex + 1, _log.LastIndex) : [];
        long applyTo = Math.Min(CommitIndex, _applyHandedOut + _options.MaxCommittedEntriesPerReady);
        IReadOnlyList<LogEntry> committed = applyTo > _applyHandedOut ? _log.Slice(_applyHandedOut + 1, applyTo) : [];
        _applyHandedOut = applyTo;

        // 10.2.1: a leader's replication messages may go out while its own write is in flight, but only once its term
        // and vote are durable (else a restarted leader could lead the same term again with different entries).
        (RaftMessage[] others, RaftMessage[] replication, ReadState[] reads, RaftNotice[] notices) = _outbox.Take();
        bool early = hardState is null;
        IReadOnlyList<RaftMessage> messages = early ? others : [.. replication, .. others];
        IReadOnlyList<RaftMessage> beforePersist = early ? replication : [];
        if (!_rules.PromiseOnlyWhenDurable)
        {
            (beforePersist, messages) = ([.. beforePersist, .. messages], []);
        }
        var ready = new Ready(hardState, toPersist, messages, committed, _snapshotToInstall, reads, notices)
        {
            MessagesBeforePersist = beforePersist,
            KeepStoredEntriesAfterSnapshot = _snapshotToInstall != null && _snapshotKeepsStoredEntries,
        };
        _snapshotToInstall = null;
        return ready;
    }

    /// <summary>Confirms that the host persisted, sent and applied a batch from <see cref="TakeReady"/>.</summary>
    public void Advance(Ready ready)
    {
        if (ready.EntriesToPersist.Count > 0)
        {
            LogEntry last = ready.EntriesToPersist[^1];
            if (_log.Matches(last.Index, last.Term))
            {
                _stableIndex = Math.Max(_stableIndex, last.Index);
            }
        }
        if (ready.SnapshotToInstall is { } snapshot)
        {
            AppliedIndex = Math.Max(AppliedIndex, snapshot.Metadata.Index);
        }
        if (ready.CommittedEntries.Count > 0)
        {
            AppliedIndex = Math.Max(AppliedIndex, ready.CommittedEntries[^1].Index);
            foreach (LogEntry entry in ready.CommittedEntries)
            {
                _appliedBytesSinceSnapshot += entry.Size;
            }
        }
        if (Role == Role.Leader)
        {
            // The leader counts itself towards commitment only once its own entries are durable.
            MaybeCommit();
        }
    }
}
