using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Replication;

namespace Raft.Engine.Consensus;

/// <summary>
/// Single-server membership changes (dissertation chapter 4). A new server joins as a learner and is promoted once it
/// has caught up (<see cref="LearnerCatchUp"/>); the rules for when a change may start are
/// <see cref="ConfigurationChangeRules"/>'; a leader removed from the configuration leaves once that commits.
/// </summary>
public sealed partial class RaftCore
{
    /// <summary>The configuration as of the commit index (what is certain to survive a leader change).</summary>
    public ClusterConfiguration CommittedConfiguration => _configurations.At(CommitIndex);

    /// <summary>Whether a configuration entry is appended but not yet committed.</summary>
    public bool ConfigurationChangePending => _configurations.LatestIndex > CommitIndex;

    /// <summary>The learner an AddServer is catching up, if any.</summary>
    public string? CatchingUp => _catchUp.Learner;

    /// <summary>
    /// AddServer: appends a configuration with <paramref name="id"/> as a learner, catches it up in rounds, then appends
    /// one that makes it a voter. Done when that configuration commits; a <see cref="CatchUpFailed"/> notice if it never catches up.
    /// For a server that is already a voter at <paramref name="address"/> (or with no address given) nothing is appended
    /// and the answer is Accepted: a retried request succeeds. At another address it is refused with AlreadyMember.
    /// </summary>
    /// <param name="id">The new server's id.</param>
    /// <param name="address">Where the server can be reached, recorded in the configuration for hosts that need it.</param>
    public AdminResult AddServer(string id, string? address = null)
    {
        if (string.IsNullOrWhiteSpace(id) || id.Contains(',', StringComparison.Ordinal) || id.Contains(';', StringComparison.Ordinal))
        {
            return Refuse(AdminStatus.Invalid, $"'{id}' is not a valid server id");
        }
        if (Role == Role.Leader && Configuration.IsVoter(id))
        {
            // Asking again for what already holds is a retry (a client whose first call's answer was lost, or that
            // was told "leadership changed, check and retry"): it succeeds once that configuration is committed.
            // A different address is a different request, and is refused.
            string? known = Configuration.Addresses.GetValueOrDefault(id);
            return address is null || address == known
                ? new AdminResult(AdminStatus.Accepted, _configurations.LatestIndex, Id, $"{id} is already a voter")
                : Refuse(AdminStatus.AlreadyMember, $"{id} is already a voter at {known ?? "no recorded address"}, not {address}");
        }
        if (CheckCanChangeConfiguration() is { } refusal)
        {
            return refusal;
        }
        long index = Configuration.IsLearner(id) ? _configurations.LatestIndex : AppendToLog(EntryKind.Configuration, Configuration.WithLearner(id, address).Encode()).Index;
        _catchUp.Start(id, _log.LastIndex, _ticks);
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
        if (_catchUp.Learner == id)
        {
            _catchUp.Stop();
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
        var context = new ChangeContext(
            OwnTermCommitted: TermAt(CommitIndex) == Term,
            UncommittedChangeIndex: ConfigurationChangePending ? _configurations.LatestIndex : 0,
            CatchingUp: _catchUp.Learner,
            TransferTarget: _transfer?.Target);
        return ConfigurationChangeRules.Refusal(context, removing, _rules.ChangeOnlyAfterOwnTermCommit) is var (status, message)
            ? Refuse(status, message)
            : null;
    }

    private AdminResult Refuse(AdminStatus status, string message) => new(status, 0, LeaderId, message);

    /// <summary>The configuration in force changed (appended or truncated): the leader tracks exactly its members.</summary>
    private void OnConfigurationChanged()
    {
        if (Role != Role.Leader)
        {
            return;
        }
        foreach (string added in _progress.TrackMembersOf(Configuration, Id, _log.LastIndex + 1))
        {
            SendAppend(added, sendIfEmpty: true); // probe at once: a new server usually has nothing
        }
    }

    /// <summary>Moves the learner's catch-up on (see <see cref="LearnerCatchUp"/>): promotes it, gives up, or waits.</summary>
    private void AdvanceCatchUp()
    {
        if (Role != Role.Leader)
        {
            return;
        }
        if (_catchUp.Learner is null && Configuration.Learners.FirstOrDefault() is { } orphan
            && !ConfigurationChangePending && _transfer is null && TermAt(CommitIndex) == Term)
        {
            // A learner whose AddServer was started by an earlier leader: this one finishes it (promotes, or gives up
            // and takes it out), so that no change is left half done when leadership moves.
            _catchUp.Start(orphan, _log.LastIndex, _ticks);
        }
        if (_catchUp.Learner is not { } learner)
        {
            return;
        }
        if (!_progress.TryGet(learner, out Progress progress) || !Configuration.IsLearner(learner))
        {
            _catchUp.Stop(); // removed meanwhile, or its learner entry was truncated
            return;
        }
        (CatchUpStep step, string? reason) = _catchUp.Evaluate(progress.Match, _log.LastIndex, _ticks);
        if (step == CatchUpStep.Abandon)
        {
            AbandonCatchUp(learner, reason!);
        }
        else if (step == CatchUpStep.Promote && !ConfigurationChangePending) // else: promote once its learner entry commits
        {
            _catchUp.Stop();
            AppendToLog(EntryKind.Configuration, Configuration.WithVoter(learner).Encode());
        }
    }

    /// <summary>
    /// Gives up on the learner and takes it out of the configuration again, so that a failed AddServer leaves the
    /// cluster as it was (when its learner entry is not committed yet the learner stays; RemoveServer takes it out).
    /// </summary>
    private void AbandonCatchUp(string learner, string reason)
    {
        _outbox.Add(new CatchUpFailed(learner, reason));
        _catchUp.Stop();
        if (!ConfigurationChangePending && Configuration.IsLearner(learner))
        {
            AppendToLog(EntryKind.Configuration, Configuration.Without(learner).Encode());
        }
    }
}
