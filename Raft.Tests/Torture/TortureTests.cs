using Xunit.Abstractions;

namespace Raft.Tests.Torture;

/// <summary>
/// The torture run in CI size: about 80 seconds of faults on five node processes (see <see cref="TortureRun"/>).
/// RAFT_TORTURE_SECONDS sets the length (a long run: 1800), RAFT_TORTURE_SEED the seed (printed on failure).
/// The report goes to the test output and to TestResults/torture/.
/// It runs alone (with the simulations), as five processes take both cores of a CI machine.
/// </summary>
[Collection(Simulation.CpuHeavyCollection.Name)]
[Trait("Speed", "Slow")]
public sealed class TortureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Five_processes_under_a_nemesis_stay_linearizable_and_lose_no_acknowledged_write()
    {
        int seed = TestSettings.Int("RAFT_TORTURE_SEED", 1);
        output.WriteLine($"torture seed {seed} (RAFT_TORTURE_SEED={seed} replays the same nemesis schedule)");
        TimeSpan duration = TimeSpan.FromSeconds(TestSettings.Int("RAFT_TORTURE_SECONDS", 80));
        var run = new TortureRun(seed, duration, line => output.WriteLine(line));
        TortureResult result = await run.RunAsync();

        string folder = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "torture")).FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, $"torture-seed-{seed}.txt"), result.Report);
        Assert.True(result.Passed, result.Report);
    }
}
