using Raft.Engine.Consensus;
using Raft.Engine.Membership;

namespace Raft.Engine.Hosting;

/// <summary>
/// Membership changes and leadership transfers from callers, from the core's answer to their outcome. An accepted
/// request waits until its outcome is committed (or visible) and fails if leadership moves on first. A new leader refuses
/// changes until it has committed in its term, which takes a round trip: a request refused so waits here and is handed
/// to the core again, for up to <paramref name="patience"/>, instead of failing.
/// </summary>
internal sealed class AdminRequests(string nodeId, TimeProvider time, TimeSpan patience, DeferredAnswers answers)
{
    private readonly List<(AdminInput Input, long Term)> _accepted = [];
    private readonly List<AdminInput> _notReady = [];

    public int Waiting => _accepted.Count + _notReady.Count;

    public void Start(RaftCore core, AdminInput admin)
    {
        AdminResult answer = admin.Kind switch
        {
            AdminKind.AddServer => core.AddServer(admin.ServerId, admin.Address),
            AdminKind.RemoveServer => core.RemoveServer(admin.ServerId),
            AdminKind.TransferLeadership => core.TransferLeadership(admin.ServerId),
            _ => throw new ArgumentException($"{admin.Kind} is not a request to the core", nameof(admin)),
        };
        Answered(admin, answer, core.Term);
    }

    /// <summary>What the core said to <paramref name="admin"/> in <paramref name="term"/>.</summary>
    public void Answered(AdminInput admin, AdminResult answer, long term)
    {
        if (answer.Accepted)
        {
            _accepted.Add((admin, term));
            return;
        }
        DateTimeOffset now = time.GetUtcNow();
        admin.FirstRefusal ??= now;
        if (answer.Status == AdminStatus.LeaderNotReady && now - admin.FirstRefusal < patience)
        {
            _notReady.Add(admin);
            return;
        }
        admin.Completion.TrySetException(new RaftAdminException(answer.Status, answer.Message, answer.LeaderHint));
    }

    /// <summary>The requests a not-yet-ready leader refused, taken to be handed to the core again.</summary>
    public IReadOnlyList<AdminInput> TakeNotReady()
    {
        if (_notReady.Count == 0)
        {
            return [];
        }
        AdminInput[] waiting = [.. _notReady];
        _notReady.Clear();
        return waiting;
    }

    /// <summary>The core gave up on a catch-up or a transfer: the request that started it fails with the reason.</summary>
    public void Abandoned(RaftNotice notice)
    {
        (AdminKind kind, string id, string message) = notice switch
        {
            CatchUpFailed failed => (AdminKind.AddServer, failed.ServerId, $"{failed.ServerId} did not catch up: {failed.Reason}"),
            TransferAbandoned abandoned => (AdminKind.TransferLeadership, abandoned.Target, $"{abandoned.Target} did not take over within an election timeout"),
            _ => throw new ArgumentException($"{notice} abandons no request", nameof(notice)),
        };
        foreach (var pending in _accepted.Where(a => a.Input.Kind == kind && a.Input.ServerId == id).ToList())
        {
            pending.Input.Completion.TrySetException(new RaftAdminException(AdminStatus.Abandoned, message, nodeId));
            _accepted.Remove(pending);
        }
    }

    /// <summary>Answers the requests whose outcome the core's state now shows, and fails those a new term overtook.</summary>
    public void CompleteDecided(ClusterConfiguration committed, long term, string? leaderId)
    {
        if (_accepted.Count == 0)
        {
            return; // the common case, on every pass of the loop
        }
        foreach (var pending in _accepted.ToList())
        {
            string id = pending.Input.ServerId;
            bool done = pending.Input.Kind switch
            {
                AdminKind.AddServer => committed.IsVoter(id),
                AdminKind.RemoveServer => !committed.IsMember(id),
                _ => leaderId == id && (term > pending.Term || id == nodeId), // to itself: it already leads
            };
            if (done)
            {
                answers.Add(() => pending.Input.Completion.TrySetResult());
                _accepted.Remove(pending);
            }
            else if (term > pending.Term && (pending.Input.Kind != AdminKind.TransferLeadership || leaderId is { } other && other != id))
            {
                // A new term began: this leader's change may or may not survive; the caller must check and retry.
                pending.Input.Completion.TrySetException(new RaftAdminException(AdminStatus.NotLeader,
                    $"leadership changed before the request to {pending.Input.Kind} {id} was committed; check and retry", leaderId));
                _accepted.Remove(pending);
            }
        }
    }

    public void FailAll(Exception reason)
    {
        foreach (AdminInput admin in _accepted.Select(a => a.Input).Concat(_notReady))
        {
            admin.Completion.TrySetException(reason);
        }
        _accepted.Clear();
        _notReady.Clear();
    }
}
