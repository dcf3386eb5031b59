using System.Text;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Engine.Storage;

namespace Raft.Tests.Storage;

/// <summary>One suite that every <see cref="ILogStore"/> must pass. Each store gets a subclass that says how to open and reopen it.</summary>
public abstract class LogStoreConformanceTests : IAsyncLifetime
{
    protected ILogStore Store { get; set; } = null!;

    protected abstract Task<ILogStore> OpenAsync();

    /// <summary>Closes and opens the store again, as after a restart.</summary>
    protected abstract Task<ILogStore> ReopenAsync(ILogStore store);

    public async Task InitializeAsync() => Store = await OpenAsync();

    public virtual async Task DisposeAsync() => await Store.DisposeAsync();

    private static LogEntry E(long index, long term, string data = "") =>
        new(index, term, index % 5 == 0 ? EntryKind.NoOp : EntryKind.Command, Encoding.UTF8.GetBytes(data.Length > 0 ? data : $"{index}@{term}"));

    private static void AssertSameLog(LogEntry[] expected, IReadOnlyList<LogEntry> actual)
    {
        Assert.Equal(expected.Length, actual.Count);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal((expected[i].Index, expected[i].Term, expected[i].Kind), (actual[i].Index, actual[i].Term, actual[i].Kind));
            Assert.Equal(expected[i].Data, actual[i].Data);
        }
    }

    [Fact]
    public async Task A_new_store_is_empty()
    {
        PersistentState state = await Store.LoadAsync();
        Assert.Equal(new HardState(0, null), state.HardState);
        Assert.Empty(state.Entries);
    }

    [Fact]
    public async Task Appended_entries_come_back_in_order_with_their_bytes()
    {
        LogEntry[] entries = [E(1, 1), E(2, 1, ""), E(3, 2, "héllo wörld"), new LogEntry(4, 2, EntryKind.Command, [])];
        await Store.SaveAsync(null, entries[..2]);
        await Store.SaveAsync(null, entries[2..]);
        AssertSameLog(entries, (await Store.LoadAsync()).Entries);
    }

    [Fact]
    public async Task Saving_from_an_index_inside_the_log_replaces_the_conflicting_suffix()
    {
        await Store.SaveAsync(null, [E(1, 1), E(2, 1), E(3, 1), E(4, 1)]);
        await Store.SaveAsync(null, [E(3, 2)]);
        AssertSameLog([E(1, 1), E(2, 1), E(3, 2)], (await Store.LoadAsync()).Entries);
    }

    [Fact]
    public async Task Term_and_vote_are_saved_together_and_a_hard_state_alone_leaves_the_log_alone()
    {
        await Store.SaveAsync(new HardState(3, "s2"), [E(1, 3)]);
        await Store.SaveAsync(new HardState(4, null), []);
        PersistentState state = await Store.LoadAsync();
        Assert.Equal(new HardState(4, null), state.HardState);
        AssertSameLog([E(1, 3)], state.Entries);
    }

    [Fact]
    public async Task A_save_that_would_leave_a_gap_is_refused_and_changes_nothing()
    {
        await Store.SaveAsync(new HardState(1, "s1"), [E(1, 1)]);
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.SaveAsync(new HardState(9, "s9"), [E(3, 1)]));
        PersistentState state = await Store.LoadAsync();
        Assert.Equal(new HardState(1, "s1"), state.HardState);
        AssertSameLog([E(1, 1)], state.Entries);
    }

    private static Snapshot Snap(long index, long term, string data = "state") =>
        new(new SnapshotMetadata(index, term, new ClusterConfiguration(["s1", "s2"], ["s3"])), Encoding.UTF8.GetBytes(data));

    [Fact]
    public async Task A_snapshot_replaces_the_entries_it_covers_and_keeps_the_suffix_that_continues_it()
    {
        await Store.SaveAsync(new HardState(2, null), [E(1, 1), E(2, 1), E(3, 2), E(4, 2)]);
        await Store.SaveSnapshotAsync(Snap(3, 2), keepLaterEntries: true);
        PersistentState state = await Store.LoadAsync();
        Assert.Equal(3, state.Snapshot!.Metadata.Index);
        Assert.Equal(new ClusterConfiguration(["s1", "s2"], ["s3"]), state.Snapshot.Metadata.Configuration);
        Assert.Equal("state", Encoding.UTF8.GetString(state.Snapshot.Data));
        AssertSameLog([E(4, 2)], state.Entries);

        await Store.SaveAsync(null, [E(5, 2)]); // the log goes on after the snapshot
        await Assert.ThrowsAsync<ArgumentException>(async () => await Store.SaveAsync(null, [E(3, 3)])); // not inside it
        AssertSameLog([E(4, 2), E(5, 2)], (await Store.LoadAsync()).Entries);
    }

    [Fact]
    public async Task A_snapshot_that_does_not_continue_the_log_replaces_all_of_it_when_told_so()
    {
        await Store.SaveAsync(new HardState(2, null), [E(1, 1), E(2, 1), E(3, 1)]);
        await Store.SaveSnapshotAsync(Snap(5, 4, "newer"), keepLaterEntries: false); // the leader's snapshot: this log diverged or is behind
        PersistentState state = await Store.LoadAsync();
        Assert.Empty(state.Entries);
        Assert.Equal((5L, 4L), (state.Snapshot!.Metadata.Index, state.Snapshot.Metadata.Term));
        await Store.SaveAsync(null, [E(6, 4)]);
        Store = await ReopenAsync(Store);
        state = await Store.LoadAsync();
        Assert.Equal("newer", Encoding.UTF8.GetString(state.Snapshot!.Data));
        AssertSameLog([E(6, 4)], state.Entries);
    }

    [Fact]
    public async Task A_snapshot_older_than_the_stored_one_is_ignored()
    {
        await Store.SaveAsync(new HardState(4, null), [E(1, 1), E(2, 1), E(3, 2), E(4, 4), E(5, 4)]);
        await Store.SaveSnapshotAsync(Snap(4, 4, "installed from the leader"), keepLaterEntries: true);
        await Store.SaveSnapshotAsync(Snap(2, 1, "taken earlier, stored late"), keepLaterEntries: true);
        Store = await ReopenAsync(Store);
        PersistentState state = await Store.LoadAsync();
        Assert.Equal("installed from the leader", Encoding.UTF8.GetString(state.Snapshot!.Data));
        AssertSameLog([E(5, 4)], state.Entries);
    }

    [Fact]
    public async Task Saving_the_same_snapshot_again_keeps_the_entries_after_it()
    {
        await Store.SaveAsync(new HardState(1, null), [E(1, 1), E(2, 1), E(3, 1)]);
        await Store.SaveSnapshotAsync(Snap(2, 1), keepLaterEntries: true);
        await Store.SaveSnapshotAsync(Snap(2, 1), keepLaterEntries: true);
        await Store.SaveAsync(null, [E(4, 1)]);
        AssertSameLog([E(3, 1), E(4, 1)], (await Store.LoadAsync()).Entries);
    }

    [Fact]
    public async Task Saves_made_without_waiting_land_in_the_order_they_were_made()
    {
        Task[] saves =
        [
            Store.SaveAsync(new HardState(1, "s1"), [E(1, 1), E(2, 1), E(3, 1)]).AsTask(),
            Store.SaveAsync(new HardState(2, null), [E(3, 2)]).AsTask(),
            Store.SaveSnapshotAsync(Snap(2, 1), keepLaterEntries: true).AsTask(),
            Store.SaveAsync(null, [E(4, 2)]).AsTask(),
        ];
        await Task.WhenAll(saves);
        Store = await ReopenAsync(Store);
        PersistentState state = await Store.LoadAsync();
        Assert.Equal(new HardState(2, null), state.HardState);
        Assert.Equal(2, state.Snapshot!.Metadata.Index);
        AssertSameLog([E(3, 2), E(4, 2)], state.Entries);
    }

    [Fact]
    public async Task Reopening_gives_back_everything()
    {
        LogEntry[] entries = Enumerable.Range(1, 5000).Select(i => E(i, 1 + (i / 1000))).ToArray();
        await Store.SaveAsync(new HardState(7, "s3"), entries); // one batch, one transaction
        await Store.SaveAsync(null, [E(4999, 7), E(5000, 7), E(5001, 7)]);
        Store = await ReopenAsync(Store);
        PersistentState state = await Store.LoadAsync();
        Assert.Equal(new HardState(7, "s3"), state.HardState);
        AssertSameLog([.. entries[..4998], E(4999, 7), E(5000, 7), E(5001, 7)], state.Entries);
    }
}

public sealed class MemoryLogStoreConformanceTests : LogStoreConformanceTests
{
    protected override Task<ILogStore> OpenAsync() => Task.FromResult<ILogStore>(new MemoryLogStore());

    protected override Task<ILogStore> ReopenAsync(ILogStore store) => Task.FromResult(store); // memory survives only in-process
}

public sealed class SqliteLogStoreConformanceTests : LogStoreConformanceTests
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-store-").FullName;

    private string DatabasePath => Path.Combine(_folder, "node.db");

    protected override Task<ILogStore> OpenAsync() => Task.FromResult<ILogStore>(SqliteLogStore.Open(DatabasePath));

    protected override async Task<ILogStore> ReopenAsync(ILogStore store)
    {
        await store.DisposeAsync();
        return SqliteLogStore.Open(DatabasePath);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task The_database_runs_in_WAL_mode_with_full_sync()
    {
        await Store.SaveAsync(new HardState(1, null), []);
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }
}
