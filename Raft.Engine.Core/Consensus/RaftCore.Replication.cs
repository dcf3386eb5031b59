using Raft.Engine.Log;
using Raft.Engine.Replication;

namespace Raft.Engine.Consensus;

/// <summary>Log replication and commitment: AppendEntries on both sides, flow control, the commit rule.</summary>
public sealed partial class RaftCore
{
    /// <summary>AppendEntries receiver (Figure 2, rules 1-5; rule 1, the stale term, is handled by ObserveTerm).</summary>
    private void HandleAppendEntries(AppendEntries append)
    {
        if (Role == Role.Leader)
        {
            return; // two leaders in one term: impossible if Election Safety holds; the simulation checks it.
        }
        if (Role != Role.Follower)
        {
            BecomeFollower(Term, append.From); // Candidates: AppendEntries from the new leader: convert to follower.
        }
        LeaderId = append.From;
        _electionElapsed = 0;

        if (append.PrevLogIndex < CommitIndex)
        {
            // Everything up to the commit index matches every leader's log; answer with what we know matches.
            Send(new AppendEntriesResponse(Id, append.From, Term, true, CommitIndex, 0, 0, 0, append.Context));
            return;
        }

        // Rule 2: reply false if the log has no entry at PrevLogIndex whose term is PrevLogTerm.
        if (!_log.Matches(append.PrevLogIndex, append.PrevLogTerm))
        {
            bool tooShort = append.PrevLogIndex > _log.LastIndex;
            long conflictTerm = tooShort ? 0 : _log.TermAt(append.PrevLogIndex)!.Value;
            long conflictIndex = tooShort ? _log.LastIndex + 1 : _log.FirstIndexOfTermAt(append.PrevLogIndex);
            Send(new AppendEntriesResponse(Id, append.From, Term, false, 0, append.PrevLogIndex, conflictTerm, conflictIndex, append.Context));
            return;
        }

        foreach (LogEntry entry in append.Entries)
        {
            long? existing = _log.TermAt(entry.Index);
            if (existing == entry.Term)
            {
                continue; // already held: a duplicate or reordered message must not truncate anything
            }
            if (existing != null)
            {
                // Rule 3: an existing entry conflicts with a new one: delete it and all that follow.
                if (entry.Index <= CommitIndex)
                {
                    throw new InvalidOperationException($"{Id}: leader {append.From} would overwrite committed entry {entry.Index}");
                }
                TruncateLog(entry.Index);
            }
            AppendToLog(entry); // Rule 4: append any new entries not already in the log.
        }

        // Rule 5: commitIndex = min(leaderCommit, index of last new entry).
        long lastNew = append.LastIndex;
        if (append.LeaderCommit > CommitIndex)
        {
            CommitIndex = Math.Max(CommitIndex, Math.Min(append.LeaderCommit, lastNew));
        }
        // The host sends this only after the entries above are durable (Ready's order).
        Send(new AppendEntriesResponse(Id, append.From, Term, true, lastNew, 0, 0, 0, append.Context));
    }

    /// <summary>
    /// Leaders: on success update matchIndex and nextIndex; on a rejection move nextIndex back using the
    /// follower's conflict hint (one round trip per divergent term) and retry.
    /// </summary>
    private void HandleAppendEntriesResponse(AppendEntriesResponse response)
    {
        if (Role != Role.Leader || !_progress.TryGet(response.From, out Progress progress))
        {
            return;
        }
        progress.RecentActive = true;
        AcknowledgeReads(response.From, response.Context);

        if (response.Success)
        {
            bool news = progress.TryAdvance(response.MatchIndex);
            if (news)
            {
                if (progress.State == ReplicationState.Probe)
                {
                    progress.BecomeReplicate();
                }
                MaybeCommit();
                if (Role != Role.Leader)
                {
                    return; // the commit removed this leader from the configuration
                }
            }
            else if (progress.State == ReplicationState.Replicate && progress.IsPaused)
            {
                progress.FreeOldestInflight(); // a heartbeat answer while the window is full: something was lost
            }
            else
            {
                progress.ProbeSent = false;
            }
            if (progress.Match < _log.LastIndex)
            {
                SendAppend(response.From, sendIfEmpty: !news);
            }
            AdvanceTransfer(response.From);
            AdvanceCatchUp();
            return;
        }

        long hintNext = response.ConflictTerm > 0 && _log.LastIndexOfTerm(response.ConflictTerm, response.RejectedIndex) is long last
            ? last + 1
            : response.ConflictIndex;
        if (response.ConflictTerm == 0 && progress.TryForgetLostTail(response.RejectedIndex, response.ConflictIndex - 1) is long lostMatch)
        {
            // The follower's log ends before what it acknowledged (its disk lost the tail): repair it from its real end.
            _outbox.Add(new FollowerLogLost(response.From, lostMatch, response.ConflictIndex - 1));
            SendAppend(response.From, sendIfEmpty: true);
            return;
        }
        if (progress.TryMoveBack(response.RejectedIndex, hintNext))
        {
            SendAppend(response.From, sendIfEmpty: true);
        }
    }

