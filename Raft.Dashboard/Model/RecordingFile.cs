using System.IO.Compression;
using System.Text.Json;
using Raft.Client.Events;

namespace Raft.Dashboard.Model;

/// <summary>
/// A recording as a file: gzipped JSON in which each frame holds only what changed since the frame before (each
/// node's header when it changed, its log and the timeline as <see cref="ListDelta{T}"/>). Ten minutes of a cluster
/// taking thousands of writes a second stay a few megabytes (a test holds it under <see cref="SizeBound"/>).
/// Version 1 files (plain JSON, every frame whole) are still read.
/// </summary>
public static class RecordingFile
{
    public const int Version = 2;

    /// <summary>What a ten-minute recording of a busy three-node cluster stays under.</summary>
    public const long SizeBound = 10L * 1024 * 1024;

    /// <summary>The most a file may unpack to: far above what the recorder writes, and a stop for a gzip bomb.</summary>
    public const long MaxUnpackedBytes = 512L * 1024 * 1024;

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public static async Task WriteAsync(Recording recording, Stream destination, CancellationToken cancellationToken = default)
    {
        var file = new FileRecording(Version, recording.Started, Encode(recording.Frames));
        await using var gzip = new GZipStream(destination, CompressionLevel.Optimal, leaveOpen: true);
        await JsonSerializer.SerializeAsync(gzip, file, Json, cancellationToken);
    }

    public static async Task<Recording> ReadAsync(Stream source, CancellationToken cancellationToken = default)
    {
        // Small enough to hold (the page takes at most 256 MB); held, it can be looked at before it is parsed.
        var raw = new MemoryStream();
        try
        {
            await new BoundedStream(source, MaxUnpackedBytes).CopyToAsync(raw, cancellationToken);
        }
        catch (InvalidDataException e)
        {
            throw new FormatException($"not a recording of this dashboard ({e.Message})", e);
        }
        raw.Position = 0;
        byte[] magic = raw.GetBuffer();
        Stream json = raw.Length >= 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new GZipStream(raw, CompressionMode.Decompress) : raw;
        FileRecording? file;
        try
        {
            file = await JsonSerializer.DeserializeAsync<FileRecording>(new BoundedStream(json, MaxUnpackedBytes), Json, cancellationToken);
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            throw new FormatException($"not a recording of this dashboard ({e.Message})", e);
        }
        if (file is null || file.Version is not (1 or Version))
        {
            throw new FormatException(file is null || file.Version == 0
                ? "not a recording of this dashboard (it names no recording version)"
                : $"a recording of version {file.Version}; this dashboard reads versions 1 and {Version}");
        }
        if (file.Frames is null || file.Frames.Count == 0)
        {
            throw new FormatException("the file holds no frames");
        }
        IReadOnlyList<RecordedFrame> frames = file.Version == 1
            ? [.. file.Frames.Select(f => new RecordedFrame(f.At, f.Cluster ?? throw new FormatException("a version 1 frame without its cluster")))]
            : Decode(file.Frames);
        return new Recording(Version, file.Started, frames);
    }

    private static List<FileFrame> Encode(IReadOnlyList<RecordedFrame> frames)
    {
        var result = new List<FileFrame>(frames.Count);
        var nodes = new Dictionary<string, (string HeaderJson, IReadOnlyList<LogEntryView> Log)>(StringComparer.Ordinal);
        IReadOnlyList<TimelineEvent> timeline = [];
        foreach (RecordedFrame frame in frames)
        {
            var fileNodes = new List<FileNode>(frame.Cluster.Nodes.Count);
            foreach (NodeSnapshot node in frame.Cluster.Nodes)
            {
                var header = new NodeHeader(node.GrpcUrl, node.HttpUrl, node.Connected, node.Stopped, node.Status);
                string headerJson = JsonSerializer.Serialize(header, Json);
                bool same = nodes.TryGetValue(node.Id, out var before) && headerJson == before.HeaderJson;
                fileNodes.Add(new FileNode(node.Id, same ? null : header, ListDelta.Between(before.Log ?? [], node.Log)));
                nodes[node.Id] = (headerJson, node.Log);
            }
            result.Add(new FileFrame(frame.At, null, fileNodes, ListDelta.Between(timeline, frame.Cluster.Timeline),
                frame.Cluster.CommitsPerSecond, frame.Cluster.CanManageNodes));
            timeline = frame.Cluster.Timeline;
        }
        return result;
    }

