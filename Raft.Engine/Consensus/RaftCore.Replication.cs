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
            Send(new AppendEntriesResponse(Id, append.From, Term, true, CommitIndex, 0, 0, 0));
            return;
        }

        // Rule 2: reply false if the log has no entry at PrevLogIndex whose term is PrevLogTerm.
        if (!_log.Matches(append.PrevLogIndex, append.PrevLogTerm))
        {
            bool tooShort = append.PrevLogIndex > _log.LastIndex;
            long conflictTerm = tooShort ? 0 : _log.TermAt(append.PrevLogIndex)!.Value;
            long conflictIndex = tooShort ? _log.LastIndex + 1 : _log.FirstIndexOfTermAt(append.PrevLogIndex);
            Send(new AppendEntriesResponse(Id, append.From, Term, false, 0, append.PrevLogIndex, conflictTerm, conflictIndex));
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
                _log.TruncateFrom(entry.Index);
                _stableIndex = Math.Min(_stableIndex, entry.Index - 1);
            }
            _log.Append(entry); // Rule 4: append any new entries not already in the log.
        }

        // Rule 5: commitIndex = min(leaderCommit, index of last new entry).
        long lastNew = append.LastIndex;
        if (append.LeaderCommit > CommitIndex)
        {
            CommitIndex = Math.Max(CommitIndex, Math.Min(append.LeaderCommit, lastNew));
        }
        // The host sends this only after the entries above are durable (Ready's order).
        Send(new AppendEntriesResponse(Id, append.From, Term, true, lastNew, 0, 0, 0));
    }

    /// <summary>
    /// Leaders: on success update matchIndex and nextIndex; on a rejection move nextIndex back using the
    /// follower's conflict hint (one round trip per divergent term) and retry.
    /// </summary>
    private void HandleAppendEntriesResponse(AppendEntriesResponse response)
    {
        if (Role != Role.Leader || !_progress.TryGetValue(response.From, out Progress? progress))
        {
            return;
        }
        progress.RecentActive = true;

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
            return;
        }

        long hintNext = response.ConflictTerm > 0 && _log.LastIndexOfTerm(response.ConflictTerm, response.RejectedIndex) is long last
            ? last + 1
            : response.ConflictIndex;
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
            long prevTerm = _log.TermAt(prevIndex) ?? throw new InvalidOperationException($"no term for index {prevIndex}");
            IReadOnlyList<LogEntry> entries = progress.Next <= _log.LastIndex
                ? _log.Slice(progress.Next, _log.LastIndex, _options.MaxEntriesPerMessage, _options.MaxBytesPerMessage)
                : [];
            if (entries.Count == 0 && !sendIfEmpty)
            {
                return;
            }
            Send(new AppendEntries(Id, to, Term, prevIndex, prevTerm, entries, CommitIndex));
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
        foreach (string peer in _progress.Keys)
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
        foreach ((string peer, Progress progress) in _progress)
        {
            long prevTerm = _log.TermAt(progress.Match) ?? throw new InvalidOperationException($"no term for match {progress.Match}");
            Send(new AppendEntries(Id, peer, Term, progress.Match, prevTerm, [], CommitIndex));
        }
    }

    /// <summary>
    /// Leaders (Figure 2): if a majority has matchIndex ≥ N and log[N].term == currentTerm, set commitIndex = N.
    /// The leader's own match is what it has made durable.
    /// </summary>
    private void MaybeCommit()
    {
        long quorumIndex = Configuration.QuorumIndex(id => id == Id ? _stableIndex : _progress.TryGetValue(id, out Progress? p) ? p.Match : 0);
        if (quorumIndex <= CommitIndex)
        {
            return;
        }
        if (_rules.CommitOnlyCurrentTermByCounting && _log.TermAt(quorumIndex) != Term)
        {
            return; // Figure 8: an entry of an earlier term is never committed by counting replicas.
        }
        CommitIndex = quorumIndex;
    }
}
