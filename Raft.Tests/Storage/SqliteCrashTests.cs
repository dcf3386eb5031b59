using System.Diagnostics;
using System.Globalization;
using System.Text;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Storage;
using Xunit.Abstractions;

namespace Raft.Tests.Storage;

/// <summary>
/// A child process appends to a <see cref="SqliteLogStore"/> as fast as it can and reports every save that returned;
/// the test kills it with SIGKILL mid-stream, reopens the file and checks that the log is consistent and holds every
/// acknowledged save. Three rounds, each continuing from what the last one left.
/// </summary>
public sealed class SqliteCrashTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-crash-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>What the writer stores at an index in a term; the check recomputes it.</summary>
    private static byte[] Payload(long index, long term) => Encoding.UTF8.GetBytes($"entry {index} of term {term} " + new string('x', (int)(index % 97)));

    [Fact]
    public async Task A_writer_killed_with_SIGKILL_loses_no_acknowledged_save_and_leaves_a_consistent_log()
    {
        string database = Path.Combine(_folder, "crash.db");
        int seed = SimulationSeed();
        var random = new Random(seed);
        long previousLast = 0;
        for (int round = 1; round <= 3; round++)
        {
            int killAfterAcks = random.Next(20, 200);
            (long ackedIndex, long ackedTerm, int acks) = await RunAndKillAsync(database, killAfterAcks);
            Assert.True(acks >= killAfterAcks, $"seed {seed}: the writer stopped early after {acks} saves");

            await using SqliteLogStore store = SqliteLogStore.Open(database);
            PersistentState state = await store.LoadAsync();
            output.WriteLine($"round {round}: killed after {acks} acknowledged saves (last index {ackedIndex}, term {ackedTerm}); reopened: {state.Entries.Count} entries, term {state.HardState.Term}");

            Assert.True(state.Entries.Count >= ackedIndex, $"seed {seed}: acknowledged index {ackedIndex} is missing (log has {state.Entries.Count})");
            Assert.True(state.HardState.Term >= ackedTerm, $"seed {seed}: acknowledged term {ackedTerm} is missing");
            Assert.True(state.Entries.Count >= previousLast);
            long termSoFar = 0;
            for (int i = 0; i < state.Entries.Count; i++)
            {
                LogEntry entry = state.Entries[i];
                Assert.Equal(i + 1, entry.Index);
                Assert.True(entry.Term >= termSoFar && entry.Term <= state.HardState.Term, $"seed {seed}: bad term at {entry.Index}");
                Assert.Equal(Payload(entry.Index, entry.Term), entry.Data);
                termSoFar = entry.Term;
            }
            previousLast = state.Entries.Count;
        }
    }

    private static int SimulationSeed() =>
        int.TryParse(Environment.GetEnvironmentVariable("RAFT_CRASH_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int seed) ? seed : Environment.TickCount & 0xFFFF;

    private async Task<(long Index, long Term, int Acks)> RunAndKillAsync(string database, int killAfterAcks)
    {
        string assembly = typeof(SqliteCrashTests).Assembly.Location;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(assembly);
        start.ArgumentList.Add("crash-writer");
        start.ArgumentList.Add(database);
        using Process child = Process.Start(start)!;
        long index = 0, term = 0;
        int acks = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (acks < killAfterAcks && await child.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            string[] parts = line.Split(' ');
            if (parts[0] == "acked")
            {
                index = long.Parse(parts[1], CultureInfo.InvariantCulture);
                term = long.Parse(parts[2], CultureInfo.InvariantCulture);
                acks++;
            }
        }
        child.Kill(); // SIGKILL on Unix: no flush, no finally blocks
        await child.WaitForExitAsync(timeout.Token);
        if (acks < killAfterAcks)
        {
            output.WriteLine(await child.StandardError.ReadToEndAsync(timeout.Token));
        }
        return (index, term, acks);
    }

    /// <summary>The child process: continue the log found in <paramref name="path"/>, printing "acked index term" after each save.</summary>
    internal static async Task RunWriterAsync(string path)
    {
        await using SqliteLogStore store = SqliteLogStore.Open(path);
        PersistentState state = await store.LoadAsync();
        long last = state.Entries.Count;
        long term = Math.Max(1, state.HardState.Term);
        var random = new Random();
        while (true)
        {
            HardState? hardState = null;
            long from = last + 1;
            if (random.Next(10) == 0)
            {
                term++;
                hardState = new HardState(term, "s1");
                from = Math.Max(1, last - 2); // a new leader overwrites a short suffix
            }
            int count = random.Next(hardState is null ? 1 : 3, 50); // an overwrite never shortens the log
            LogEntry[] batch = Enumerable.Range(0, count).Select(i => new LogEntry(from + i, term, EntryKind.Command, Payload(from + i, term))).ToArray();
            await store.SaveAsync(hardState, batch);
            last = batch[^1].Index;
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"acked {last} {term}"));
            Console.Out.Flush();
        }
    }
}
