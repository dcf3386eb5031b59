using Raft.Engine.Consensus;
using Raft.Engine.Log;

namespace Raft.Engine.Hosting;

/// <summary>
/// Callers waiting for their proposed entry to be applied, by log index. A waiter is answered with the state machine's
/// result when its entry is applied in the term it was proposed in, and with <see cref="ProposalDroppedException"/>
/// when another leader's entry (or a snapshot from one) took its index.
/// </summary>
internal sealed class ProposalWaiters(string nodeId, WriteTracer tracer, DeferredAnswers answers)
{
    private readonly Dictionary<long, (long Term, TaskCompletionSource<byte[]> Completion)> _waiting = [];

    public int Count => _waiting.Count;

    /// <summary>Hands a proposal to the core; an accepted one waits here, a refused one is answered now.</summary>
    public void Propose(RaftCore core, ProposalInput proposal)
    {
        ProposeResult result = core.Propose(proposal.Command);
        if (result.Accepted)
        {
            Accepted(result.Index, result.Term, proposal.Completion);
            if (proposal.Trace != null)
            {
                tracer.Proposed(proposal.Trace, result.Index, result.Term);
            }
        }
        else if (result.Refusal == ProposeRefusal.Overloaded)
        {
            proposal.Completion.TrySetException(new NodeOverloadedException(
                $"{nodeId} holds {core.LastIndex - core.CommitIndex} entries that no majority has stored yet; retry once the followers catch up"));
        }
        else
        {
            string? reason = result.Refusal == ProposeRefusal.TransferInProgress ? $"{nodeId} is handing leadership over; retry shortly" : null;
            proposal.Completion.TrySetException(new NotLeaderException(nodeId, result.LeaderHint, reason));
        }
    }

    public void Accepted(long index, long term, TaskCompletionSource<byte[]> completion)
    {
        if (_waiting.Remove(index, out var overwritten))
        {
            // Left from an earlier term of leading here: a new leader's log replaced that entry, and now this index
            // holds a new one. Answered now, or the caller would wait forever.
            tracer.Dropped(index, "overwritten by a new leader's entry");
            overwritten.Completion.TrySetException(new ProposalDroppedException(index, overwritten.Term));
        }
        _waiting[index] = (term, completion);
    }

    public void Applied(LogEntry entry, byte[] result)
    {
        if (!_waiting.Remove(entry.Index, out var waiter))
        {
            return;
        }
        if (waiter.Term == entry.Term)
        {
            answers.Add(() => waiter.Completion.TrySetResult(result));
        }
        else
        {
            tracer.Dropped(entry.Index, "overwritten by a new leader's entry");
            waiter.Completion.TrySetException(new ProposalDroppedException(entry.Index, waiter.Term));
        }
    }

    /// <summary>A snapshot from the leader replaced the log up to <paramref name="index"/>: proposals there were not applied here.</summary>
    public void DropUpTo(long index)
    {
        foreach (long pending in _waiting.Keys.Where(i => i <= index).ToList())
        {
            _waiting.Remove(pending, out var waiter);
            tracer.Dropped(pending, "replaced by a snapshot from the leader");
            waiter.Completion.TrySetException(new ProposalDroppedException(pending, waiter.Term));
        }
    }

    public void FailAll(Exception reason)
    {
        foreach (var waiter in _waiting.Values)
        {
            waiter.Completion.TrySetException(reason);
        }
        _waiting.Clear();
        tracer.Clear();
    }
}
