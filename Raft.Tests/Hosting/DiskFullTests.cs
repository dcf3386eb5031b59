using System.Diagnostics;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;
using Xunit.Abstractions;

namespace Raft.Tests.Hosting;

/// <summary>
/// A node on a SQLite store in a size-limited folder (a 2 MiB tmpfs mounted by the test; where it cannot mount one, a
/// store decorator that fails the way SQLITE_FULL does): writes fail with a clear error, the node stays alive, and it
/// goes on once space returns, with every acknowledged write kept.
/// </summary>
public sealed class DiskFullTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-full-").FullName;
    private bool _mounted;

    public Task InitializeAsync()
    {
        _mounted = Run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", _folder) == 0;
        output.WriteLine(_mounted ? $"tmpfs of 2 MiB at {_folder}" : "cannot mount a tmpfs here: using a store that fails like SQLITE_FULL");
        return Task.CompletedTask;
    }

    public Task DisposeAsync()
    {
        if (_mounted)
        {
            Run("umount", "-l", _folder);
        }
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    private static int Run(string file, params string[] arguments)
    {
        try
        {
            var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
            arguments.ToList().ForEach(start.ArgumentList.Add);
            using Process process = Process.Start(start)!;
            process.WaitForExit();
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }

    [Fact]
    public async Task Writes_on_a_full_disk_fail_clearly_and_the_node_recovers_when_space_returns()
    {
        string database = Path.Combine(_folder, "raft.db");
        string ballast = Path.Combine(_folder, "ballast");
        var sqlite = SqliteLogStore.Open(database);
        var store = new FillableStore(sqlite);
        if (_mounted)
        {
            await File.WriteAllBytesAsync(ballast, new byte[1024 * 1024]); // room made later by deleting it
        }
        var machine = new KeyValueStateMachine();
        var network = new InMemoryNetwork();
        await using var node = new RaftNode(new RaftNodeOptions { Id = "n1", Members = ["n1"], Raft = new RaftOptions() }, store, machine, network.TransportFor("n1"));
        network.Attach(node);
        await node.StartAsync();
        while (node.Status.Role != Role.Leader)
        {
            await Task.Delay(10);
        }

        var acknowledged = new List<string>();
        var pending = new List<Task<byte[]>>();
        StorageFullException? refused = null;
        string value = new('v', 16 * 1024);
        for (int i = 0; i < 2000 && refused is null; i++)
        {
            if (!_mounted && i == 20)
            {
                store.Full = true;
            }
            try
            {
                Task<byte[]> put = node.ProposeAsync(KvCommand.Put($"k{i}", value).Encode());
                if (await Task.WhenAny(put, Task.Delay(TimeSpan.FromSeconds(2))) == put)
                {
                    await put;
                    acknowledged.Add($"k{i}");
                }
                else
                {
                    pending.Add(put); // its write waits for space: neither done nor lost
                }
            }
            catch (StorageFullException e)
            {
                refused = e;
            }
        }
        Assert.NotNull(refused);
        output.WriteLine($"{acknowledged.Count} writes acknowledged, then: {refused.Message}");
        Assert.Contains(database, refused.Message, StringComparison.Ordinal);
        Assert.Null(node.Failure); // not a zombie, not dead: alive and saying why it cannot write
        Assert.NotNull(node.StorageProblem);

        if (_mounted)
        {
            File.Delete(ballast);
        }
        store.Full = false;
        foreach (Task<byte[]> put in pending)
        {
            Assert.Equal(KvStatus.Ok, KvResult.Decode(await put.WaitAsync(TimeSpan.FromSeconds(30))).Status);
        }
        Assert.Equal(KvStatus.Ok, KvResult.Decode(await node.ProposeAsync(KvCommand.Put("after", "space").Encode()).WaitAsync(TimeSpan.FromSeconds(30))).Status);
        Assert.Null(node.StorageProblem);
        await node.DisposeAsync();
        await store.DisposeAsync();

        await using SqliteLogStore reopened = SqliteLogStore.Open(database);
        PersistentState state = await reopened.LoadAsync();
        var restored = new KeyValueStateMachine();
        foreach (LogEntry entry in state.Entries.Where(e => e.Kind == EntryKind.Command))
        {
            restored.Apply(entry.Index, entry.Data);
        }
        Assert.All(acknowledged, key => Assert.Equal(value, restored.GetLocal(key)));
        Assert.Equal("space", restored.GetLocal("after"));
    }

    /// <summary>Passes everything through; while <see cref="Full"/>, saves fail as SQLite's do on a full disk.</summary>
    private sealed class FillableStore(SqliteLogStore inner) : ILogStore
    {
        public volatile bool Full;

        public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) => inner.LoadAsync(cancellationToken);

        public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default) =>
            Full ? throw new StorageFullException(inner.Path) : inner.SaveAsync(hardState, entries, cancellationToken);

        public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default) =>
            Full ? throw new StorageFullException(inner.Path) : inner.SaveSnapshotAsync(snapshot, keepLaterEntries, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
