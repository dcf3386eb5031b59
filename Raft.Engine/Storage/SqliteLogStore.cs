using Microsoft.Data.Sqlite;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;

namespace Raft.Engine.Storage;

/// <summary>
/// <see cref="ILogStore"/> in one SQLite file: WAL journal, synchronous=FULL, so a kill -9 at any moment loses no
/// completed save. One writer thread owns the connection: saves queue up, and whatever is queued when the writer
/// gets to it goes in one transaction and one fsync (group commit), so the host's loop never waits for SQLite
/// and saves from the loop and from a snapshot in the background are ordered. Statements are prepared once, and the
/// stored log's bounds are kept in memory.
/// </summary>
public sealed class SqliteLogStore : ILogStore
{
    private readonly SqliteConnection _connection;
    private readonly FileStream _lock;
    private readonly System.Collections.Concurrent.BlockingCollection<Write> _queue = [];
    private readonly Thread _writer;
    private readonly Statements _statements;
    private long _lastIndex;
    /// <summary>The stored snapshot's index; -1 when there is none (a bootstrap snapshot is at index 0).</summary>
    private long _snapshotIndex;
    private int _disposed;
    private volatile bool _abandoned;
    /// <summary>The writer's open transaction, which every command on the connection must name.</summary>
    private SqliteTransaction? _transaction;

    private SqliteLogStore(SqliteConnection connection, string path, FileStream fileLock)
    {
        _connection = connection;
        _lock = fileLock;
        Path = path;
        _statements = new Statements(connection);
        _snapshotIndex = Scalar(connection, "SELECT COALESCE((SELECT idx FROM snapshot WHERE id = 0), -1);");
        _lastIndex = Math.Max(_snapshotIndex, Scalar(connection, "SELECT COALESCE(MAX(idx), 0) FROM log;"));
        _writer = new Thread(RunWriter) { IsBackground = true, Name = $"sqlite writer {System.IO.Path.GetFileName(path)}" };
        _writer.Start();
    }

    public string Path { get; }

