using System.IO.Compression;
using System.Text.Json;
using Raft.Dashboard.Model;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;
using Raft.Client.Events;
using Raft.Node.Events;

namespace Raft.Tests.Dashboard;

/// <summary>What Export writes: small for a busy cluster and a huge value, and read back exactly as recorded.</summary>
public sealed class RecordingFileTests
{
    private static readonly string[] Members = ["n1", "n2", "n3"];

    private static LogEntryView Put(long index, long term, string key, string value) =>
        EventStreamer.View(new LogEntry(index, term, EntryKind.Command, KvCommand.Put(key, value).Encode()));

    /// <summary>
    /// Ten minutes of a cluster taking 3,000 writes a second as the recorder keeps it: 3,000 frames, each with 600 new
    /// entries per node (of which the frame keeps the last 60), every status changed and five new timeline events;
    /// a 1 MiB value sits in the log for the first minute.
    /// </summary>
    private static Recording BusyTenMinutes()
    {
        string huge = string.Concat(Enumerable.Range(0, 1024 * 1024 / 8).Select(i => $"{i,8}"));
        var frames = new List<RecordedFrame>();
        var log = new List<LogEntryView> { Put(1, 2, "big", huge) };
        var timeline = new LinkedList<TimelineEvent>();
        long index = 1;
        for (int frame = 0; frame < 3000; frame++)
        {
            for (int i = 0; i < 600; i++)
            {
                index++;
                log.Add(frame < 300 && i == 599 ? Put(index, 2, "big", huge + index) : Put(index, 2, $"key-{index % 5000}", $"value-{index}"));
            }
            log.RemoveRange(0, log.Count - Recording.LogEntriesPerFrame);
            for (int e = 0; e < 5; e++)
            {
                timeline.AddFirst(new TimelineEvent(DateTimeOffset.UnixEpoch.AddMilliseconds(frame * 200 + e), Members[e % 3], "message-sent", $"AppendEntries to n{e % 3 + 1} at {index}"));
            }
            while (timeline.Count > 500)
            {
                timeline.RemoveLast();
            }
            var nodes = Members.Select(id => FakeMonitor.Node(
                FakeMonitor.Status(id, id == "n1" ? "Leader" : "Follower", 2, "n1", index - 10, index, Members), [.. log])).ToList();
            frames.Add(new RecordedFrame(TimeSpan.FromMilliseconds(frame * 200), new ClusterSnapshot(nodes, [.. timeline], 3000, true)));
        }
        return new Recording(Recording.CurrentVersion, DateTimeOffset.UnixEpoch, frames);
    }

    private static string Json(ClusterSnapshot cluster) => JsonSerializer.Serialize(cluster);

    [Fact]
    public async Task Ten_busy_minutes_with_a_one_mebibyte_value_stay_under_the_bound_and_read_back_frame_by_frame()
    {
        Recording recording = BusyTenMinutes();
        using var file = new MemoryStream();
        await recording.WriteAsync(file);
        Console.WriteLine($"ten busy minutes: {file.Length:N0} bytes");
        Assert.True(file.Length < RecordingFile.SizeBound, $"the file has {file.Length:N0} bytes; the bound is {RecordingFile.SizeBound:N0}");

        file.Position = 0;
        Recording read = await Recording.ReadAsync(file);
        Assert.Equal(recording.Frames.Count, read.Frames.Count);
        for (int i = 0; i < recording.Frames.Count; i++)
        {
            Assert.Equal(recording.Frames[i].At, read.Frames[i].At);
            Assert.Equal(Json(recording.Frames[i].Cluster), Json(read.Frames[i].Cluster));
        }
        // The huge value is named by its start, size and digest, never stored whole.
        LogEntryView big = read.Frames[0].Cluster.Nodes[0].Log.First(e => e.Summary.StartsWith("put big=", StringComparison.Ordinal));
        Assert.Contains("1,048,5", big.Summary, StringComparison.Ordinal);
        Assert.Contains("sha256 ", big.Summary, StringComparison.Ordinal);
        Assert.True(big.Summary.Length < 200, big.Summary);
    }

    [Fact]
    public void Two_long_values_that_differ_only_at_the_end_are_summarized_differently()
    {
        string a = new('a', 100_000);
        string b = a[..^1] + "b";
        Assert.NotEqual(ValueText.Show(a), ValueText.Show(b));
        Assert.Equal("short", ValueText.Show("short"));
        Assert.Equal("(absent)", ValueText.Show(null));
        Assert.Equal(Put(1, 1, "k", a).Summary, $"put k={ValueText.Show(a)}");
    }

    [Fact]
    public async Task A_version_one_file_is_still_read()
    {
        ClusterSnapshot cluster = FakeMonitor.ThreeNodes();
        using var file = new MemoryStream();
        await JsonSerializer.SerializeAsync(file, new { Version = 1, Started = DateTimeOffset.UnixEpoch, Frames = new[] { new RecordedFrame(TimeSpan.FromSeconds(1), cluster) } });
        file.Position = 0;
        Recording read = await Recording.ReadAsync(file);
        Assert.Equal(Json(cluster), Json(Assert.Single(read.Frames).Cluster));
    }

    [Theory]
    [InlineData("hello", "not a recording")]
    [InlineData("{\"Version\":0}", "names no recording version")]
    [InlineData("{\"Version\":7,\"Frames\":[]}", "version 7")]
    [InlineData("{\"Version\":2,\"Frames\":[]}", "no frames")]
    [InlineData("{\"Version\":2,\"Frames\":[{\"At\":\"00:00:01\",\"Nodes\":[{\"Id\":\"n1\",\"Log\":{\"From\":0,\"Keep\":0}}],\"Timeline\":{\"From\":0,\"Keep\":0}}]}", "n1 appears without its header")]
    [InlineData("{\"Version\":2,\"Frames\":[{\"At\":\"00:00:01\",\"Nodes\":[],\"Timeline\":{\"From\":3,\"Keep\":1}}]}", "keeps items 3..4 of a list of 0")]
    public async Task A_file_that_is_not_a_recording_is_refused_in_plain_words(string content, string expected)
    {
        using var file = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content));
        FormatException refused = await Assert.ThrowsAsync<FormatException>(() => Recording.ReadAsync(file));
        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gzip_bomb_is_refused_before_it_is_unpacked_whole()
    {
        using var file = new MemoryStream();
        await using (var gzip = new GZipStream(file, CompressionLevel.Fastest, leaveOpen: true))
        {
            byte[] spaces = new byte[1024 * 1024];
            Array.Fill(spaces, (byte)' ');
            for (long written = 0; written <= RecordingFile.MaxUnpackedBytes; written += spaces.Length)
            {
                await gzip.WriteAsync(spaces);
            }
        }
        file.Position = 0;
        FormatException refused = await Assert.ThrowsAsync<FormatException>(() => Recording.ReadAsync(file));
        Assert.Contains("unpacks to more than", refused.Message, StringComparison.Ordinal);
    }
}
