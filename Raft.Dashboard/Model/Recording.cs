namespace Raft.Dashboard.Model;

/// <summary>One moment of a recording: the cluster as the page showed it, <see cref="At"/> after the recording began.</summary>
public sealed record RecordedFrame(TimeSpan At, ClusterSnapshot Cluster);

/// <summary>
/// A recording of what the page showed, as a teacher hands it to a class. In memory each frame is the whole picture
/// (frames share what did not change); on disk it is <see cref="RecordingFile"/>: what changed, gzipped. Each frame
/// keeps the tail of every node's log that the log view shows, not the whole window the live view holds, and entries
/// carry one-line summaries in which long values are abbreviated (<see cref="Engine.StateMachines.ValueText"/>).
/// </summary>
public sealed record Recording(int Version, DateTimeOffset Started, IReadOnlyList<RecordedFrame> Frames)
{
    public const int CurrentVersion = RecordingFile.Version;

    /// <summary>Entries of each node's log kept per frame: the log view's default window and a margin.</summary>
    public const int LogEntriesPerFrame = 60;

    public static ClusterSnapshot Trim(ClusterSnapshot cluster) => cluster with
    {
        Nodes = [.. cluster.Nodes.Select(n => n.Log.Count <= LogEntriesPerFrame ? n : n with { Log = [.. n.Log.Skip(n.Log.Count - LogEntriesPerFrame)] })],
    };

    public Task WriteAsync(Stream destination, CancellationToken cancellationToken = default) =>
        RecordingFile.WriteAsync(this, destination, cancellationToken);

    /// <summary>Reads a recording this dashboard wrote (any version); throws <see cref="FormatException"/> with a plain message for anything else.</summary>
    public static Task<Recording> ReadAsync(Stream source, CancellationToken cancellationToken = default) =>
        RecordingFile.ReadAsync(source, cancellationToken);
}
