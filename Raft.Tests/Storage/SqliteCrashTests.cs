using System.Diagnostics;
using System.Globalization;
using System.Text;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Storage;
using Xunit.Abstractions;

namespace Raft.Tests.Storage;

/// <summary>
/// A child process appends to a <see cref="SqliteLogStore"/> as fast as it can (with overwrites of a suffix, which
/// truncate the log, and snapshots of a few hundred KB, which compact it) and reports every save that returned; the
/// test kills it with SIGKILL mid-stream, reopens the file and checks that the log is consistent and holds every
/// acknowledged save and snapshot. Three rounds, each continuing from what the last one left.
/// </summary>
[Trait("Speed", "Slow")]
public sealed class SqliteCrashTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-crash-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>What the writer stores at an index in a term; the check recomputes it.</summary>
    private static byte[] Payload(long index, long term) => Encoding.UTF8.GetBytes($"entry {index} of term {term} " + new string('x', (int)(index % 97)));

    /// <summary>What the writer stores as the snapshot at an index: large enough that a kill often lands inside its write.</summary>
    private static byte[] SnapshotPayload(long index)
    {
        var data = new byte[256 * 1024 + (int)(index % 1024)];
        new Random((int)index).NextBytes(data);
        return data;
    }

    [Fact]
    public async Task A_writer_killed_with_SIGKILL_loses_no_acknowledged_save_and_leaves_a_consistent_log()
    {
        string database = Path.Combine(_folder, "crash.db");
        int seed = TestSettings.Int("RAFT_CRASH_SEED", 1); // each failure message names it
        var random = new Random(seed);
        long previousLast = 0;
        for (int round = 1; round <= 3; round++)
        {
            int killAfterAcks = random.Next(20, 200);
            (long ackedIndex, long ackedTerm, long ackedSnapshot, int acks) = await RunAndKillAsync(database, killAfterAcks);
            Assert.True(acks >= killAfterAcks, $"seed {seed}: the writer stopped early after {acks} saves");

            await using SqliteLogStore store = SqliteLogStore.Open(database);
            PersistentState state = await store.LoadAsync();
            long snapshotIndex = state.Snapshot?.Metadata.Index ?? 0;
            long last = state.Entries.Count > 0 ? state.Entries[^1].Index : snapshotIndex;
            output.WriteLine($"round {round}: killed after {acks} acknowledged saves (last index {ackedIndex}, term {ackedTerm}, snapshot {ackedSnapshot}); " +
                $"reopened: snapshot {snapshotIndex}, entries up to {last}, term {state.HardState.Term}");

            Assert.True(last >= ackedIndex, $"seed {seed}: acknowledged index {ackedIndex} is missing (log ends at {last})");
            Assert.True(state.HardState.Term >= ackedTerm, $"seed {seed}: acknowledged term {ackedTerm} is missing");
            Assert.True(snapshotIndex >= ackedSnapshot, $"seed {seed}: acknowledged snapshot {ackedSnapshot} is missing (stored: {snapshotIndex})");
            Assert.True(last >= previousLast);
            if (state.Snapshot is { } snapshot)
            {
                Assert.Equal(SnapshotPayload(snapshotIndex), snapshot.Data);
            }
            long termSoFar = state.Snapshot?.Metadata.Term ?? 0;
            for (int i = 0; i < state.Entries.Count; i++)
            {
                LogEntry entry = state.Entries[i];
                Assert.Equal(snapshotIndex + i + 1, entry.Index); // contiguous after the snapshot
                Assert.True(entry.Term >= termSoFar && entry.Term <= state.HardState.Term, $"seed {seed}: bad term at {entry.Index}");
                Assert.Equal(Payload(entry.Index, entry.Term), entry.Data);
                termSoFar = entry.Term;
            }
            previousLast = last;
        }
    }

    private async Task<(long Index, long Term, long Snapshot, int Acks)> RunAndKillAsync(string database, int killAfterAcks)
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
        long index = 0, term = 0, snapshot = 0;
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
            else if (parts[0] == "snapshot")
            {
                snapshot = long.Parse(parts[1], CultureInfo.InvariantCulture);
            }
        }
        child.Kill(); // SIGKILL on Unix: no flush, no finally blocks
        await child.WaitForExitAsync(timeout.Token);
        if (acks < killAfterAcks)
        {
            output.WriteLine(await child.StandardError.ReadToEndAsync(timeout.Token));
        }
        return (index, term, snapshot, acks);
    }

    /// <summary>
    /// The child process: continue the log found in <paramref name="path"/>, printing "acked index term" after each save
    /// and "snapshot index" after each snapshot.
    /// </summary>
    internal static async Task RunWriterAsync(string path)
    {
        await using SqliteLogStore store = SqliteLogStore.Open(path);
        PersistentState state = await store.LoadAsync();
        long snapshotIndex = state.Snapshot?.Metadata.Index ?? 0;
        long last = state.Entries.Count > 0 ? state.Entries[^1].Index : snapshotIndex;
        long term = Math.Max(1, state.HardState.Term);
        // Entries of a term are only ever saved with (or after) that term: a fresh file gets term 1 with its first batch.
        bool termSaved = state.HardState.Term >= term;
        var random = new Random();
        while (true)
        {
            HardState? hardState = termSaved ? null : new HardState(term, "s1");
            termSaved = true;
            long from = last + 1;
            if (random.Next(10) == 0)
            {
                term++;
                hardState = new HardState(term, "s1");
                from = Math.Max(1, last - 2); // a new leader overwrites a short suffix
            }
            from = Math.Max(from, snapshotIndex + 1); // what a snapshot covers is committed: never overwritten
            int count = random.Next(hardState is null ? 1 : 3, 50); // an overwrite never shortens the log
            LogEntry[] batch = Enumerable.Range(0, count).Select(i => new LogEntry(from + i, term, EntryKind.Command, Payload(from + i, term))).ToArray();
            await store.SaveAsync(hardState, batch);
            last = batch[^1].Index;
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"acked {last} {term}"));
            Console.Out.Flush();
            if (random.Next(8) == 0 && last - snapshotIndex > 10)
            {
                // A snapshot of everything so far (the last batch's term is the term at its end).
                long at = last;
                var metadata = new SnapshotMetadata(at, term, new Raft.Engine.Membership.ClusterConfiguration(["s1"]));
                await store.SaveSnapshotAsync(new Snapshot(metadata, SnapshotPayload(at)), keepLaterEntries: true);
                snapshotIndex = at;
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"snapshot {at}"));
                Console.Out.Flush();
            }
        }
    }
}
