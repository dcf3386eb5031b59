using Raft.Engine.Reads;

namespace Raft.Engine.Consensus;

/// <summary>
/// Linearizable reads without log writes (ReadIndex, dissertation 6.4): the leader notes its commit index, confirms it
/// still leads with a round of heartbeats answered by a majority, and the read is served once that index is applied.
/// A new leader serves reads only once its no-op has committed. A follower asks the leader for the index. The waiting
/// reads and the round numbers are the <see cref="ReadIndexQueue"/>'s.
/// </summary>
public sealed partial class RaftCore
{
    /// <summary>Asks for a read index. The answer comes back as a <see cref="ReadState"/> in a later <see cref="Ready"/>.</summary>
    public void ReadIndex(long requestId)
    {
        if (Role == Role.Leader)
        {
            RegisterRead(requestId, Id);
        }
        else if (LeaderId != null)
        {
            Send(new ReadIndexRequest(Id, LeaderId, Term, requestId));
        }
        else
        {
            _outbox.Add(new ReadState(requestId, 0, false, null));
        }
    }

    private void RegisterRead(long requestId, string origin)
    {
        if (TermAt(CommitIndex) != Term)
        {
            // Until its no-op commits, a new leader does not know the commit index of earlier terms.
            _reads.AwaitCommit(requestId, origin);
            return;
        }
        if (_transfer is null && _reads.LeaseHolds(Configuration, Id, _ticks))
        {
            Answer(requestId, origin, CommitIndex, true, Id); // within the lease: no round needed
            return;
        }
        // Test-only switch: pretend the heartbeat round already succeeded.
        IEnumerable<string> confirmedBy = _rules.ConfirmReadsWithQuorum ? [Id] : [Id, .. Configuration.Voters];
        _reads.Add(new PendingRead(requestId, origin, CommitIndex), confirmedBy);
        ConfirmReads();
    }

    private void StartReadsAwaitingCommit()
    {
        if (!_reads.HasAwaitingCommit || TermAt(CommitIndex) != Term)
        {
            return;
        }
        foreach ((long requestId, string origin) in _reads.TakeAwaitingCommit())
        {
            RegisterRead(requestId, origin);
        }
    }

    /// <summary>An answer from <paramref name="peer"/> to an AppendEntries of round <paramref name="round"/> confirms every read of that round or before.</summary>
    private void AcknowledgeReads(string peer, long round)
    {
        _reads.Acknowledge(peer, round);
        ConfirmReads();
    }

    private void ConfirmReads()
    {
        foreach (PendingRead read in _reads.TakeConfirmed(Configuration))
        {
            Answer(read.RequestId, read.Origin, read.Index, true, Id);
        }
    }

    private void Answer(long requestId, string origin, long index, bool ok, string? leaderHint)
    {
        if (origin == Id)
        {
            _outbox.Add(new ReadState(requestId, index, ok, leaderHint));
        }
        else
        {
            Send(new ReadIndexResponse(Id, origin, Term, requestId, index, ok));
        }
    }

    private void HandleReadIndexRequest(ReadIndexRequest request)
    {
        if (Role == Role.Leader)
        {
            RegisterRead(request.RequestId, request.From);
        }
        else
        {
            Send(new ReadIndexResponse(Id, request.From, Term, request.RequestId, 0, false));
        }
    }

    private void HandleReadIndexResponse(ReadIndexResponse response) =>
        _outbox.Add(new ReadState(response.RequestId, response.ReadIndex, response.Ok, LeaderId));

    /// <summary>Leadership ends: every waiting read fails, naming the new leader if known; the lease is void.</summary>
    private void FailPendingReads(string? newLeader)
    {
        foreach ((long requestId, string origin) in _reads.TakeAllAndReset())
        {
            Answer(requestId, origin, 0, false, newLeader);
        }
    }
}