    /// <summary>Sends what the follower lacks, as far as flow control allows (one probe, or a window of batches).</summary>
    private void SendAppend(string to, bool sendIfEmpty)
    {
        Progress progress = _progress[to];
        while (!progress.IsPaused)
        {
            long prevIndex = progress.Next - 1;
            if (progress.State == ReplicationState.Snapshot || _log.TermAt(prevIndex) is not long prevTerm)
            {
                SendSnapshotChunk(to, progress); // the entries it needs are compacted away
                return;
            }
            IReadOnlyList<LogEntry> entries = progress.Next <= _log.LastIndex
                ? _log.Slice(progress.Next, _log.LastIndex, _options.MaxEntriesPerMessage, _options.MaxBytesPerMessage)
                : [];
            if (entries.Count == 0 && !sendIfEmpty)
            {
                return;
            }
            Send(new AppendEntries(Id, to, Term, prevIndex, prevTerm, entries, CommitIndex, _reads.Round));
            progress.OnSent(entries.Count > 0 ? entries[^1].Index : prevIndex, entries.Count > 0);
            sendIfEmpty = false;
            if (progress.State == ReplicationState.Probe)
            {
                return;
            }
        }
    }

    private void BroadcastAppend()
    {
        foreach (string peer in _progress.Peers)
        {
            SendAppend(peer, sendIfEmpty: false);
        }
    }

    /// <summary>
    /// Leaders: upon election and during idle periods send empty AppendEntries. The heartbeat's PrevLogIndex is the
    /// follower's matchIndex, which it is known to hold, so a heartbeat never triggers a needless rejection.
    /// </summary>
    private void BroadcastHeartbeat()
    {
        _heartbeatElapsed = 0;
        _reads.OnHeartbeatRound(_ticks);
        foreach ((string peer, Progress progress) in _progress.All)
        {
            if (progress.State == ReplicationState.Snapshot || _log.TermAt(progress.Match) is not long prevTerm)
            {
                // Far behind: the snapshot chunk is its heartbeat, and resends one that was lost.
                if (progress.State == ReplicationState.Snapshot)
                {
                    progress.ChunkInFlight = false;
                }
                else
                {
                    progress.BecomeProbe(); // what it lacks was compacted: whatever was in flight cannot be repaired by entries
                }
                SendAppend(peer, sendIfEmpty: true);
                continue;
            }
            Send(new AppendEntries(Id, peer, Term, progress.Match, prevTerm, [], CommitIndex, _reads.Round));
        }
    }

    /// <summary>
    /// Leaders (Figure 2): if a majority has matchIndex ≥ N and log[N].term == currentTerm, set commitIndex = N.
    /// The leader's own match is what it has made durable.
    /// </summary>
    private void MaybeCommit()
    {
        // Counted over the configuration in force (the latest appended); learners are not voters, so never count.
        long quorumIndex = _progress.QuorumMatch(Configuration, Id, _stableIndex);
        if (quorumIndex <= CommitIndex)
        {
            return;
        }
        if (_rules.CommitOnlyCurrentTermByCounting && _log.TermAt(quorumIndex) != Term)
        {
            return; // Figure 8: an entry of an earlier term is never committed by counting replicas.
        }
        _uncommittedBytes -= _log.BytesOf(CommitIndex + 1, quorumIndex);
        CommitIndex = quorumIndex;
        OnCommitAdvanced();
    }

    /// <summary>Leader-side consequences of commitment: waiting reads may start, a learner may be promoted, a removed leader steps down.</summary>
    private void OnCommitAdvanced()
    {
        StartReadsAwaitingCommit();
        if (!CommittedConfiguration.IsVoter(Id))
        {
            BecomeFollower(Term, null); // its own removal is committed: leave, without campaigning again
            return;
        }
        AdvanceCatchUp();
    }
}
