namespace Raft.Engine.Replication;

/// <summary>How a leader sends to one follower (dissertation 10.2.1 and etcd's probe/replicate/snapshot states).</summary>
public enum ReplicationState
{
    /// <summary>The leader does not know where the follower's log matches: one AppendEntries at a time.</summary>
    Probe,
    /// <summary>The follower is in step: entries stream optimistically, up to the in-flight limit.</summary>
    Replicate,
    /// <summary>The follower needs entries the leader compacted: it is sent the snapshot, one chunk at a time.</summary>
    Snapshot,
}

/// <summary>What the leader knows of one follower: Figure 2's nextIndex and matchIndex, plus flow control.</summary>
internal sealed class Progress(long next, int maxInflight)
{
    private readonly Queue<long> _inflight = new();

    public long Match { get; private set; }
    public long Next { get; private set; } = next;
    public ReplicationState State { get; private set; } = ReplicationState.Probe;

    /// <summary>In Probe: an AppendEntries is out and the leader waits for its answer (or the next heartbeat).</summary>
    public bool ProbeSent { get; set; }

    /// <summary>Heard from since the last CheckQuorum round.</summary>
    public bool RecentActive { get; set; }

    /// <summary>In Snapshot: the index of the snapshot being sent, the offset the follower expects next, a chunk out.</summary>
    public long PendingSnapshot { get; private set; }
    public long SnapshotOffset { get; set; }
    public bool ChunkInFlight { get; set; }

    public int InflightCount => _inflight.Count;

    public bool IsPaused => State switch
    {
        ReplicationState.Probe => ProbeSent,
        ReplicationState.Snapshot => ChunkInFlight,
        _ => _inflight.Count >= maxInflight,
    };

    public void BecomeSnapshot(long snapshotIndex)
    {
        State = ReplicationState.Snapshot;
        PendingSnapshot = snapshotIndex;
        SnapshotOffset = 0;
        ChunkInFlight = false;
        _inflight.Clear();
    }

    /// <summary>Records a success; returns whether it told the leader something new.</summary>
    public bool TryAdvance(long matchIndex)
    {
        bool updated = false;
        if (matchIndex > Match)
        {
            Match = matchIndex;
            updated = true;
            ProbeSent = false;
        }
        Next = Math.Max(Next, matchIndex + 1);
        while (_inflight.Count > 0 && _inflight.Peek() <= matchIndex)
        {
            _inflight.Dequeue();
        }
        return updated;
    }

    /// <summary>
    /// Moves Next back after a rejection of PrevLogIndex = <paramref name="rejected"/> towards <paramref name="hintNext"/>.
    /// Returns false for a stale rejection (one that answers an older request).
    /// </summary>
    public bool TryMoveBack(long rejected, long hintNext)
    {
        if (State == ReplicationState.Snapshot)
        {
            return false; // the snapshot answers it
        }
        if (State == ReplicationState.Replicate)
        {
            if (rejected <= Match)
            {
                return false;
            }
            BecomeProbe();
            Next = Math.Max(Match + 1, Math.Min(hintNext, rejected));
            return true;
        }
        if (rejected != Next - 1)
        {
            return false;
        }
        Next = Math.Max(Match + 1, Math.Min(hintNext, rejected));
        ProbeSent = false;
        return true;
    }

    /// <summary>
    /// An AppendEntries whose PrevLogIndex was the match index (a heartbeat's always is) was rejected because the
    /// follower's log ends at <paramref name="followerLast"/>, before it: the follower lost entries it had acknowledged.
    /// Every other rejection at or below the match is an old answer and is ignored, which is why this one needs its
    /// own rule. Forgets the match down to the follower's real end, probes from there, and returns the old match.
    /// </summary>
    public long? TryForgetLostTail(long rejected, long followerLast)
    {
        if (State == ReplicationState.Snapshot || rejected != Match || followerLast >= Match)
        {
            return null;
        }
        long lost = Match;
        BecomeProbe();
        Match = Math.Max(0, followerLast);
        Next = Match + 1;
        return lost;
    }

    public void BecomeProbe()
    {
        State = ReplicationState.Probe;
        ProbeSent = false;
        _inflight.Clear();
        Next = Match + 1;
    }

    public void BecomeReplicate()
    {
        State = ReplicationState.Replicate;
        ProbeSent = false;
        _inflight.Clear();
        Next = Match + 1;
    }

    /// <summary>Notes an AppendEntries sent up to <paramref name="lastIndex"/> (with or without entries).</summary>
    public void OnSent(long lastIndex, bool carriedEntries)
    {
        if (State == ReplicationState.Probe)
        {
            ProbeSent = true;
        }
        else if (carriedEntries)
        {
            Next = lastIndex + 1;
            _inflight.Enqueue(lastIndex);
        }
    }

    /// <summary>A heartbeat answer with no news while the window is full: some message was lost, so let one more out.</summary>
    public void FreeOldestInflight()
    {
        if (_inflight.Count > 0)
        {
            _inflight.Dequeue();
        }
    }
}
