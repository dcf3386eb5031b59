using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Raft.Engine.Hosting;
using Raft.Client;
using Raft.Node.Hosting;

namespace Raft.Tests.Node;

/// <summary>What an operator's tracing backend receives for one client write.</summary>
public sealed class WriteTraceTests
{
    private static readonly ActivitySource ClientSource = new("Raft.Tests.Client");

    [Fact]
    public async Task A_client_write_is_one_trace_from_the_grpc_server_span_through_propose_persist_replicate_and_apply()
    {
        // Every host exports to one list, as an embedding host adds its exporter; the node chose what to trace.
        var spans = new ConcurrentQueue<Activity>();
        await using var cluster = new NodeTestCluster(3, configure: builder => builder.Services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.AddSource(ClientSource.Name).AddInMemoryExporter(new QueueCollection(spans))));
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();

        using var client = new RaftClient([cluster[leader].GrpcUrl]);
        ActivityTraceId traceId;
        using (Activity root = ClientSource.StartActivity("client put", ActivityKind.Client)!)
        {
            Assert.NotNull(root); // sampled: the hosts' tracer providers listen to this source
            traceId = root.TraceId;
            await client.PutAsync("traced", "v");
        }

        // The server span ends once the answer is written, which may be just after the client has it.
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(Trace(spans, traceId).Any(s => s.Kind == ActivityKind.Server)),
            what: "the gRPC server span");
        IReadOnlyList<Activity> trace = Trace(spans, traceId);
        string shape = string.Join("; ", trace.Select(s => $"{s.Source.Name}/{s.DisplayName} parent {s.ParentSpanId}"));

        Activity server = Assert.Single(trace, s => s.Kind == ActivityKind.Server);
        Assert.Contains("/raft.v1.KeyValue/Put", server.DisplayName + " " + server.GetTagItem("http.route") + " " + server.GetTagItem("url.path"), StringComparison.Ordinal);
        Activity write = Assert.Single(trace, s => s.DisplayName == RaftTracing.Write);
        Assert.Equal(server.SpanId, write.ParentSpanId);
        Assert.Equal(leader, write.GetTagItem("raft.node"));
        long index = Assert.IsType<long>(write.GetTagItem("raft.index"));

        Activity Stage(string name)
        {
            Activity stage = Assert.Single(trace, s => s.DisplayName == name);
            Assert.True(stage.ParentSpanId == write.SpanId, $"{name} is not a child of {RaftTracing.Write}: {shape}");
            Assert.Equal(index, stage.GetTagItem("raft.index"));
            Assert.True(stage.StartTimeUtc >= write.StartTimeUtc && stage.StartTimeUtc + stage.Duration <= write.StartTimeUtc + write.Duration,
                $"{name} lies outside the write: {shape}");
            return stage;
        }
        Activity propose = Stage(RaftTracing.Propose);
        Activity persist = Stage(RaftTracing.Persist);
        Activity replicate = Stage(RaftTracing.Replicate);
        Activity apply = Stage(RaftTracing.Apply);

        // The order Raft needs: appended, then durable and sent, committed by a majority, then applied.
        Assert.True(propose.StartTimeUtc + propose.Duration <= persist.StartTimeUtc, shape);
        Assert.True(persist.StartTimeUtc + persist.Duration <= apply.StartTimeUtc, shape);
        Assert.True(replicate.StartTimeUtc + replicate.Duration <= apply.StartTimeUtc, shape);
        Assert.True(Assert.IsType<int>(persist.GetTagItem("raft.batch.entries")) >= 1);
        // A majority of three is the leader and one follower: at least one follower stored it before the commit.
        ActivityEvent stored = Assert.Single(replicate.Events.Take(1));
        Assert.Equal("stored by follower", stored.Name);
        Assert.Contains(stored.Tags, t => t.Key == "raft.follower" && t.Value is string id && id != leader);
        Assert.True(stored.Timestamp.UtcDateTime <= replicate.StartTimeUtc + replicate.Duration + TimeSpan.FromMilliseconds(1), shape);
    }

    [Fact]
    public async Task A_write_proposed_on_a_node_with_no_leader_ends_its_span_with_the_error()
    {
        var spans = new ConcurrentQueue<Activity>();
        await using var cluster = new NodeTestCluster(3, configure: builder => builder.Services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.AddSource(ClientSource.Name).AddInMemoryExporter(new QueueCollection(spans))));
        await cluster.StartAsync("n1"); // alone of three: no leader
        ActivityTraceId traceId;
        using (Activity root = ClientSource.StartActivity("embedded put")!)
        {
            traceId = root.TraceId;
            await Assert.ThrowsAsync<NotLeaderException>(() =>
                cluster.Member("n1").Node.ProposeAsync(Raft.Engine.StateMachines.KvCommand.Put("k", "v").Encode()));
        }
        Activity write = Assert.Single(Trace(spans, traceId), s => s.DisplayName == RaftTracing.Write);
        Assert.Equal(ActivityStatusCode.Error, write.Status);
        Assert.Contains("not the leader", write.StatusDescription, StringComparison.Ordinal);
        Assert.DoesNotContain(Trace(spans, traceId), s => s.DisplayName == RaftTracing.Persist);
    }

    [Fact]
    public async Task Traces_go_to_the_configured_otlp_endpoint()
    {
        // A real OTLP/HTTP receiver on loopback: it keeps what each POST carried.
        var received = new ConcurrentQueue<(string Path, byte[] Body)>();
        int port = Ports.Free();
        WebApplicationBuilder receiverBuilder = WebApplication.CreateSlimBuilder();
        receiverBuilder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        receiverBuilder.Logging.ClearProviders();
        await using WebApplication receiver = receiverBuilder.Build();
        receiver.MapPost("/{**path}", async (HttpContext http) =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            received.Enqueue((http.Request.Path.Value!, body.ToArray()));
            http.Response.ContentType = "application/x-protobuf";
            return Results.Bytes([], "application/x-protobuf");
        });
        await receiver.StartAsync();

        string folder = Directory.CreateTempSubdirectory("raft-otlp-").FullName;
        MemberSpec spec = MemberSpec.Create("n1", folder);
        WebApplication node = NodeApp.Build(spec.Options($"n1={spec.GrpcUrl}", o =>
        {
            o.OtlpEndpoint = $"http://127.0.0.1:{port}";
            o.OtlpProtocol = "http";
        }), builder => builder.Logging.SetMinimumLevel(LogLevel.Warning));
        await node.StartAsync();
        try
        {
            using var client = new RaftClient([spec.GrpcUrl]);
            await NodeTestCluster.WaitUntilAsync(async () =>
            {
                try
                {
                    await client.PutAsync("exported", "v");
                    return true;
                }
                catch (Grpc.Core.RpcException)
                {
                    return false;
                }
            }, what: "a write");
        }
        finally
        {
            await node.StopAsync(); // flushes the exporters
            await node.DisposeAsync();
        }

        byte[][] traces = [.. received.Where(r => r.Path == "/v1/traces").Select(r => r.Body)];
        Assert.NotEmpty(traces);
        byte[] all = [.. traces.SelectMany(b => b)];
        foreach (string name in new[] { RaftTracing.Write, RaftTracing.Persist, RaftTracing.Apply, "raft-node" })
        {
            Assert.True(all.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes(name)) >= 0, $"no {name} in what reached /v1/traces");
        }
        Assert.Contains(received, r => r.Path == "/v1/metrics");
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>The spans of one trace, once each (every host in this process exports every span it sees).</summary>
    private static List<Activity> Trace(IEnumerable<Activity> spans, ActivityTraceId traceId) =>
        [.. spans.Where(s => s.TraceId == traceId).DistinctBy(s => s.SpanId)];

    /// <summary>A thread-safe sink for the in-memory exporter (nodes export from their own threads).</summary>
    private sealed class QueueCollection(ConcurrentQueue<Activity> queue) : ICollection<Activity>
    {
        public int Count => queue.Count;
        public bool IsReadOnly => false;
        public void Add(Activity item) => queue.Enqueue(item);
        public void Clear() => queue.Clear();
        public bool Contains(Activity item) => queue.Contains(item);
        public void CopyTo(Activity[] array, int arrayIndex) => queue.CopyTo(array, arrayIndex);
        public bool Remove(Activity item) => throw new NotSupportedException();
        public IEnumerator<Activity> GetEnumerator() => queue.GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
