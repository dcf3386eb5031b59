using Raft.Engine.Consensus;

namespace Raft.Engine.Membership;

/// <summary>What a leader knows when it is asked to change the configuration.</summary>
/// <param name="OwnTermCommitted">Whether an entry of the leader's own term is committed.</param>
/// <param name="UncommittedChangeIndex">The index of a configuration entry not yet committed, or 0.</param>
/// <param name="CatchingUp">The learner being caught up for an AddServer, if any.</param>
/// <param name="TransferTarget">The server leadership is being handed to, if any.</param>
internal readonly record struct ChangeContext(bool OwnTermCommitted, long UncommittedChangeIndex, string? CatchingUp, string? TransferTarget);

/// <summary>
/// The rules for single-server changes (dissertation 4.1, 4.2.1): one change at a time, none before the leader has
/// committed an entry of its own term (the fix for the bug published on the raft-dev list in 2015), none while a
/// learner is catching up or leadership is being handed over.
/// </summary>
internal static class ConfigurationChangeRules
{
    /// <param name="context">What the leader knows now.</param>
    /// <param name="removing">A server being removed: removing the learner that is catching up cancels its AddServer.</param>
    /// <param name="currentTermRule">Off only in the tests that show what the rule prevents.</param>
    public static (AdminStatus Status, string Message)? Refusal(ChangeContext context, string? removing, bool currentTermRule)
    {
        if (currentTermRule && !context.OwnTermCommitted)
        {
            return (AdminStatus.LeaderNotReady, "this leader has not yet committed an entry of its term; retry shortly");
        }
        if (context.UncommittedChangeIndex > 0)
        {
            return (AdminStatus.InProgress, $"the change at index {context.UncommittedChangeIndex} is not committed yet");
        }
        if (context.CatchingUp != null && context.CatchingUp != removing)
        {
            return (AdminStatus.InProgress, $"{context.CatchingUp} is still catching up");
        }
        if (context.TransferTarget != null)
        {
            return (AdminStatus.InProgress, $"leadership is being transferred to {context.TransferTarget}");
        }
        return null;
    }
}

internal enum CatchUpStep
{
    /// <summary>The round goes on (or a new one has started).</summary>
    Wait,
    /// <summary>The learner finished a round within an election timeout: it is close enough to become a voter.</summary>
    Promote,
    /// <summary>It never catches up: the change is given up.</summary>
    Abandon,
}

/// <summary>
/// A learner being brought up to date before it may vote (dissertation 4.2.1): each round replicates up to the leader's
/// last index as of the round's start. A round finished within an election timeout means the learner is close enough.
/// Too many rounds, or one that never ends (the server is unreachable), and the change is abandoned.
/// </summary>
internal sealed class LearnerCatchUp(int electionTicks, int maxRounds)
{
    private int _round;
    private long _target;
    private long _roundStart;

    /// <summary>The learner being caught up, or null.</summary>
    public string? Learner { get; private set; }

    public void Start(string learner, long lastIndex, long now)
    {
        Learner = learner;
        _round = 0;
        StartRound(lastIndex, now);
    }

    public void Stop() => Learner = null;

    /// <summary>Where the learner stands, given its match index, the leader's last index and the tick count.</summary>
    public (CatchUpStep Step, string? Reason) Evaluate(long match, long lastIndex, long now)
    {
        long elapsed = now - _roundStart;
        if (match < _target)
        {
            return elapsed > 10L * electionTicks
                ? (CatchUpStep.Abandon, $"no progress for {elapsed} ticks in round {_round}: is {Learner} running and reachable?")
                : (CatchUpStep.Wait, null);
        }
        if (elapsed > electionTicks)
        {
            if (_round >= maxRounds)
            {
                return (CatchUpStep.Abandon, $"still behind after {_round} rounds");
            }
            StartRound(lastIndex, now);
            return (CatchUpStep.Wait, null);
        }
        return (CatchUpStep.Promote, null);
    }

    private void StartRound(long lastIndex, long now)
    {
        _round++;
        _target = lastIndex;
        _roundStart = now;
    }
}
