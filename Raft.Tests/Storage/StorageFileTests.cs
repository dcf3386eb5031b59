using System.Text;
using Microsoft.Data.Sqlite;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Storage;

namespace Raft.Tests.Storage;

/// <summary>
/// What <see cref="SqliteLogStore.Open"/> does with files that are not a healthy store of ours: each is refused with a
/// <see cref="StorageException"/> that names the file, never stamped with our version or served.
/// </summary>
public sealed class StorageFileTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-files-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string PathOf(string name) => Path.Combine(_folder, name);

    /// <summary>A closed store with a term, a vote and 300 entries "val-1" ... "val-300" (padded to ~500 bytes).</summary>
    private async Task<string> WrittenStoreAsync(string name = "raft.db")
    {
        string path = PathOf(name);
        await using SqliteLogStore store = SqliteLogStore.Open(path);
        var entries = Enumerable.Range(1, 300).Select(i => new LogEntry(i, 1, EntryKind.Command, Encoding.UTF8.GetBytes($"val-{i}|" + new string('p', 500)))).ToList();
        await store.SaveAsync(new HardState(1, "n1"), entries);
        return path;
    }

    private static async Task<PersistentState> OpenAndLoadAsync(string path)
    {
        await using SqliteLogStore store = SqliteLogStore.Open(path);
        return await store.LoadAsync();
    }

    private static async Task<StorageException> RefusedAsync(string path)
    {
        var refused = await Assert.ThrowsAnyAsync<StorageException>(() => OpenAndLoadAsync(path));
        Assert.Contains(Path.GetFullPath(path), refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', refused.Message);
        return refused;
    }

    [Fact]
    public async Task A_healthy_store_reopens_with_everything_in_it()
    {
        PersistentState state = await OpenAndLoadAsync(await WrittenStoreAsync());
        Assert.Equal(300, state.Entries.Count);
        Assert.Equal(new HardState(1, "n1"), state.HardState);
    }

    [Fact]
    public async Task A_file_that_is_not_SQLite_is_refused()
    {
        string path = PathOf("raft.db");
        await File.WriteAllTextAsync(path, "these are somebody's notes, not a database\n");
        StorageException refused = await RefusedAsync(path);
        Assert.Contains("not a SQLite database", refused.Message, StringComparison.Ordinal);
        Assert.Equal("these are somebody's notes, not a database\n", await File.ReadAllTextAsync(path)); // left as it was
    }

    [Fact]
    public async Task Another_programs_database_is_refused_and_left_unstamped()
    {
        string path = PathOf("raft.db");
        await using (var connection = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await connection.OpenAsync();
            await using SqliteCommand command = connection.CreateCommand();
            command.CommandText = "CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ada');";
            await command.ExecuteNonQueryAsync();
        }
        StorageException refused = await RefusedAsync(path);
        Assert.Contains("not a Raft store", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await ScalarAsync(path, "PRAGMA user_version;"));
    }

    [Fact]
    public async Task A_schema_newer_than_this_build_is_refused()
    {
        string path = await WrittenStoreAsync();
        await ScalarAsync(path, "PRAGMA user_version = 9;");
        StorageException refused = await RefusedAsync(path);
        Assert.Contains("schema version 9", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_version_2_store_is_migrated_with_its_data_and_checksummed()
    {
        string path = PathOf("raft.db");
        await ScalarAsync(path, """
            CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, voted_for TEXT NULL);
            CREATE TABLE log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL);
            CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, term INTEGER NOT NULL, configuration BLOB NOT NULL, data BLOB NOT NULL);
            INSERT INTO hard_state VALUES (0, 4, 'n2');
            INSERT INTO log VALUES (1, 3, 0, x'76616c2d31'), (2, 4, 0, x'76616c2d32');
            PRAGMA user_version = 2;
            """);
        PersistentState state = await OpenAndLoadAsync(path);
        Assert.Equal(new HardState(4, "n2"), state.HardState);
        Assert.Equal(["val-1", "val-2"], state.Entries.Select(e => Encoding.UTF8.GetString(e.Data)));
        Assert.Equal(4L, await ScalarAsync(path, "PRAGMA user_version;"));

        await ScalarAsync(path, "UPDATE log SET data = x'77616c2d32' WHERE idx = 2;"); // from now on a change is caught
        Assert.Contains("entry at index 2 is damaged", (await RefusedAsync(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task One_changed_byte_in_a_stored_value_is_caught_by_its_checksum()
    {
        string path = await WrittenStoreAsync();
        byte[] file = await File.ReadAllBytesAsync(path);
        int at = IndexOf(file, Encoding.UTF8.GetBytes("val-123|"));
        Assert.True(at >= 0, "the value is stored in the main file");
        file[at] = (byte)'w'; // val-123 -> wal-123
        await File.WriteAllBytesAsync(path, file);

        StorageException refused = await RefusedAsync(path);
        Assert.Contains("entry at index 123 is damaged", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Flipped_bytes_in_the_middle_of_the_file_are_refused()
    {
        string path = await WrittenStoreAsync();
        byte[] file = await File.ReadAllBytesAsync(path);
        for (int i = 0; i < 16; i++)
        {
            file[(file.Length / 2) + i] ^= 0x5A;
        }
        await File.WriteAllBytesAsync(path, file);
        await RefusedAsync(path);
    }

    [Fact]
    public async Task A_truncated_file_is_refused()
    {
        string path = await WrittenStoreAsync();
        await using (FileStream stream = File.OpenWrite(path))
        {
            stream.SetLength(stream.Length / 2);
        }
        await RefusedAsync(path);
    }

    [Fact]
    public async Task A_lost_write_ahead_log_loses_at_most_what_came_after_the_last_checkpoint()
    {
        // What deleting raft.db-wal after a kill leaves: the main file as of the last checkpoint. It is not damaged,
        // only behind (the leader then repairs the follower's log); it must open and load without error, keep all
        // that was checkpointed (a close checkpoints), and hold of the rest at most a prefix, as it was written.
        string path = PathOf("raft.db");
        LogEntry Entry(int i) => new(i, i <= 20 ? 1 : 2, EntryKind.Command, [(byte)i, (byte)(i * 7)]);
        await using (SqliteLogStore store = SqliteLogStore.Open(path))
        {
            await store.SaveAsync(new HardState(1, "n1"), [.. Enumerable.Range(1, 20).Select(Entry)]);
        }
        await using (SqliteLogStore store = SqliteLogStore.Open(path))
        {
            await store.SaveAsync(new HardState(2, "n2"), [.. Enumerable.Range(21, 30).Select(Entry)]);
            Assert.True(File.Exists(path + "-wal"));
            CopyWhileLocked(path, PathOf("copy.db")); // the main file without its -wal and -shm
        }
        PersistentState state = await OpenAndLoadAsync(PathOf("copy.db"));

        Assert.InRange(state.Entries.Count, 20, 50);
        Assert.Equal(Enumerable.Range(1, state.Entries.Count).Select(Entry), state.Entries, (a, b) =>
            a.Index == b.Index && a.Term == b.Term && a.Data.AsSpan().SequenceEqual(b.Data));
        Assert.Contains(state.HardState, new[] { new HardState(1, "n1"), new HardState(2, "n2") });
        Assert.True(state.HardState.Term >= state.Entries[^1].Term, "a term no later than its entries'");
    }

    [Fact]
    public async Task A_second_store_on_the_same_file_is_refused_while_the_first_is_open()
    {
        string path = PathOf("raft.db");
        await using (SqliteLogStore first = SqliteLogStore.Open(path))
        {
            StorageException refused = Assert.ThrowsAny<StorageException>(() => SqliteLogStore.Open(path));
            Assert.Contains("in use by another process", refused.Message, StringComparison.Ordinal);
            await first.SaveAsync(new HardState(2, null), []); // the first one is unaffected
        }
        Assert.Equal(2, (await OpenAndLoadAsync(path)).HardState.Term); // and once it closed, the file opens again
    }

    [Fact]
    public async Task Deleting_a_file_beside_the_store_does_not_let_a_second_opener_in()
    {
        // Found by a hostile user: deleting raft.db.lock let a second process open a running node's store.
        string path = PathOf("raft.db");
        await using SqliteLogStore first = SqliteLogStore.Open(path);
        foreach (string beside in Directory.GetFiles(Path.GetDirectoryName(path)!).Where(f => f != path && !f.StartsWith(path + "-", StringComparison.Ordinal)))
        {
            File.Delete(beside);
        }
        StorageException refused = Assert.ThrowsAny<StorageException>(() => SqliteLogStore.Open(path));
        Assert.Contains("in use by another process", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_store_is_refused_to_a_node_other_than_the_one_that_first_opened_it()
    {
        string path = PathOf("raft.db");
        await using (SqliteLogStore store = SqliteLogStore.Open(path, "n1"))
        {
            await store.SaveAsync(new HardState(3, "n1"), []);
        }
        StorageException refused = Assert.ThrowsAny<StorageException>(() => SqliteLogStore.Open(path, "n2"));
        Assert.Contains("belongs to node n1, not n2", refused.Message, StringComparison.Ordinal);
        await using (SqliteLogStore again = SqliteLogStore.Open(path, "n1"))
        {
            Assert.Equal(new HardState(3, "n1"), (await again.LoadAsync()).HardState);
        }
    }

    /// <summary>A copy of a file the store holds locked (a .NET read would wait for the lock, as a second store must).</summary>
    private static void CopyWhileLocked(string from, string to)
    {
        using var copy = System.Diagnostics.Process.Start("cp", [from, to]);
        copy.WaitForExit();
        Assert.Equal(0, copy.ExitCode);
    }

    private static int IndexOf(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle);

    private static async Task<long> ScalarAsync(string path, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }
}
