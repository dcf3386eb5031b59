using System.Text.Json;

namespace Raft.Dashboard.Model;

/// <summary>One moment of a recording: the cluster as the page showed it, <see cref="At"/> after the recording began.</summary>
public sealed record RecordedFrame(TimeSpan At, ClusterSnapshot Cluster);

/// <summary>
/// A recording of what the page showed, as a teacher hands it to a class: a JSON file of frames. Each frame keeps the
/// tail of every node's log that the log view shows, not the whole window the live view holds.
/// </summary>
public sealed record Recording(int Version, DateTimeOffset Started, IReadOnlyList<RecordedFrame> Frames)
{
    public const int CurrentVersion = 1;

    /// <summary>Entries of each node's log kept per frame: the log view's default window and a margin.</summary>
    public const int LogEntriesPerFrame = 60;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static ClusterSnapshot Trim(ClusterSnapshot cluster) => cluster with
    {
        Nodes = [.. cluster.Nodes.Select(n => n.Log.Count <= LogEntriesPerFrame ? n : n with { Log = [.. n.Log.Skip(n.Log.Count - LogEntriesPerFrame)] })],
    };

    public async Task WriteAsync(Stream destination, CancellationToken cancellationToken = default) =>
        await JsonSerializer.SerializeAsync(destination, this, Json, cancellationToken);

    /// <summary>Reads a recording; throws <see cref="FormatException"/> with a plain message for anything else.</summary>
    public static async Task<Recording> ReadAsync(Stream source, CancellationToken cancellationToken = default)
    {
        Recording? recording;
        try
        {
            recording = await JsonSerializer.DeserializeAsync<Recording>(source, Json, cancellationToken);
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a recording of this dashboard ({e.Message})", e);
        }
        if (recording is null || recording.Version != CurrentVersion || recording.Frames is null || recording.Frames.Count == 0)
        {
            throw new FormatException(recording?.Version is int v && v != CurrentVersion
                ? $"a recording of version {v}; this dashboard reads version {CurrentVersion}"
                : "the file holds no frames");
        }
        return recording;
    }
}
