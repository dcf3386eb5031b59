using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Replication;

namespace Raft.Engine.Consensus;

/// <summary>
/// Single-server membership changes (dissertation chapter 4). A new server joins as a learner and is promoted once it
/// has caught up; one change at a time; a leader changes nothing until an entry of its own term is committed (the fix
/// for the bug published on the raft-dev list in 2015); a leader removed from the configuration leaves once that commits.
/// </summary>
public sealed partial class RaftCore
{
    private CatchUp? _catchUp;

    /// <summary>A learner being brought up to date: rounds end when it reaches the leader's last index as of the round's start.</summary>
    private sealed class CatchUp(string learner)
    {
        public string Learner { get; } = learner;
        public int Round { get; set; }
        public long Target { get; set; }
        public long RoundStart { get; set; }
    }

    /// <summary>The configuration as of the commit index (what is certain to survive a leader change).</summary>
    public ClusterConfiguration CommittedConfiguration => _configurations.At(CommitIndex);

    /// <summary>Whether a configuration entry is appended but not yet committed.</summary>
    public bool ConfigurationChangePending => _configurations.LatestIndex > CommitIndex;

    /// <summary>The learner an AddServer is catching up, if any.</summary>
    public string? CatchingUp => _catchUp?.Learner;

    /// <summary>
    /// AddServer: appends a configuration with <paramref name="id"/> as a learner, catches it up in rounds, then appends
    /// one that makes it a voter. Done when that configuration commits; a <see cref="CatchUpFailed"/> notice if it never catches up.
    /// </summary>
    /// <param name="address">Where the server can be reached, recorded in the configuration for hosts that need it.</param>
    public AdminResult AddServer(string id, string? address = null)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Contains(',', StringComparison.Ordinal) || id.Contains(';', StringComparison.Ordinal))
        {
            return Refuse(AdminStatus.Invalid, $"'{id}' is not a valid server id");
        }
        if (CheckCanChangeConfiguration() is { } refusal)
        {
            return refusal;
        }
        if (Configuration.IsVoter(id))
        {
            return Refuse(AdminStatus.AlreadyMember, $"{id} is already a voter");
        }
        long index = Configuration.IsLearner(id) ? _configurations.LatestIndex : AppendToLog(EntryKind.Configuration, Configuration.WithLearner(id, address).Encode()).Index;
        _catchUp = new CatchUp(id);
        StartCatchUpRound(_catchUp);
        return new AdminResult(AdminStatus.Accepted, index, Id, $"{id} joins as a learner and becomes a voter once it has caught up");
    }

    /// <summary>RemoveServer: appends a configuration without <paramref name="id"/>. Done when it commits.</summary>
    public AdminResult RemoveServer(string id)
    {
        if (CheckCanChangeConfiguration(removing: id) is { } refusal)
        {
            return refusal;
        }
        if (!Configuration.IsMember(id))
        {
            return Refuse(AdminStatus.UnknownServer, $"{id} is not a member ({Configuration})");
        }
        if (Configuration.Voters.Count == 1 && Configuration.IsVoter(id))
        {
            return Refuse(AdminStatus.Invalid, $"{id} is the last voter: removing it would leave a cluster that can decide nothing");
        }
        if (_catchUp?.Learner == id)
        {
            _catchUp = null;
        }
        LogEntry entry = AppendToLog(EntryKind.Configuration, Configuration.Without(id).Encode());
        return new AdminResult(AdminStatus.Accepted, entry.Index, Id, $"{id} leaves once index {entry.Index} commits");
    }

    /// <param name="removing">A server being removed: removing the learner that is catching up cancels its AddServer.</param>
    private AdminResult? CheckCanChangeConfiguration(string? removing = null)
    {
        if (Role != Role.Leader)
        {
            return new AdminResult(AdminStatus.NotLeader, 0, LeaderId, LeaderId is null ? "no leader is known" : $"not the leader; try {LeaderId}");
        }
        if (_rules.ChangeOnlyAfterOwnTermCommit && TermAt(CommitIndex) != Term)
        {
            return Refuse(AdminStatus.LeaderNotReady, "this leader has not yet committed an entry of its term; retry shortly");
        }
        if (ConfigurationChangePending)
        {
            return Refuse(AdminStatus.InProgress, $"the change at index {_configurations.LatestIndex} is not committed yet");
        }
        if (_catchUp != null && _catchUp.Learner != removing)
        {
            return Refuse(AdminStatus.InProgress, $"{_catchUp.Learner} is still catching up");
        }
        if (_transferTarget != null)
        {
            return Refuse(AdminStatus.InProgress, $"leadership is being transferred to {_transferTarget}");
        }
        return null;
    }

    private AdminResult Refuse(AdminStatus status, string message) => new(status, 0, LeaderId, message);

    /// <summary>The configuration in force changed (appended or truncated): the leader tracks exactly its members.</summary>
    private void OnConfigurationChanged()
    {
        if (Role != Role.Leader)
        {
            return;
        }
        foreach (string member in Configuration.Members)
        {
            if (member != Id && !_progress.ContainsKey(member))
            {
                _progress[member] = new Progress(_log.LastIndex + 1, _options.MaxInflightMessages) { RecentActive = true };
                SendAppend(member, sendIfEmpty: true); // probe at once: a new server usually has nothing
            }
        }
        foreach (string gone in _progress.Keys.Where(p => !Configuration.IsMember(p)).ToList())
        {
            _progress.Remove(gone);
        }
    }

    private void StartCatchUpRound(CatchUp catchUp)
    {
        catchUp.Round++;
        catchUp.Target = _log.LastIndex;
        catchUp.RoundStart = _ticks;
    }

    /// <summary>
    /// Dissertation 4.2.1: each round replicates up to the leader's last index as of its start. A round that finishes within
    /// an election timeout means the learner is close enough; then it is promoted. Too many rounds, or one that never ends
    /// (the server is unreachable), and the change is abandoned.
    /// </summary>
    private void AdvanceCatchUp()
    {
        if (_catchUp is null && Role == Role.Leader && Configuration.Learners.FirstOrDefault() is { } orphan
            && !ConfigurationChangePending && _transferTarget is null && TermAt(CommitIndex) == Term)
        {
            // A learner whose AddServer was started by an earlier leader: this one finishes it (promotes, or gives up
            // and takes it out), so that no change is left half done when leadership moves.
            _catchUp = new CatchUp(orphan);
            StartCatchUpRound(_catchUp);
        }
        if (_catchUp is not { } catchUp || Role != Role.Leader)
        {
            return;
        }
        if (!_progress.TryGetValue(catchUp.Learner, out Progress? progress) || !Configuration.IsLearner(catchUp.Learner))
        {
            _catchUp = null; // removed meanwhile, or its learner entry was truncated
            return;
        }
        long elapsed = _ticks - catchUp.RoundStart;
        if (progress.Match < catchUp.Target)
        {
            if (elapsed > 10L * _options.ElectionTicks)
            {
                AbandonCatchUp($"no progress for {elapsed} ticks in round {catchUp.Round}: is {catchUp.Learner} running and reachable?");
            }
            return;
        }
        if (elapsed > _options.ElectionTicks)
        {
            if (catchUp.Round >= _options.MaxCatchUpRounds)
            {
                AbandonCatchUp($"still behind after {catchUp.Round} rounds");
                return;
            }
            StartCatchUpRound(catchUp);
            return;
        }
        if (ConfigurationChangePending)
        {
            return; // the learner's own entry is not committed yet: promote it once it is
        }
        _catchUp = null;
        AppendToLog(EntryKind.Configuration, Configuration.WithVoter(catchUp.Learner).Encode());
    }

    /// <summary>
    /// Gives up on the learner and takes it out of the configuration again, so that a failed AddServer leaves the
    /// cluster as it was (when its learner entry is not committed yet the learner stays; RemoveServer takes it out).
    /// </summary>
    private void AbandonCatchUp(string reason)
    {
        string learner = _catchUp!.Learner;
        _notices.Add(new CatchUpFailed(learner, reason));
        _catchUp = null;
        if (!ConfigurationChangePending && Configuration.IsLearner(learner))
        {
            AppendToLog(EntryKind.Configuration, Configuration.Without(learner).Encode());
        }
    }
}
