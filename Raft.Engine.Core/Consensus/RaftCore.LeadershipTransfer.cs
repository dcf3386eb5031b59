namespace Raft.Engine.Consensus;

/// <summary>
/// Leadership transfer (dissertation 3.10): the leader stops taking proposals, brings the target up to date and sends
/// it TimeoutNow; the target campaigns at once, past PreVote and the leader lease. Abandoned after an election timeout.
/// </summary>
public sealed partial class RaftCore
{
    private string? _transferTarget;
    private int _transferElapsed;
    private bool _timeoutNowSent;

    /// <summary>The server leadership is being handed to, if a transfer is under way.</summary>
    public string? TransferTarget => _transferTarget;

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
        if (_transferTarget != null)
        {
            return Refuse(AdminStatus.InProgress, $"leadership is already being transferred to {_transferTarget}");
        }
        _transferTarget = target;
        _transferElapsed = 0;
        _timeoutNowSent = false;
        AdvanceTransfer(target);
        if (!_timeoutNowSent)
        {
            SendAppend(target, sendIfEmpty: true);
        }
        return new AdminResult(AdminStatus.Accepted, 0, Id, $"handing leadership to {target}");
    }

    /// <summary>Once the target has every entry, tell it to campaign.</summary>
    private void AdvanceTransfer(string peer)
    {
        if (_transferTarget == peer && !_timeoutNowSent && _progress.TryGetValue(peer, out var progress) && progress.Match == _log.LastIndex)
        {
            Send(new TimeoutNow(Id, peer, Term));
            _timeoutNowSent = true;
        }
    }

    private void TickTransfer()
    {
        if (_transferTarget != null && ++_transferElapsed >= _options.ElectionTicks)
        {
            _notices.Add(new TransferAbandoned(_transferTarget));
            _transferTarget = null;
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
