namespace Raft.Tests.Simulation;

/// <summary>
/// The simulation tests (and the hostile-input fuzzer) use every core. They run alone, after the rest, so that tests on real timers (the host, the
/// crash test) are not starved of threads by them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CpuHeavyCollection
{
    public const string Name = "CPU-heavy simulation";
}
