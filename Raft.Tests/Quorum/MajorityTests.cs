using Raft.Engine.Membership;
using Raft.Engine.Quorum;

namespace Raft.Tests.Quorum;

public sealed class MajorityTests
{
    private static readonly ClusterConfiguration Five = new(["a", "b", "c", "d", "e"], ["l"]);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 2)]
    [InlineData(4, 3)]
    [InlineData(5, 3)]
    [InlineData(6, 4)]
    public void More_than_half_of_the_voters_decide(int voters, int size) => Assert.Equal(size, Majority.Size(voters));

    [Fact]
    public void Learners_and_strangers_never_make_a_majority()
    {
        Assert.False(Majority.IsReached(Five.Voters, ["a", "b", "l", "x"]));
        Assert.True(Majority.IsReached(Five.Voters, ["a", "b", "e"]));
        Assert.False(Majority.IsReached(ClusterConfiguration.Empty.Voters, []));
    }

    [Fact]
    public void The_commit_index_is_the_highest_index_a_majority_holds()
    {
        var match = new Dictionary<string, long> { ["a"] = 9, ["b"] = 7, ["c"] = 5, ["d"] = 3, ["e"] = 1, ["l"] = 100 };
        Assert.Equal(5, Majority.IndexOf(Five.Voters, id => match[id]));
        match["d"] = 8;
        Assert.Equal(7, Majority.IndexOf(Five.Voters, id => match[id]));
        Assert.Equal(0, Majority.IndexOf(ClusterConfiguration.Empty.Voters, _ => 5));
    }

    [Fact]
    public void A_tally_is_won_by_a_majority_of_grants_and_lost_once_a_majority_is_out_of_reach()
    {
        var tally = new VoteTally();
        tally.Start("a");
        tally.Record("l", true); // a learner's grant does not count
        tally.Record("b", true);
        Assert.Equal(VoteOutcome.Pending, tally.Outcome(Five));
        tally.Record("c", true);
        Assert.Equal(VoteOutcome.Won, tally.Outcome(Five));

        tally.Start("a");
        tally.Record("b", false);
        tally.Record("c", false);
        Assert.Equal(VoteOutcome.Pending, tally.Outcome(Five)); // a, d, e could still win
        tally.Record("d", false);
        Assert.Equal(VoteOutcome.Lost, tally.Outcome(Five));
    }

    [Fact]
    public void A_later_answer_from_the_same_voter_replaces_its_earlier_one()
    {
        var tally = new VoteTally();
        tally.Start("a");
        tally.Record("b", true);
        tally.Record("b", true); // a duplicate is one vote
        Assert.Equal(VoteOutcome.Pending, tally.Outcome(Five));
        tally.Record("b", false);
        Assert.Equal(["a"], tally.Granted);
    }
}
