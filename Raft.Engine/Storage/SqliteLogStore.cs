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
    private const int SchemaVersion = 2;
    private readonly SqliteConnection _connection;
    private readonly System.Collections.Concurrent.BlockingCollection<Write> _queue = [];
    private readonly Thread _writer;
    private readonly Statements _statements;
    private long _lastIndex;
    private long _snapshotIndex;
    private int _disposed;
    /// <summary>The writer's open transaction, which every command on the connection must name.</summary>
    private SqliteTransaction? _transaction;

    private SqliteLogStore(SqliteConnection connection, string path)
    {
        _connection = connection;
        Path = path;
        _statements = new Statements(connection);
        _snapshotIndex = Scalar(connection, "SELECT COALESCE((SELECT idx FROM snapshot WHERE id = 0), 0);");
        _lastIndex = Math.Max(_snapshotIndex, Scalar(connection, "SELECT COALESCE(MAX(idx), 0) FROM log;"));
        _writer = new Thread(RunWriter) { IsBackground = true, Name = $"sqlite writer {System.IO.Path.GetFileName(path)}" };
        _writer.Start();
    }

    public string Path { get; }

    public static SqliteLogStore Open(string path)
    {
        string? folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (folder != null)
        {
            Directory.CreateDirectory(folder);
        }
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        connection.Open();
        try
        {
            Execute(connection, "PRAGMA journal_mode=WAL;");
            Execute(connection, "PRAGMA synchronous=FULL;");
            long version = Scalar(connection, "PRAGMA user_version;");
            if (version > SchemaVersion)
            {
                throw new InvalidOperationException($"{path} has schema version {version}; this build knows {SchemaVersion}");
            }
            Execute(connection, """
                CREATE TABLE IF NOT EXISTS hard_state (
                    id INTEGER PRIMARY KEY CHECK (id = 0),
                    term INTEGER NOT NULL,
                    voted_for TEXT NULL);
                CREATE TABLE IF NOT EXISTS log (
                    idx INTEGER PRIMARY KEY,
                    term INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    data BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshot (
                    id INTEGER PRIMARY KEY CHECK (id = 0),
                    idx INTEGER NOT NULL,
                    term INTEGER NOT NULL,
                    configuration BLOB NOT NULL,
                    data BLOB NOT NULL);
                PRAGMA user_version = 2;
                """);
            return new SqliteLogStore(connection, path);
        }
        catch
        {
            connection.Dispose();
            throw;
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
    public ValueTask SaveSnapshotAsync(Snapshot snapshot, CancellationToken cancellationToken = default) =>
        new(Enqueue<bool>(() => SaveSnapshot(snapshot), cancellationToken).AsTask());

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
                catch (Exception e) when (e is ArgumentException or InvalidDataException)
                {
                    Execute(_connection, transaction, "ROLLBACK TO w; RELEASE w;");
                    (_lastIndex, _snapshotIndex) = (l, s);
                    write.Fail(e);
                }
            }
            transaction.Commit();
        }
        catch (Exception e)
        {
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
            command.CommandText = "SELECT term, voted_for FROM hard_state WHERE id = 0;";
            using SqliteDataReader reader = command.ExecuteReader();
            if (reader.Read())
            {
                hardState = new HardState(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1));
            }
        }
        Snapshot? snapshot = null;
        using (SqliteCommand command = _connection.CreateCommand())
        {
            command.Transaction = _transaction;
            command.CommandText = "SELECT idx, term, configuration, data FROM snapshot WHERE id = 0;";
            using SqliteDataReader reader = command.ExecuteReader();
            if (reader.Read())
            {
                var metadata = new SnapshotMetadata(reader.GetInt64(0), reader.GetInt64(1), ClusterConfiguration.Decode((byte[])reader.GetValue(2)));
                snapshot = new Snapshot(metadata, (byte[])reader.GetValue(3));
            }
        }
        var entries = new List<LogEntry>();
        using (SqliteCommand command = _connection.CreateCommand())
        {
            command.Transaction = _transaction;
            command.CommandText = "SELECT idx, term, kind, data FROM log ORDER BY idx;";
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                var entry = new LogEntry(reader.GetInt64(0), reader.GetInt64(1), (EntryKind)reader.GetInt32(2), (byte[])reader.GetValue(3));
                if (entries.Count > 0 && entry.Index != entries[^1].Index + 1)
                {
                    throw new InvalidDataException($"{Path}: log has a gap before index {entry.Index}");
                }
                entries.Add(entry);
            }
        }
        if (snapshot != null && entries.Count > 0 && entries[0].Index != snapshot.Metadata.Index + 1)
        {
            throw new InvalidDataException($"{Path}: the log starts at {entries[0].Index}, not right after the snapshot at {snapshot.Metadata.Index}");
        }
        return new PersistentState(hardState, entries, snapshot);
    }

    private bool Save(HardState? hardState, IReadOnlyList<LogEntry> entries)
    {
        if (hardState is { } state)
        {
            _statements.SaveHardState.Parameters["$term"].Value = state.Term;
            _statements.SaveHardState.Parameters["$vote"].Value = (object?)state.VotedFor ?? DBNull.Value;
            _statements.SaveHardState.ExecuteNonQuery();
        }
        if (entries.Count > 0)
        {
            long first = entries[0].Index;
            if (first <= _snapshotIndex || first > _lastIndex + 1)
            {
                throw new ArgumentException($"entries start at {first}; the stored log holds {_snapshotIndex + 1}..{_lastIndex}", nameof(entries));
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
                insert.ExecuteNonQuery();
            }
            _lastIndex = entries[^1].Index;
        }
        return true;
    }

    private bool SaveSnapshot(Snapshot snapshot)
    {
        SnapshotMetadata metadata = snapshot.Metadata;
        if (metadata.Index <= _snapshotIndex)
        {
            return true; // not newer than the one stored
        }
        SqliteCommand save = _statements.SaveSnapshot;
        save.Parameters["$idx"].Value = metadata.Index;
        save.Parameters["$term"].Value = metadata.Term;
        save.Parameters["$configuration"].Value = metadata.Configuration.Encode();
        save.Parameters["$data"].Value = snapshot.Data;
        save.ExecuteNonQuery();
        _statements.EntryExists.Parameters["$idx"].Value = metadata.Index;
        _statements.EntryExists.Parameters["$term"].Value = metadata.Term;
        bool suffixContinues = (long)_statements.EntryExists.ExecuteScalar()! == 1;
        // Keep the suffix only if it continues the snapshot's last entry; otherwise the whole log is superseded.
        if (suffixContinues)
        {
            _statements.CompactTo.Parameters["$idx"].Value = metadata.Index;
            _statements.CompactTo.ExecuteNonQuery();
        }
        else
        {
            _statements.ClearLog.ExecuteNonQuery();
        }
        _snapshotIndex = metadata.Index;
        _lastIndex = suffixContinues ? Math.Max(_lastIndex, metadata.Index) : metadata.Index;
        return true;
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
            SaveHardState = Make("INSERT INTO hard_state (id, term, voted_for) VALUES (0, $term, $vote) ON CONFLICT(id) DO UPDATE SET term = excluded.term, voted_for = excluded.voted_for;", "$term", "$vote");
            TruncateFrom = Make("DELETE FROM log WHERE idx >= $first;", "$first");
            InsertEntry = Make("INSERT INTO log (idx, term, kind, data) VALUES ($idx, $term, $kind, $data);", "$idx", "$term", "$kind", "$data");
            SaveSnapshot = Make("""
                INSERT INTO snapshot (id, idx, term, configuration, data) VALUES (0, $idx, $term, $configuration, $data)
                ON CONFLICT(id) DO UPDATE SET idx = excluded.idx, term = excluded.term, configuration = excluded.configuration, data = excluded.data;
                """, "$idx", "$term", "$configuration", "$data");
            EntryExists = Make("SELECT EXISTS (SELECT 1 FROM log WHERE idx = $idx AND term = $term);", "$idx", "$term");
            CompactTo = Make("DELETE FROM log WHERE idx <= $idx;", "$idx");
            ClearLog = Make("DELETE FROM log;");
        }

        private List<SqliteCommand> All { get; } = [];
        public SqliteCommand SaveHardState { get; }
        public SqliteCommand TruncateFrom { get; }
        public SqliteCommand InsertEntry { get; }
        public SqliteCommand SaveSnapshot { get; }
        public SqliteCommand EntryExists { get; }
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

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
