using System.Text;
using Microsoft.Data.Sqlite;

namespace Raft.Engine.Storage;

/// <summary>
/// The tables of <see cref="SqliteLogStore"/> and the checksum of each row. Opening checks that a file holds exactly
/// these tables (or none), migrates an older version, and refuses anything else; every row carries a CRC-32C of its
/// contents, checked when it is loaded.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>1: hard state and log; 2: + snapshot; 3: + a checksum on every row; 4: + the node that owns the store.</summary>
    public const int Version = 4;

    private static readonly Dictionary<string, string[]> Tables = new(StringComparer.Ordinal)
    {
        ["hard_state"] = ["id", "term", "voted_for", "crc"],
        ["log"] = ["idx", "term", "kind", "data", "crc"],
        ["snapshot"] = ["id", "idx", "term", "configuration", "data", "crc"],
        ["owner"] = ["id", "node_id", "crc"],
    };

    public static void Prepare(SqliteConnection connection, string path)
    {
        long version = Scalar(connection, "PRAGMA user_version;");
        List<string> tables = Strings(connection, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name;");
        if (version > Version)
        {
            throw new StorageException(path, $"schema version {version} is newer than this build knows ({Version})");
        }
        if (version == 0 && tables.Count > 0)
        {
            throw new StorageException(path, $"not a Raft store: it holds other tables ({string.Join(", ", tables)})");
        }
        using (SqliteTransaction transaction = connection.BeginTransaction())
        {
            Run(connection, transaction, """
                CREATE TABLE IF NOT EXISTS hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, voted_for TEXT NULL, crc INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, kind INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, term INTEGER NOT NULL,
                    configuration BLOB NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 0), node_id TEXT NOT NULL, crc INTEGER NOT NULL);
                """);
            if (version is > 0 and < 3)
            {
                AddChecksums(connection, transaction);
            }
            Run(connection, transaction, $"PRAGMA user_version = {Version};");
            transaction.Commit();
        }
        foreach ((string table, string[] expected) in Tables)
        {
            List<string> columns = Strings(connection, $"SELECT name FROM pragma_table_info('{table}') ORDER BY cid;");
            if (!columns.SequenceEqual(expected))
            {
                throw new StorageException(path, $"not a Raft store: table {table} has columns ({string.Join(", ", columns)}), expected ({string.Join(", ", expected)})");
            }
        }
        List<string> extra = [.. Strings(connection, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%';").Where(t => !Tables.ContainsKey(t))];
        if (extra.Count > 0)
        {
            throw new StorageException(path, $"not a Raft store: it holds other tables ({string.Join(", ", extra)})");
        }
    }

    /// <summary>Versions 1 and 2 had no checksums: add the column and compute each row's from what is stored.</summary>
    private static void AddChecksums(SqliteConnection connection, SqliteTransaction transaction)
    {
        foreach (string table in Tables.Keys)
        {
            if (!Strings(connection, $"SELECT name FROM pragma_table_info('{table}');", transaction).Contains("crc"))
            {
                Run(connection, transaction, $"ALTER TABLE {table} ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;");
            }
        }
        var updates = new List<(string Sql, long Key, uint Crc)>();
        using (SqliteCommand read = Command(connection, transaction, "SELECT term, voted_for FROM hard_state WHERE id = 0;"))
        using (SqliteDataReader row = read.ExecuteReader())
        {
            while (row.Read())
            {
                updates.Add(("UPDATE hard_state SET crc = $crc WHERE id = $key;", 0, HardStateChecksum(row.GetInt64(0), row.IsDBNull(1) ? null : row.GetString(1))));
            }
        }
        using (SqliteCommand read = Command(connection, transaction, "SELECT idx, term, kind, data FROM log;"))
        using (SqliteDataReader row = read.ExecuteReader())
        {
            while (row.Read())
            {
                updates.Add(("UPDATE log SET crc = $crc WHERE idx = $key;", row.GetInt64(0), EntryChecksum(row.GetInt64(0), row.GetInt64(1), row.GetInt32(2), (byte[])row.GetValue(3))));
            }
        }
        using (SqliteCommand read = Command(connection, transaction, "SELECT idx, term, configuration, data FROM snapshot WHERE id = 0;"))
        using (SqliteDataReader row = read.ExecuteReader())
        {
            while (row.Read())
            {
                updates.Add(("UPDATE snapshot SET crc = $crc WHERE id = $key;", 0, SnapshotChecksum(row.GetInt64(0), row.GetInt64(1), (byte[])row.GetValue(2), (byte[])row.GetValue(3))));
            }
        }
        foreach ((string sql, long key, uint crc) in updates)
        {
            using SqliteCommand update = Command(connection, transaction, sql);
            update.Parameters.AddWithValue("$crc", (long)crc);
            update.Parameters.AddWithValue("$key", key);
            update.ExecuteNonQuery();
        }
    }

    public static uint HardStateChecksum(long term, string? votedFor)
    {
        uint crc = Crc32C.Append(~0u, term);
        crc = Crc32C.Append(crc, votedFor is null ? -1 : votedFor.Length);
        return ~Crc32C.Append(crc, Encoding.UTF8.GetBytes(votedFor ?? ""));
    }

    /// <summary>
    /// The node id this store belongs to: recorded by the first node that opens it with an id, and refused to any other,
    /// so that a node started with another --id on the same data folder cannot take over (or vote with) its term and log.
    /// </summary>
    public static void CheckOwner(SqliteConnection connection, string path, string nodeId)
    {
        using (SqliteCommand read = Command(connection, null, "SELECT node_id, crc FROM owner WHERE id = 0;"))
        using (SqliteDataReader row = read.ExecuteReader())
        {
            if (row.Read())
            {
                string owner = row.GetString(0);
                if ((uint)row.GetInt64(1) != OwnerChecksum(owner))
                {
                    throw new StorageException(path, "the store's owner record fails its checksum");
                }
                if (owner != nodeId)
                {
                    throw new StorageException(path, $"the store belongs to node {owner}, not {nodeId}: start that node with --id {owner}, or give {nodeId} a data folder of its own");
                }
                return;
            }
        }
        using SqliteCommand insert = Command(connection, null, "INSERT INTO owner (id, node_id, crc) VALUES (0, $node, $crc);");
        insert.Parameters.AddWithValue("$node", nodeId);
        insert.Parameters.AddWithValue("$crc", (long)OwnerChecksum(nodeId));
        insert.ExecuteNonQuery();
    }

    private static uint OwnerChecksum(string nodeId) => ~Crc32C.Append(~0u, Encoding.UTF8.GetBytes(nodeId));

    public static uint EntryChecksum(long index, long term, int kind, byte[] data)
    {
        uint crc = Crc32C.Append(~0u, index);
        crc = Crc32C.Append(crc, term);
        crc = Crc32C.Append(crc, kind);
        return ~Crc32C.Append(crc, data);
    }

    public static uint SnapshotChecksum(long index, long term, byte[] configuration, byte[] data)
    {
        uint crc = Crc32C.Append(~0u, index);
        crc = Crc32C.Append(crc, term);
        crc = Crc32C.Append(crc, configuration.Length);
        crc = Crc32C.Append(crc, configuration);
        return ~Crc32C.Append(crc, data);
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private static void Run(SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using SqliteCommand command = Command(connection, transaction, sql);
        command.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = Command(connection, null, sql);
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static List<string> Strings(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = Command(connection, transaction, sql);
        using SqliteDataReader reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(reader.GetString(0));
        }
        return values;
    }
}
