using Microsoft.Extensions.DependencyInjection;
using Raft.Dashboard;
using Raft.Dashboard.Cluster;

namespace Raft.Tests.Dashboard;

/// <summary>The dashboard's command line as the README writes it (issue 10: flags without values were ignored or fatal).</summary>
public sealed class DashboardArgumentsTests
{
    private static async Task<DashboardOptions> OptionsOf(params string[] args)
    {
        await using var app = DashboardApp.Build([.. args, "--urls", "http://127.0.0.1:0"]);
        return app.Services.GetRequiredService<DashboardOptions>();
    }

    [Theory]
    [InlineData("--fresh", "--teaching")]
    [InlineData("--teaching", "--fresh")]
    [InlineData("--fresh", "true", "--teaching", "true")]
    [InlineData("--fresh", "--teaching", "--size", "5")]
    public async Task Flags_alone_or_with_true_turn_their_mode_on(params string[] args)
    {
        DashboardOptions options = await OptionsOf(args);
        Assert.True(options.Fresh);
        Assert.True(options.Teaching);
        Assert.Contains("fresh", options.Describe(), StringComparison.Ordinal);
        Assert.Contains("teaching", options.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_flags_both_modes_are_off_and_false_turns_one_off()
    {
        DashboardOptions none = await OptionsOf();
        Assert.False(none.Fresh || none.Teaching);
        Assert.Contains("recovered from its data folder", none.Describe(recovered: true), StringComparison.Ordinal);
        // A first run made its cluster: it does not say it recovered one.
        Assert.DoesNotContain("recovered", none.Describe(recovered: false), StringComparison.Ordinal);
        DashboardOptions off = await OptionsOf("--teaching", "false", "--fresh");
        Assert.Equal((true, false), (off.Fresh, off.Teaching));
    }

    [Theory]
    [InlineData("'maybe'", "--teaching", "maybe")]
    [InlineData("Dashboard:Size", "--size", "many")]
    public async Task A_bad_value_is_one_clear_error(string named, params string[] args)
    {
        var error = await Assert.ThrowsAsync<FormatException>(() => OptionsOf(args));
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }
}