    private static List<RecordedFrame> Decode(IReadOnlyList<FileFrame> frames)
    {
        var result = new List<RecordedFrame>(frames.Count);
        var nodes = new Dictionary<string, NodeSnapshot>(StringComparer.Ordinal);
        IReadOnlyList<TimelineEvent> timeline = [];
        foreach (FileFrame frame in frames)
        {
            if (frame.Nodes is null || frame.Timeline is null)
            {
                throw new FormatException("a frame without its nodes or timeline");
            }
            var snapshots = new List<NodeSnapshot>(frame.Nodes.Count);
            foreach (FileNode node in frame.Nodes)
            {
                nodes.TryGetValue(node.Id, out NodeSnapshot? before);
                NodeHeader header = node.Header
                    ?? (before is null ? throw new FormatException($"node {node.Id} appears without its header") : new NodeHeader(before.GrpcUrl, before.HttpUrl, before.Connected, before.Stopped, before.Status));
                var snapshot = new NodeSnapshot(node.Id, header.GrpcUrl, header.HttpUrl, header.Connected, header.Stopped, header.Status,
                    (node.Log ?? throw new FormatException($"node {node.Id} without its log")).Apply(before?.Log ?? []));
                nodes[node.Id] = snapshot;
                snapshots.Add(snapshot);
            }
            timeline = frame.Timeline.Apply(timeline);
            result.Add(new RecordedFrame(frame.At, new ClusterSnapshot(snapshots, timeline, frame.CommitsPerSecond, frame.CanManageNodes)));
        }
        return result;
    }

    // The file's shapes. A frame of version 1 has Cluster; one of version 2 has Nodes and Timeline.
    private sealed record FileRecording(int Version, DateTimeOffset Started, IReadOnlyList<FileFrame>? Frames);

    private sealed record FileFrame(TimeSpan At, ClusterSnapshot? Cluster, IReadOnlyList<FileNode>? Nodes, ListDelta<TimelineEvent>? Timeline,
        double CommitsPerSecond, bool CanManageNodes);

    /// <summary>One node in a frame; <see cref="Header"/> null means as in the frame before.</summary>
    private sealed record FileNode(string Id, NodeHeader? Header, ListDelta<LogEntryView>? Log);

    private sealed record NodeHeader(string GrpcUrl, string HttpUrl, bool Connected, bool Stopped, StatusView? Status);

    /// <summary>A read-only stream that fails once more than a bound has been read through it.</summary>
    private sealed class BoundedStream(Stream inner, long bound) : Stream
    {
        private long _read;

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        private int Count(int read)
        {
            _read += read;
            return _read > bound ? throw new InvalidDataException($"it unpacks to more than {bound / (1024 * 1024)} MiB") : read;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>
/// A list told against the one before it: <see cref="Before"/>, then <see cref="Keep"/> items of the previous list
/// starting at <see cref="From"/>, then <see cref="After"/>. A log window that slid (entries dropped at the front,
/// appended at the back) and a timeline that grew at the front both come out as a few new items.
/// </summary>
internal sealed record ListDelta<T>(int From, int Keep, IReadOnlyList<T>? Before = null, IReadOnlyList<T>? After = null)
{
    public IReadOnlyList<T> Apply(IReadOnlyList<T> previous)
    {
        if (From < 0 || Keep < 0 || From + Keep > previous.Count)
        {
            throw new FormatException($"a change that keeps items {From}..{From + Keep} of a list of {previous.Count}");
        }
        var result = new List<T>((Before?.Count ?? 0) + Keep + (After?.Count ?? 0));
        result.AddRange(Before ?? []);
        for (int i = From; i < From + Keep; i++)
        {
            result.Add(previous[i]);
        }
        result.AddRange(After ?? []);
        return result;
    }
}

internal static class ListDelta
{
    /// <summary>The delta that turns <paramref name="previous"/> into <paramref name="next"/> (items compared by value).</summary>
    public static ListDelta<T> Between<T>(IReadOnlyList<T> previous, IReadOnlyList<T> next)
    {
        if (next.Count == 0)
        {
            return new ListDelta<T>(0, 0);
        }
        int from = IndexOf(previous, next[0]);
        int before = 0;
        if (from < 0)
        {
            before = previous.Count == 0 ? -1 : IndexOf(next, previous[0]);
            if (before < 0)
            {
                return new ListDelta<T>(0, 0, null, next);
            }
            from = 0;
        }
        int keep = 0;
        while (from + keep < previous.Count && before + keep < next.Count && Same(previous[from + keep], next[before + keep]))
        {
            keep++;
        }
        return new ListDelta<T>(from, keep, before > 0 ? [.. next.Take(before)] : null, before + keep < next.Count ? [.. next.Skip(before + keep)] : null);
    }

    private static bool Same<T>(T a, T b) => EqualityComparer<T>.Default.Equals(a, b);

    private static int IndexOf<T>(IReadOnlyList<T> list, T item)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (Same(list[i], item))
            {
                return i;
            }
        }
        return -1;
    }
}
