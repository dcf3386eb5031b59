using Raft.Engine.Consensus;
using Raft.Engine.Membership;

namespace Raft.Tests.Membership;

public sealed class ConfigurationChangesTests
{
    private static readonly ChangeContext Ready = new(OwnTermCommitted: true, UncommittedChangeIndex: 0, CatchingUp: null, TransferTarget: null);

    [Fact]
    public void A_change_may_start_only_when_the_leader_committed_in_its_term_and_nothing_else_is_under_way()
    {
        Assert.Null(ConfigurationChangeRules.Refusal(Ready, null, currentTermRule: true));
        Assert.Equal(AdminStatus.LeaderNotReady, ConfigurationChangeRules.Refusal(Ready with { OwnTermCommitted = false }, null, true)!.Value.Status);
        Assert.Null(ConfigurationChangeRules.Refusal(Ready with { OwnTermCommitted = false }, null, currentTermRule: false));
        Assert.Contains("index 7", ConfigurationChangeRules.Refusal(Ready with { UncommittedChangeIndex = 7 }, null, true)!.Value.Message);
        Assert.Equal(AdminStatus.InProgress, ConfigurationChangeRules.Refusal(Ready with { CatchingUp = "d" }, null, true)!.Value.Status);
        Assert.Null(ConfigurationChangeRules.Refusal(Ready with { CatchingUp = "d" }, removing: "d", true)); // removing it cancels the add
        Assert.Contains("transferred to b", ConfigurationChangeRules.Refusal(Ready with { TransferTarget = "b" }, null, true)!.Value.Message);
    }

    [Fact]
    public void A_learner_that_finishes_a_round_within_an_election_timeout_is_promoted()
    {
        var catchUp = new LearnerCatchUp(electionTicks: 10, maxRounds: 3);
        catchUp.Start("d", lastIndex: 100, now: 0);
        Assert.Equal(CatchUpStep.Wait, catchUp.Evaluate(match: 50, lastIndex: 120, now: 5).Step);
        Assert.Equal(CatchUpStep.Promote, catchUp.Evaluate(match: 100, lastIndex: 120, now: 9).Step);
    }

    [Fact]
    public void A_slow_learner_gets_new_rounds_up_to_the_limit_then_is_given_up()
    {
        var catchUp = new LearnerCatchUp(electionTicks: 10, maxRounds: 2);
        catchUp.Start("d", lastIndex: 100, now: 0);
        Assert.Equal(CatchUpStep.Wait, catchUp.Evaluate(match: 100, lastIndex: 200, now: 15).Step); // round 1 took too long: round 2 to 200
        Assert.Equal(CatchUpStep.Wait, catchUp.Evaluate(match: 150, lastIndex: 220, now: 20).Step);
        (CatchUpStep step, string? reason) = catchUp.Evaluate(match: 200, lastIndex: 240, now: 40);
        Assert.Equal(CatchUpStep.Abandon, step);
        Assert.Contains("2 rounds", reason);
    }

    [Fact]
    public void An_unreachable_learner_is_given_up_after_ten_election_timeouts_without_progress()
    {
        var catchUp = new LearnerCatchUp(electionTicks: 10, maxRounds: 5);
        catchUp.Start("d", lastIndex: 100, now: 0);
        Assert.Equal(CatchUpStep.Wait, catchUp.Evaluate(match: 0, lastIndex: 100, now: 100).Step);
        (CatchUpStep step, string? reason) = catchUp.Evaluate(match: 0, lastIndex: 100, now: 101);
        Assert.Equal(CatchUpStep.Abandon, step);
        Assert.Contains("reachable", reason);
    }
}
