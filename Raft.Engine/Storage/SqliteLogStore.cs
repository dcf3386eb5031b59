using Microsoft.Data.Sqlite;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;

namespace Raft.Engine.Storage;

/// <summary>
/// <see cref="ILogStore"/> in one SQLite file: WAL journal, synchronous=FULL, and every save one transaction,
/// so a batch of entries costs one fsync (group commit) and a kill -9 at any moment loses no completed save.
/// </summary>
public sealed class SqliteLogStore : ILogStore
{
    private const int SchemaVersion = 2;
    private readonly SqliteConnection _connection;

    private SqliteLogStore(SqliteConnection connection) => _connection = connection;

    public string Path => _connection.DataSource;

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
            return new SqliteLogStore(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public ValueTask<PersistentState> LoadAsync(CancellationToken cancellationToken = default)
    {
        var hardState = new HardState(0, null);
        using (SqliteCommand command = _connection.CreateCommand())
        {
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
        return ValueTask.FromResult(new PersistentState(hardState, entries, snapshot));
    }

    public ValueTask SaveAsync(HardState? hardState, IReadOnlyList<LogEntry> entries, CancellationToken cancellationToken = default)
    {
        if (hardState is null && entries.Count == 0)
        {
            return ValueTask.CompletedTask;
        }
        using SqliteTransaction transaction = _connection.BeginTransaction();
        if (hardState is { } state)
        {
            using SqliteCommand command = _connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO hard_state (id, term, voted_for) VALUES (0, $term, $vote) ON CONFLICT(id) DO UPDATE SET term = excluded.term, voted_for = excluded.voted_for;";
            command.Parameters.AddWithValue("$term", state.Term);
            command.Parameters.AddWithValue("$vote", (object?)state.VotedFor ?? DBNull.Value);
            command.ExecuteNonQuery();
        }
        if (entries.Count > 0)
        {
            using (SqliteCommand last = _connection.CreateCommand())
            {
                last.Transaction = transaction;
                last.CommandText = "SELECT COALESCE(MAX(idx), (SELECT idx FROM snapshot WHERE id = 0), 0), COALESCE((SELECT idx FROM snapshot WHERE id = 0), 0) FROM log;";
                using SqliteDataReader reader = last.ExecuteReader();
                reader.Read();
                long lastIndex = reader.GetInt64(0);
                long snapshotIndex = reader.GetInt64(1);
                if (entries[0].Index <= snapshotIndex || entries[0].Index > lastIndex + 1)
                {
                    throw new ArgumentException($"entries start at {entries[0].Index}; the stored log holds {snapshotIndex + 1}..{lastIndex}", nameof(entries));
                }
            }
            using (SqliteCommand truncate = _connection.CreateCommand())
            {
                truncate.Transaction = transaction;
                truncate.CommandText = "DELETE FROM log WHERE idx >= $first;";
                truncate.Parameters.AddWithValue("$first", entries[0].Index);
                truncate.ExecuteNonQuery();
            }
            using SqliteCommand insert = _connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO log (idx, term, kind, data) VALUES ($idx, $term, $kind, $data);";
            SqliteParameter index = insert.Parameters.Add("$idx", SqliteType.Integer);
            SqliteParameter term = insert.Parameters.Add("$term", SqliteType.Integer);
            SqliteParameter kind = insert.Parameters.Add("$kind", SqliteType.Integer);
            SqliteParameter data = insert.Parameters.Add("$data", SqliteType.Blob);
            insert.Prepare();
            foreach (LogEntry entry in entries)
            {
                index.Value = entry.Index;
                term.Value = entry.Term;
                kind.Value = (int)entry.Kind;
                data.Value = entry.Data;
                insert.ExecuteNonQuery();
            }
        }
        transaction.Commit();
        return ValueTask.CompletedTask;
    }

    public ValueTask SaveSnapshotAsync(Snapshot snapshot, CancellationToken cancellationToken = default)
    {
        SnapshotMetadata metadata = snapshot.Metadata;
        using SqliteTransaction transaction = _connection.BeginTransaction();
        using (SqliteCommand save = _connection.CreateCommand())
        {
            save.Transaction = transaction;
            save.CommandText = """
                INSERT INTO snapshot (id, idx, term, configuration, data) VALUES (0, $idx, $term, $configuration, $data)
                ON CONFLICT(id) DO UPDATE SET idx = excluded.idx, term = excluded.term, configuration = excluded.configuration, data = excluded.data;
                """;
            save.Parameters.AddWithValue("$idx", metadata.Index);
            save.Parameters.AddWithValue("$term", metadata.Term);
            save.Parameters.AddWithValue("$configuration", metadata.Configuration.Encode());
            save.Parameters.AddWithValue("$data", snapshot.Data);
            save.ExecuteNonQuery();
        }
        bool suffixContinues;
        using (SqliteCommand match = _connection.CreateCommand())
        {
            match.Transaction = transaction;
            match.CommandText = "SELECT EXISTS (SELECT 1 FROM log WHERE idx = $idx AND term = $term);";
            match.Parameters.AddWithValue("$idx", metadata.Index);
            match.Parameters.AddWithValue("$term", metadata.Term);
            suffixContinues = (long)match.ExecuteScalar()! == 1;
        }
        using (SqliteCommand compact = _connection.CreateCommand())
        {
            compact.Transaction = transaction;
            // Keep the suffix only if it continues the snapshot's last entry; otherwise the whole log is superseded.
            compact.CommandText = suffixContinues ? "DELETE FROM log WHERE idx <= $idx;" : "DELETE FROM log;";
            compact.Parameters.AddWithValue("$idx", metadata.Index);
            compact.ExecuteNonQuery();
        }
        transaction.Commit();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        return ValueTask.CompletedTask;
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
