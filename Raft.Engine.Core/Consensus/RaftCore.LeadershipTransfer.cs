namespace Raft.Engine.Consensus;

/// <summary>
/// Leadership transfer (dissertation 3.10): the leader stops taking proposals, brings the target up to date and sends
/// it TimeoutNow; the target campaigns at once, past PreVote and the leader lease. Abandoned after an election timeout.
/// </summary>
public sealed partial class RaftCore
{
    /// <summary>The server leadership is being handed to, if a transfer is under way.</summary>
    public string? TransferTarget => _transfer?.Target;

    public AdminResult TransferLeadership(string target)
    {
        if (Role != Role.Leader)
        {
            return new AdminResult(AdminStatus.NotLeader, 0, LeaderId, LeaderId is null ? "no leader is known" : $"not the leader; try {LeaderId}");
        }
        if (target == Id)
        {
            return new AdminResult(AdminStatus.Accepted, 0, Id, $"{Id} already leads");
        }
        if (!Configuration.IsVoter(target))
        {
            return Refuse(AdminStatus.UnknownServer, $"{target} is not a voter ({Configuration})");
        }
        if (_transfer?.Target == target)
        {
            return new AdminResult(AdminStatus.Accepted, 0, Id, $"leadership is already being handed to {target}"); // a retry
        }
        if (_transfer != null)
        {
            return Refuse(AdminStatus.InProgress, $"leadership is already being transferred to {_transfer.Target}");
        }
        _transfer = new PendingTransfer(target);
        AdvanceTransfer(target);
        if (!_transfer.TimeoutNowSent)
        {
            SendAppend(target, sendIfEmpty: true);
        }
        return new AdminResult(AdminStatus.Accepted, 0, Id, $"handing leadership to {target}");
    }

    /// <summary>Once the target has every entry, tell it to campaign.</summary>
    private void AdvanceTransfer(string peer)
    {
        if (_transfer is { TimeoutNowSent: false } transfer && transfer.Target == peer && _progress.TryGet(peer, out var progress) && progress.Match == _log.LastIndex)
        {
            Send(new TimeoutNow(Id, peer, Term));
            transfer.TimeoutNowSent = true;
        }
    }

    private void TickTransfer()
    {
        if (_transfer != null && ++_transfer.Elapsed >= _options.ElectionTicks)
        {
            _outbox.Add(new TransferAbandoned(_transfer.Target));
            _transfer = null;
        }
    }

    private void HandleTimeoutNow(TimeoutNow message)
    {
        if (Role != Role.Leader && Configuration.IsVoter(Id))
        {
            StartElection(preVote: false, transfer: true);
        }
    }
}

/// <summary>A transfer under way: its target, how long it has run, and whether TimeoutNow has gone out.</summary>
internal sealed class PendingTransfer(string target)
{
    public string Target { get; } = target;
    public int Elapsed { get; set; }
    public bool TimeoutNowSent { get; set; }
}