    /// <summary>
    /// Opens (or creates) the store at <paramref name="path"/>. Refuses, with a <see cref="StorageException"/> naming the
    /// file and the problem, a file that another process has open as a store, that is not SQLite or not ours, whose
    /// schema this build does not know, or that fails SQLite's integrity check. A file of an older schema is migrated.
    /// With <paramref name="nodeId"/>, the store is also refused when it belongs to another node (it records the first
    /// node id it is opened with).
    /// </summary>
    public static SqliteLogStore Open(string path, string? nodeId = null)
    {
        string fullPath = System.IO.Path.GetFullPath(path);
        string? folder = System.IO.Path.GetDirectoryName(fullPath);
        if (folder != null)
        {
            Directory.CreateDirectory(folder);
        }
        FileStream fileLock = TakeLock(fullPath);
        SqliteConnection? connection = null;
        try
        {
            CheckHeader(fullPath, fileLock);
            connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = fullPath,
                Mode = SqliteOpenMode.ReadWriteCreate,
                Pooling = false,
            }.ToString());
            connection.Open();
            Execute(connection, "PRAGMA journal_mode=WAL;");
            Execute(connection, "PRAGMA synchronous=FULL;");
            string integrity = Convert.ToString(ScalarObject(connection, "PRAGMA integrity_check(1);"), System.Globalization.CultureInfo.InvariantCulture) ?? "";
            if (integrity != "ok")
            {
                throw new StorageException(fullPath, $"the file is damaged (SQLite integrity check: {integrity.ReplaceLineEndings("; ")})");
            }
            SqliteSchema.Prepare(connection, fullPath);
            if (nodeId != null)
            {
                SqliteSchema.CheckOwner(connection, fullPath, nodeId);
            }
            return new SqliteLogStore(connection, fullPath, fileLock);
        }
        catch (SqliteException e)
        {
            connection?.Dispose();
            fileLock.Dispose();
            throw new StorageException(fullPath, $"the file cannot be read as a store: {e.Message}", e);
        }
        catch
        {
            connection?.Dispose();
            fileLock.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Two processes on one data file would interleave two logs: the store holds an exclusive lock for as long as it is
    /// open (released by the OS if the process dies). On Unix the lock is on the database file itself (flock, which
    /// SQLite's own fcntl locks do not touch): a lock on a file beside it was lost when someone deleted that file, and a
    /// second process then opened a running node's store. On Windows an open file cannot be deleted, but SQLite must be
    /// able to share the database file, so the lock is on a file beside it.
    /// </summary>
    private static FileStream TakeLock(string path)
    {
        try
        {
            return OperatingSystem.IsWindows()
                ? new FileStream(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
                : new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new StorageException(path, "the store is in use by another process (it holds the store's lock)", e);
        }
    }

    /// <summary>A file that exists but does not start like a SQLite database is refused before SQLite touches it.</summary>
    private static void CheckHeader(string path, FileStream fileLock)
    {
        using FileStream? own = fileLock.Name == path ? null : new FileStream(path, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
        FileStream stream = own ?? fileLock;
        if (stream.Length == 0)
        {
            return;
        }
        Span<byte> header = stackalloc byte[16];
        stream.Position = 0;
        if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length || !header.SequenceEqual("SQLite format 3\0"u8))
        {
            throw new StorageException(path, "not a SQLite database (another program's file, or damaged at its start)");
        }
    }

    public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default) =>
        Enqueue<PersistentState>(Load, cancellationToken);

    public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
    {
        if (hardState is null && entries.Count == 0)
        {
            return ValueTask.CompletedTask;
        }
        return new ValueTask(Enqueue<bool>(() => Save(hardState, entries), cancellationToken).AsTask());
    }

    /// <summary>
    /// Stores a snapshot and compacts the log under it. A snapshot older than the stored one is ignored: one taken in the
    /// background may finish after a newer one from the leader was installed.
    /// </summary>
    public ValueTask SaveSnapshotAsync(Snapshot snapshot, bool keepLaterEntries, CancellationToken cancellationToken = default) =>
        new(Enqueue<bool>(() => SaveSnapshot(snapshot, keepLaterEntries), cancellationToken).AsTask());

    private ValueTask<T> Enqueue<T>(Func<T> work, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var write = new Write<T>(work);
        try
        {
            _queue.Add(write, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(SqliteLogStore), $"{Path} is closed");
        }
        return new ValueTask<T>(write.Completion.Task);
    }

    /// <summary>The writer: takes everything queued, runs it in one transaction (each write in its own savepoint), commits once.</summary>
    private void RunWriter()
    {
        var batch = new List<Write>();
        foreach (Write first in _queue.GetConsumingEnumerable())
        {
            if (_abandoned)
            {
                first.Fail(new ObjectDisposedException(nameof(SqliteLogStore), $"{Path} was abandoned (a crash) before this write started"));
                continue;
            }
            batch.Add(first);
            while (batch.Count < 1024 && _queue.TryTake(out Write? next))
            {
                batch.Add(next);
            }
            RunBatch(batch);
            batch.Clear();
        }
    }

    private void RunBatch(List<Write> batch)
    {
        (long last, long snapshot) = (_lastIndex, _snapshotIndex);
        try
        {
            using SqliteTransaction transaction = _connection.BeginTransaction();
            _transaction = transaction;
            _statements.Use(transaction);
            foreach (Write write in batch)
            {
                // A write that fails (a bad request) is undone alone; the others in the batch still commit.
                (long l, long s) = (_lastIndex, _snapshotIndex);
                Execute(_connection, transaction, "SAVEPOINT w;");
                try
                {
                    write.Run();
                    Execute(_connection, transaction, "RELEASE w;");
                }
                catch (Exception e) when (e is ArgumentException or InvalidDataException || e is StorageException and not StorageFullException)
                {
                    Execute(_connection, transaction, "ROLLBACK TO w; RELEASE w;");
                    (_lastIndex, _snapshotIndex) = (l, s);
                    write.Fail(e);
                }
            }
            transaction.Commit();
        }
        catch (Exception failure)
        {
            // SQLite undoes the whole transaction when the medium is full: nothing of the batch was written.
            Exception e = failure is SqliteException { SqliteErrorCode: 13 } ? new StorageFullException(Path, failure) : failure;
            _transaction = null;
            (_lastIndex, _snapshotIndex) = (last, snapshot);
            foreach (Write write in batch)
            {
                write.Fail(e);
            }
            return;
        }
        _transaction = null;
        foreach (Write write in batch)
        {
            write.Complete(); // only now: the commit (and its fsync) has returned
        }
    }

    private PersistentState Load()
    {
        var hardState = new HardState(0, null);
        using (SqliteCommand command = _connection.CreateCommand())
        {
            command.Transaction = _transaction;
            command.CommandText = "SELECT term, voted_for, crc FROM hard_state WHERE id = 0;";
            using SqliteDataReader reader = command.ExecuteReader();
            if (reader.Read())
            {
                hardState = new HardState(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1));
                Check(SqliteSchema.HardStateChecksum(hardState.Term, hardState.VotedFor), reader.GetInt64(2), "the term and vote");
            }
        }
        Snapshot? snapshot = null;
        using (SqliteCommand command = _connection.CreateCommand())
        {
            command.Transaction = _transaction;
            command.CommandText = "SELECT idx, term, configuration, data, crc FROM snapshot WHERE id = 0;";
            using SqliteDataReader reader = command.ExecuteReader();
            if (reader.Read())
            {
                (long index, long term, var configuration, var data) = (reader.GetInt64(0), reader.GetInt64(1), (byte[])reader.GetValue(2), (byte[])reader.GetValue(3));
                Check(SqliteSchema.SnapshotChecksum(index, term, configuration, data), reader.GetInt64(4), $"the snapshot at index {index}");
                snapshot = new Snapshot(new SnapshotMetadata(index, term, ClusterConfiguration.Decode(configuration)), data);
            }
        }
        var entries = new List<LogEntry>();
        using (SqliteCommand command = _connection.CreateCommand())
        {
            command.Transaction = _transaction;
            command.CommandText = "SELECT idx, term, kind, data, crc FROM log ORDER BY idx;";
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                var entry = new LogEntry(reader.GetInt64(0), reader.GetInt64(1), (EntryKind)reader.GetInt32(2), (byte[])reader.GetValue(3));
                Check(SqliteSchema.EntryChecksum(entry.Index, entry.Term, (int)entry.Kind, entry.Data), reader.GetInt64(4), $"the entry at index {entry.Index}");
                if (entries.Count > 0 && entry.Index != entries[^1].Index + 1)
                {
                    throw new StorageException(Path, $"the log has a gap before index {entry.Index}");
                }
                entries.Add(entry);
            }
        }
        if (snapshot != null && entries.Count > 0 && entries[0].Index != snapshot.Metadata.Index + 1)
        {
            throw new StorageException(Path, $"the log starts at {entries[0].Index}, not right after the snapshot at {snapshot.Metadata.Index}");
        }
        return new PersistentState(hardState, entries, snapshot);
    }

    /// <summary>A row whose checksum does not match was changed on disk: the node must not serve it.</summary>
    private void Check(uint computed, long stored, string what)
    {
        if (computed != (uint)stored)
        {
            throw new StorageException(Path, $"{what} is damaged (its checksum does not match what was written); restore the data folder or wipe it and let the node rejoin");
        }
    }

    private bool Save(HardState? hardState, IReadOnlyList<LogEntry> entries)
    {
        if (hardState is { } state)
        {
            _statements.SaveHardState.Parameters["$term"].Value = state.Term;
            _statements.SaveHardState.Parameters["$vote"].Value = (object?)state.VotedFor ?? DBNull.Value;
            _statements.SaveHardState.Parameters["$crc"].Value = (long)SqliteSchema.HardStateChecksum(state.Term, state.VotedFor);
            _statements.SaveHardState.ExecuteNonQuery();
        }
        if (entries.Count > 0)
        {
            long first = entries[0].Index;
            if (first < 1 || first <= _snapshotIndex || first > _lastIndex + 1)
            {
                throw new ArgumentException($"entries start at {first}; the stored log holds {Math.Max(_snapshotIndex, 0) + 1}..{_lastIndex}", nameof(entries));
            }
            if (first <= _lastIndex)
            {
                _statements.TruncateFrom.Parameters["$first"].Value = first;
                _statements.TruncateFrom.ExecuteNonQuery();
            }
            SqliteCommand insert = _statements.InsertEntry;
            foreach (LogEntry entry in entries)
            {
                insert.Parameters["$idx"].Value = entry.Index;
                insert.Parameters["$term"].Value = entry.Term;
                insert.Parameters["$kind"].Value = (int)entry.Kind;
                insert.Parameters["$data"].Value = entry.Data;
                insert.Parameters["$crc"].Value = (long)SqliteSchema.EntryChecksum(entry.Index, entry.Term, (int)entry.Kind, entry.Data);
                insert.ExecuteNonQuery();
            }
            _lastIndex = entries[^1].Index;
        }
        return true;
    }

    private bool SaveSnapshot(Snapshot snapshot, bool keepLaterEntries)
    {
        SnapshotMetadata metadata = snapshot.Metadata;
        if (metadata.Index <= _snapshotIndex)
        {
            return true; // not newer than the one stored
        }
        SqliteCommand save = _statements.SaveSnapshot;
        save.Parameters["$idx"].Value = metadata.Index;
        save.Parameters["$term"].Value = metadata.Term;
        byte[] configuration = metadata.Configuration.Encode();
        save.Parameters["$configuration"].Value = configuration;
        save.Parameters["$data"].Value = snapshot.Data;
        save.Parameters["$crc"].Value = (long)SqliteSchema.SnapshotChecksum(metadata.Index, metadata.Term, configuration, snapshot.Data);
        save.ExecuteNonQuery();
        if (keepLaterEntries)
        {
            _statements.CompactTo.Parameters["$idx"].Value = metadata.Index;
            _statements.CompactTo.ExecuteNonQuery();
        }
        else
        {
            _statements.ClearLog.ExecuteNonQuery();
        }
        _snapshotIndex = metadata.Index;
        _lastIndex = keepLaterEntries ? Math.Max(_lastIndex, metadata.Index) : metadata.Index;
        return true;
    }

    /// <summary>
    /// What a kill leaves: writes queued but not yet started are dropped (their callers get an
    /// <see cref="ObjectDisposedException"/>), the batch being written commits or not as SQLite decides, and the store
    /// closes. Reopening the file recovers whatever was committed.
    /// </summary>
    public ValueTask AbandonAsync()
    {
        _abandoned = true;
        return DisposeAsync();
    }

    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return ValueTask.CompletedTask;
        }
        _queue.CompleteAdding();
        _writer.Join();
        _statements.Dispose();
        _connection.Dispose();
        _queue.Dispose();
        _lock.Dispose();
        return ValueTask.CompletedTask;
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>One queued piece of work for the writer thread.</summary>
    private abstract class Write
    {
        public abstract void Run();
        public abstract void Complete();
        public abstract void Fail(Exception error);
    }

    private sealed class Write<T>(Func<T> work) : Write
    {
        private T? _result;
        private bool _failed;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Run() => _result = work();

        public override void Complete()
        {
            if (!_failed)
            {
                Completion.TrySetResult(_result!);
            }
        }

        public override void Fail(Exception error)
        {
            _failed = true;
            Completion.TrySetException(error);
        }
    }

    /// <summary>The writer's statements, prepared once and reused for every save.</summary>
    private sealed class Statements : IDisposable
    {
        public Statements(SqliteConnection connection)
        {
            SqliteCommand Make(string sql, params string[] parameters)
            {
                SqliteCommand command = connection.CreateCommand();
                command.CommandText = sql;
                foreach (string parameter in parameters)
                {
                    command.Parameters.Add(new SqliteParameter(parameter, null));
                }
                All.Add(command);
                return command;
            }
            SaveHardState = Make("INSERT INTO hard_state (id, term, voted_for, crc) VALUES (0, $term, $vote, $crc) ON CONFLICT(id) DO UPDATE SET term = excluded.term, voted_for = excluded.voted_for, crc = excluded.crc;", "$term", "$vote", "$crc");
            TruncateFrom = Make("DELETE FROM log WHERE idx >= $first;", "$first");
            InsertEntry = Make("INSERT INTO log (idx, term, kind, data, crc) VALUES ($idx, $term, $kind, $data, $crc);", "$idx", "$term", "$kind", "$data", "$crc");
            SaveSnapshot = Make("""
                INSERT INTO snapshot (id, idx, term, configuration, data, crc) VALUES (0, $idx, $term, $configuration, $data, $crc)
                ON CONFLICT(id) DO UPDATE SET idx = excluded.idx, term = excluded.term, configuration = excluded.configuration, data = excluded.data, crc = excluded.crc;
                """, "$idx", "$term", "$configuration", "$data", "$crc");
            CompactTo = Make("DELETE FROM log WHERE idx <= $idx;", "$idx");
            ClearLog = Make("DELETE FROM log;");
        }

        private List<SqliteCommand> All { get; } = [];
        public SqliteCommand SaveHardState { get; }
        public SqliteCommand TruncateFrom { get; }
        public SqliteCommand InsertEntry { get; }
        public SqliteCommand SaveSnapshot { get; }
        public SqliteCommand CompactTo { get; }
        public SqliteCommand ClearLog { get; }

        public void Use(SqliteTransaction transaction)
        {
            foreach (SqliteCommand command in All)
            {
                command.Transaction = transaction;
            }
        }

        public void Dispose()
        {
            foreach (SqliteCommand command in All)
            {
                command.Dispose();
            }
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection connection, string sql) =>
        Convert.ToInt64(ScalarObject(connection, sql), System.Globalization.CultureInfo.InvariantCulture);

    private static object? ScalarObject(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
