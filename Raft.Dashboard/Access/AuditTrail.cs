using System.Text.Json;
using Raft.Dashboard.Model;
using Raft.Dashboard.ServiceClient;

namespace Raft.Dashboard.Access;

/// <summary>One operator action: who, what, on which node, when, and how it ended (refused ones too).</summary>
public sealed record AuditRecord(DateTimeOffset At, string User, string Role, string Action, string? Target, bool Ok, string Result);

/// <summary>
/// Every action a user takes on the cluster, appended as one JSON line to <c>Dashboard:AuditFile</c> (flushed before the
/// action's answer is shown, so a crash of the dashboard loses none that a user saw) and shown in the timeline as kind
/// "operator". Reads (get, looking at the data) are not actions.
/// </summary>
public sealed class AuditTrail(string path, ClusterMonitor monitor, ILogger<AuditTrail> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly Lock _lock = new();

    public string Path { get; } = System.IO.Path.GetFullPath(path);

    public void Record(AuditRecord record)
    {
        string line = JsonSerializer.Serialize(record, Json);
        lock (_lock)
        {
            try
            {
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
                using var file = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
                using var writer = new StreamWriter(file);
                writer.WriteLine(line);
                writer.Flush();
                file.Flush(flushToDisk: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                logger.LogError(e, "audit: could not append to {Path}: {Line}", Path, line);
            }
        }
        logger.LogInformation("audit: {User} ({Role}) {Action} {Target}: {Result}", record.User, record.Role, record.Action, record.Target, record.Result);
        string target = record.Target is null ? "" : $" {record.Target}";
        monitor.AddOperatorAction(new TimelineEvent(record.At, record.Target ?? "dashboard", "operator",
            $"{record.User} ({record.Role}): {record.Action}{target}: {(record.Ok || record.Result.StartsWith("refused", StringComparison.Ordinal) ? "" : "failed: ")}{record.Result}"));
    }

    /// <summary>The records on disk, oldest first (for tests and for an operator's own tools).</summary>
    public IReadOnlyList<AuditRecord> ReadAll()
    {
        lock (_lock)
        {
            return File.Exists(Path)
                ? File.ReadAllLines(Path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<AuditRecord>(l, Json)!).ToList()
                : [];
        }
    }
}
