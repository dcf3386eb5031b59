using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Raft.Client;
using Raft.Client.Events;
using Raft.Node.Hosting;
using Raft.Protocol;
using Raft.Tests.Node;
using Xunit.Abstractions;

namespace Raft.Tests.Security;

/// <summary>
/// Issue 11, hostile input: a seeded fuzzer sends every gRPC method and the hub random bytes, truncated frames, huge
/// strings and repeated fields, negative and overflowing numbers, unknown ids, stale terms of real members and
/// snapshot chunks with wrong offsets or garbage, to a real three-node cluster with tokens. Each answer must be a clear
/// status (never UNKNOWN, INTERNAL or DATA_LOSS: those mean a handler threw); afterwards every node is healthy, in no
/// term the fuzzer sent, its data is what it was (writes went only to keys under "fuzz/", as a writer's token allows)
/// and the nodes agree. CI runs seed 1 for about a minute: RAFT_FUZZ_SEED and RAFT_FUZZ_SECONDS run others and longer.
/// </summary>
[Collection(Raft.Tests.Simulation.CpuHeavyCollection.Name)] // it keeps a cluster busy: alone, so that timing-sensitive tests are not starved
public sealed class HostileInputFuzzTests(ITestOutputHelper output)
{
    private const string ReaderToken = "fuzz-reader-token-0123456789";
    private const string WriterToken = "fuzz-writer-token-0123456789";
    private const long HostileTermFloor = 1_000_000;

    private static readonly string[] Methods = RaftReflection.Descriptor.Services
        .SelectMany(s => s.Methods.Select(m => $"/{s.FullName}/{m.Name}")).ToArray();

    [Fact]
    public async Task Hostile_input_on_every_interface_gets_a_clear_answer_and_changes_nothing()
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("RAFT_FUZZ_SEED"), out int s) ? s : 1;
        double seconds = double.TryParse(Environment.GetEnvironmentVariable("RAFT_FUZZ_SECONDS"), System.Globalization.CultureInfo.InvariantCulture, out double d) ? d : 45;
        output.WriteLine($"fuzz seed {seed} for {seconds} s (RAFT_FUZZ_SEED, RAFT_FUZZ_SECONDS)");
        var random = new Random(seed);

        string folder = Directory.CreateTempSubdirectory("raft-fuzz-").FullName;
        string tokens = Path.Combine(folder, "tokens");
        File.WriteAllLines(tokens, [$"watcher reader {ReaderToken}", $"app writer {WriterToken}"]);
        await using var cluster = new NodeTestCluster(3, o =>
        {
            o.TokensFile = tokens;
            o.EnableFaultInjection = false;
        });
        cluster.ClientToken = WriterToken;
        await cluster.StartAllAsync();
        using var writer = new RaftClient(cluster.Endpoints) { Token = WriterToken };
        for (int i = 0; i < 10; i++)
        {
            await writer.PutAsync($"k{i}", $"v{i}");
        }
        await EveryNodeAppliedAsync(cluster); // "before" is what every node holds, not what n1 had applied so far
        IReadOnlyList<KeyValuePair<string, string>> before = Data(cluster, "n1");
        long startTerm = cluster.Specs.Max(spec => cluster.Member(spec.Id).Node.Status.Term);

        var statuses = new ConcurrentDictionary<string, int>();
        var counts = new ConcurrentDictionary<string, int>();
        var failures = new ConcurrentQueue<string>();
        var clientHangs = new ConcurrentQueue<string>();
        using var raw = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var channels = cluster.Specs.ToDictionary(spec => spec.Id, spec => GrpcChannel.ForAddress(spec.GrpcUrl, ChannelOptions.For(spec.GrpcUrl, WriterToken, null)));
        var hubs = new List<HubConnection>();
        foreach (MemberSpec spec in cluster.Specs)
        {
            HubConnection hub = new HubConnectionBuilder().WithUrl(spec.HttpUrl + HubContract.Path, o => o.AccessTokenProvider = () => Task.FromResult<string?>(ReaderToken)).Build();
            await hub.StartAsync();
            hubs.Add(hub);
        }

        void Record(string kind, StatusCode code, string detail)
        {
            counts.AddOrUpdate(kind, 1, (_, n) => n + 1);
            statuses.AddOrUpdate(code.ToString(), 1, (_, n) => n + 1);
            if (code is StatusCode.Unknown or StatusCode.Internal or StatusCode.DataLoss)
            {
                failures.Enqueue($"{kind}: {code} {detail}");
            }
            if (detail.StartsWith(Fuzzer.ClientGaveUp, StringComparison.Ordinal))
            {
                clientHangs.Enqueue($"{kind}: {detail}");
            }
        }

        var clock = Stopwatch.StartNew();
        int round = 0;
        while (clock.Elapsed.TotalSeconds < seconds && failures.IsEmpty)
        {
            // Each round draws its inputs from the seed in order, then sends them; what is sent depends only on the seed.
            var fuzzer = new Fuzzer(new Random(random.Next()), cluster.Specs.Select(x => x.Id).ToArray(), startTerm);
            MemberSpec target = cluster.Specs[fuzzer.Random.Next(cluster.Specs.Count)];
            GrpcChannel channel = channels[target.Id];
            round++;
            int kind = fuzzer.Random.Next(6);
            // A call that never ends is a finding too (a server that stops answering): it fails the run, never hangs it.
            Task input = SendOneAsync(kind, fuzzer, target, channel);
            if (await Task.WhenAny(input, Task.Delay(TimeSpan.FromSeconds(30))) != input)
            {
                failures.Enqueue($"input {round} (kind {kind}) to {target.Id} had no answer within 30 s; it was at: {fuzzer.Stage}");
                break;
            }
            await input;
        }

        async Task SendOneAsync(int kind, Fuzzer fuzzer, MemberSpec target, GrpcChannel channel)
        {
            switch (kind)
            {
                case 0:
                {
                    string method = Methods[fuzzer.Random.Next(Methods.Length)];
                    bool compressed = fuzzer.Random.Next(4) == 0; // sometimes a gzip bomb: never inflated, before or after authentication
                    string? token = fuzzer.Random.Next(4) == 0 ? null : ReaderToken;
                    byte[] body = compressed ? fuzzer.GzipBomb() : fuzzer.RawBody();
                    (int code, string detail) = await SendRawAsync(raw, target.GrpcUrl + method, body, token, compressed ? "gzip" : null);
                    string what = $"{method} ({body.Length} bytes{(compressed ? ", gzip" : "")}{(token is null ? ", no token" : "")}, {Convert.ToHexString(body.AsSpan(0, Math.Min(8, body.Length)))}...): {detail}";
                    Record(compressed ? "gzip bomb" : "raw bytes", (StatusCode)code, what);
                    if (compressed && (StatusCode)code is not (StatusCode.Unimplemented or StatusCode.Unauthenticated or StatusCode.PermissionDenied))
                    {
                        failures.Enqueue($"a compressed request was not refused: {what}");
                    }
                    break;
                }
                case 1:
                    await Guard("peer unary", Record, () => fuzzer.PeerUnaryAsync(new Peer.PeerClient(channel), target.Id));
                    break;
                case 2:
                    await Guard("peer stream", Record, () => fuzzer.PeerStreamAsync(new Peer.PeerClient(channel), target.Id));
                    break;
                case 3:
                    await Guard("install snapshot", Record, () => fuzzer.SnapshotAsync(new Peer.PeerClient(channel), target.Id));
                    break;
                case 4:
                    await Guard("client and admin", Record, () => fuzzer.ClientAsync(new KeyValue.KeyValueClient(channel), new Admin.AdminClient(channel)));
                    break;
                default:
                {
                    HubConnection hub = hubs[cluster.Specs.IndexOf(target)];
                    (string method, object?[] arguments) = fuzzer.HubCall();
                    try
                    {
                        await hub.InvokeCoreAsync<object?>(method, arguments).WaitAsync(TimeSpan.FromSeconds(5));
                        Record("hub", StatusCode.OK, method);
                    }
                    catch (HubException e)
                    {
                        Record("hub", StatusCode.InvalidArgument, $"{method}: {e.Message}");
                    }
                    catch (Exception e) when (e is InvalidOperationException or TimeoutException)
                    {
                        Record("hub", StatusCode.Unknown, $"{method}: the hub connection broke: {e.Message}");
                    }
                    break;
                }
            }
        }

        foreach (HubConnection hub in hubs)
        {
            await hub.DisposeAsync();
        }
        output.WriteLine($"{round} inputs in {clock.Elapsed.TotalSeconds:F0} s; by kind: {string.Join(", ", counts.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value}"))}");
        output.WriteLine($"answers: {string.Join(", ", statuses.OrderByDescending(c => c.Value).Select(c => $"{c.Key} {c.Value}"))}");
        foreach (string hang in clientHangs)
        {
            output.WriteLine(hang); // the node's state is checked below: a node that stopped answering fails there
        }
        Assert.True(failures.IsEmpty, $"seed {seed}: {string.Join("\n", failures.Take(10))}");

        // Healthy, in no term the fuzzer sent, data unchanged outside fuzz/, and all nodes agree.
        foreach (MemberSpec spec in cluster.Specs)
        {
            ClusterMember member = cluster.Member(spec.Id);
            Assert.True(member.Failure is null, $"seed {seed}: {spec.Id} failed: {member.Failure?.Message}");
            Assert.True(member.Node.Status.Term < HostileTermFloor, $"seed {seed}: {spec.Id} took the fuzzer's term {member.Node.Status.Term}");
            using var health = await new HttpClient().GetAsync(spec.HttpUrl + "/healthz");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        await writer.PutAsync("after-fuzz", "1"); // the cluster still commits, and every node applies up to here
        await EveryNodeAppliedAsync(cluster);
        var expected = before.Append(new("after-fuzz", "1")).OrderBy(p => p.Key, StringComparer.Ordinal).ToList();
        foreach (MemberSpec spec in cluster.Specs)
        {
            Assert.Equal(expected, Data(cluster, spec.Id).Where(p => !p.Key.StartsWith("fuzz/", StringComparison.Ordinal)).OrderBy(p => p.Key, StringComparer.Ordinal).ToList());
            Assert.Equal(Data(cluster, "n1").OrderBy(p => p.Key, StringComparer.Ordinal), Data(cluster, spec.Id).OrderBy(p => p.Key, StringComparer.Ordinal));
        }
        foreach (GrpcChannel channel in channels.Values)
        {
            channel.Dispose();
        }
    }

    private static async Task EveryNodeAppliedAsync(NodeTestCluster cluster)
    {
        long commit = cluster.Member(await cluster.WaitForLeaderAsync()).Node.Status.CommitIndex;
        await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(cluster.Specs.All(x => cluster.Member(x.Id).Node.Status.AppliedIndex >= commit)), what: "every node to apply");
    }

    private static IReadOnlyList<KeyValuePair<string, string>> Data(NodeTestCluster cluster, string id) => cluster.Member(id).StateMachine.Snapshot();

    private static async Task Guard(string kind, Action<string, StatusCode, string> record, Func<Task> call)
    {
        try
        {
            await call();
            record(kind, StatusCode.OK, "");
        }
        catch (RpcException e)
        {
            record(kind, e.StatusCode, e.Status.Detail);
        }
    }

    /// <summary>POSTs a body as a gRPC request and returns the grpc-status (from the trailers, or a trailers-only answer).</summary>
    private static async Task<(int Code, string Detail)> SendRawAsync(HttpClient http, string url, byte[] body, string? token, string? encoding = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Content = new ByteArrayContent(body), Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (token != null)
        {
            request.Headers.TryAddWithoutValidation("authorization", $"Bearer {token}");
        }
        if (encoding != null)
        {
            request.Headers.TryAddWithoutValidation("grpc-encoding", encoding);
        }
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            using HttpResponseMessage response = await http.SendAsync(request, cancel.Token);
            byte[] answer = await response.Content.ReadAsByteArrayAsync(cancel.Token);
            string? status = response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First()
                : response.Headers.TryGetValues("grpc-status", out var h) ? h.First() : null;
            string detail = response.TrailingHeaders.TryGetValues("grpc-message", out var m) ? Uri.UnescapeDataString(m.First())
                : response.Headers.TryGetValues("grpc-message", out var hm) ? Uri.UnescapeDataString(hm.First()) : "";
            return status is null ? ((int)StatusCode.Unknown, $"HTTP {(int)response.StatusCode} {response.Version} without a grpc-status: {System.Text.Encoding.UTF8.GetString(answer.AsSpan(0, Math.Min(200, answer.Length)))}") : (int.Parse(status, System.Globalization.CultureInfo.InvariantCulture), detail);
        }
        catch (HttpRequestException e)
        {
            return ((int)StatusCode.Unknown, $"the request failed: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            return ((int)StatusCode.DeadlineExceeded, "no answer in 10 s");
        }
    }

    /// <summary>Draws hostile values from one seeded <see cref="System.Random"/>.</summary>
    private sealed class Fuzzer(Random random, string[] members, long currentTerm)
    {
        public Random Random { get; } = random;

        /// <summary>How far the streaming call in hand got: a call that hangs says where.</summary>
        public string Stage { get; private set; } = "not started";

        public const string ClientGaveUp = "the fuzzer gave up";

        /// <summary>
        /// A step of a streaming call, given up on 3 s after the call's deadline. Twice in full test runs on a loaded
        /// machine (never when run alone), a call stayed pending past its deadline and its cancelled token, which
        /// gRPC's client should have ended; the cause is not known yet. Which await hung is printed, and the nodes are
        /// checked after the run either way (healthy, in no hostile term, data unchanged, in agreement).
        /// </summary>
        private async Task StepAsync(string stage, Task step, DateTime giveUpAt)
        {
            Stage = stage;
            try
            {
                await step.WaitAsync(TimeSpan.FromTicks(Math.Max(0, (giveUpAt - DateTime.UtcNow).Ticks)));
            }
            catch (TimeoutException)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, $"{ClientGaveUp} at '{stage}': the call was still pending 3 s after its deadline"));
            }
        }

        /// <summary>When a streaming call that has not ended by its 5 s deadline is given up on.</summary>
        private static DateTime GiveUpAt() => DateTime.UtcNow.AddSeconds(8);

        private static readonly long[] Edges = [0, -1, long.MinValue, long.MaxValue, long.MaxValue - 1, int.MaxValue, int.MinValue, 1L << 62];

        public long Number() => Random.Next(4) switch
        {
            0 => Edges[Random.Next(Edges.Length)],
            1 => Random.NextInt64(),
            2 => -Random.NextInt64(1, 1000),
            _ => Random.NextInt64(0, 100),
        };

        /// <summary>A term that no node may take from this sender: stale (for a real member), or hostile (for anyone else).</summary>
        public (string From, long Term) Sender()
        {
            if (Random.Next(3) == 0)
            {
                return (members[Random.Next(members.Length)], Random.NextInt64(-5, Math.Max(1, currentTerm))); // an old leader's stale term
            }
            string from = Random.Next(4) switch { 0 => "", 1 => Text(Random.Next(1, 5000)), 2 => "evil", _ => $"n{Random.Next(4, 1000)}" };
            return (from, Random.Next(3) switch { 0 => HostileTermFloor + Random.NextInt64(0, 1L << 40), 1 => long.MaxValue, _ => Number() });
        }

        public string Text(int length)
        {
            const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789/=,;|\"'<>\u00e9\u4e2d\ud83d\ude00\0";
            var text = new System.Text.StringBuilder(length);
            while (text.Length < length)
            {
                text.Append(Alphabet[Random.Next(Alphabet.Length)]);
            }
            return text.ToString(0, length);
        }

        private string HeaderText(int length) => new(Enumerable.Range(0, length).Select(_ => (char)Random.Next(0x21, 0x7f)).ToArray());

        private ByteString Bytes(int max)
        {
            byte[] bytes = new byte[Random.Next(max)];
            Random.NextBytes(bytes);
            return ByteString.CopyFrom(bytes);
        }

        private Envelope Envelope(string to)
        {
            (string from, long term) = Sender();
            return new Envelope { From = from, To = Random.Next(5) == 0 ? Text(8) : to, Term = term };
        }

        private Entry Entry() => new() { Index = Number(), Term = Number(), Kind = (EntryKind)Random.Next(-1, 5), Data = Bytes(Random.Next(3) == 0 ? 70_000 : 64) };

        public AppendEntriesRequest AppendEntries(string to)
        {
            var request = new AppendEntriesRequest { Envelope = Envelope(to), PrevLogIndex = Number(), PrevLogTerm = Number(), LeaderCommit = Number(), Context = Number() };
            int entries = Random.Next(4) == 0 ? Random.Next(500, 3000) : Random.Next(5);
            for (int i = 0; i < entries; i++)
            {
                request.Entries.Add(Entry());
            }
            return request;
        }

        public RequestVoteRequest RequestVote(string to) => new()
        {
            Envelope = Envelope(to), LastLogIndex = Number(), LastLogTerm = Number(), PreVote = Random.Next(2) == 0, Transfer = Random.Next(2) == 0,
        };

        public InstallSnapshotChunk Chunk(string to, long offset) => new()
        {
            Envelope = Envelope(to),
            Metadata = new SnapshotMetadata { Index = Number(), Term = Number(), Configuration = Bytes(Random.Next(2) == 0 ? 300 : 20) },
            Offset = Random.Next(3) == 0 ? Number() : offset,
            Data = Bytes(Random.Next(3) == 0 ? 200_000 : 500),
            Done = Random.Next(3) == 0,
        };

        public PeerMessage PeerMessage(string to) => Random.Next(9) switch
        {
            0 => new PeerMessage { AppendEntries = AppendEntries(to) },
            1 => new PeerMessage { RequestVote = RequestVote(to) },
            2 => new PeerMessage { InstallSnapshot = Chunk(to, 0) },
            3 => new PeerMessage { TimeoutNow = new TimeoutNowRequest { Envelope = Envelope(to) } },
            4 => new PeerMessage { ReadIndex = new ReadIndexPeerRequest { Envelope = Envelope(to), RequestId = Number() } },
            5 => new PeerMessage { AppendEntriesResponse = new AppendEntriesResponse { Envelope = Envelope(to), Success = true, MatchIndex = Number(), RejectedIndex = Number(), ConflictIndex = Number(), ConflictTerm = Number() } },
            6 => new PeerMessage { RequestVoteResponse = new RequestVoteResponse { Envelope = Envelope(to), Granted = Random.Next(2) == 0, PreVote = Random.Next(2) == 0, Leader = Random.Next(2) == 0 ? "evil" : Text(4) } },
            7 => new PeerMessage { InstallSnapshotResponse = new InstallSnapshotResponse { Envelope = Envelope(to), SnapshotIndex = Number(), NextOffset = Number(), Done = Random.Next(2) == 0 } },
            _ => new PeerMessage(), // an empty oneof
        };

        public async Task PeerUnaryAsync(Peer.PeerClient peer, string to)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(5);
            switch (Random.Next(4))
            {
                case 0: await peer.AppendEntriesAsync(AppendEntries(to), deadline: deadline); break;
                case 1: await peer.RequestVoteAsync(RequestVote(to), deadline: deadline); break;
                case 2: await peer.TimeoutNowAsync(new TimeoutNowRequest { Envelope = Random.Next(4) == 0 ? null : Envelope(to) }, deadline: deadline); break;
                default: await peer.ReadIndexAsync(new ReadIndexPeerRequest { Envelope = Envelope(to), RequestId = Number() }, deadline: deadline); break;
            }
        }

        public async Task PeerStreamAsync(Peer.PeerClient peer, string to)
        {
            var headers = new Metadata();
            if (Random.Next(2) == 0)
            {
                // Header values are printable ASCII by HTTP's rules (the client refuses anything else before sending).
                headers.Add("raft-sender-id", Random.Next(2) == 0 ? $"n{Random.Next(0, 1000)}" : HeaderText(Random.Next(1, 200)));
                headers.Add("raft-sender-address", Random.Next(2) == 0 ? "http://127.0.0.1:1" : HeaderText(30));
            }
            // The token as well as the deadline: once, a write blocked past the deadline (the client's flow control).
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            DateTime giveUp = GiveUpAt();
            using var call = peer.Stream(headers, deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: timeout.Token);
            int batches = Random.Next(1, 4);
            for (int b = 0; b < batches; b++)
            {
                var batch = new PeerBatch();
                int count = Random.Next(1, 20);
                for (int i = 0; i < count; i++)
                {
                    batch.Messages.Add(PeerMessage(to));
                }
                await StepAsync($"peer stream: writing batch {b + 1} of {batches}", call.RequestStream.WriteAsync(batch, timeout.Token), giveUp);
            }
            await StepAsync("peer stream: completing the request stream", call.RequestStream.CompleteAsync(), giveUp);
            await StepAsync("peer stream: awaiting the response", call.ResponseAsync, giveUp);
            Stage = "peer stream: done";
        }

        public async Task SnapshotAsync(Peer.PeerClient peer, string to)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            DateTime giveUp = GiveUpAt();
            using var call = peer.InstallSnapshot(deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: timeout.Token);
            long offset = 0;
            int chunks = Random.Next(1, 5);
            for (int i = 0; i < chunks; i++)
            {
                InstallSnapshotChunk chunk = Chunk(to, offset);
                offset += chunk.Data.Length;
                await StepAsync($"install snapshot: writing chunk {i + 1} of {chunks}", call.RequestStream.WriteAsync(chunk, timeout.Token), giveUp);
            }
            await StepAsync("install snapshot: completing the request stream", call.RequestStream.CompleteAsync(), giveUp);
            await StepAsync("install snapshot: awaiting the response", call.ResponseAsync, giveUp);
            Stage = "install snapshot: done";
        }

        private Session? Session() => Random.Next(4) switch
        {
            0 => null,
            1 => new Session { ClientId = Text(Random.Next(0, 3000)), Sequence = Number() },
            _ => new Session { ClientId = $"fuzz-{Random.Next(5)}", Sequence = Random.NextInt64(1, 4) },
        };

        /// <summary>A key under fuzz/ (what the fuzzer may write), sometimes empty or huge.</summary>
        private string Key() => Random.Next(6) switch { 0 => "", 1 => "fuzz/" + Text(Random.Next(2_000_000)), _ => "fuzz/" + Text(Random.Next(1, 40)) };

        private string Value() => Random.Next(6) == 0 ? Text(Random.Next(2_000_000)) : Text(Random.Next(0, 100));

        public async Task ClientAsync(KeyValue.KeyValueClient keyValue, Admin.AdminClient admin)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(5);
            switch (Random.Next(8))
            {
                case 0: await keyValue.PutAsync(new PutRequest { Session = Session(), Key = Key(), Value = Value() }, deadline: deadline); break;
                case 1: await keyValue.GetAsync(new GetRequest { Key = Random.Next(2) == 0 ? Key() : Text(Random.Next(5000)), Stale = Random.Next(2) == 0 }, deadline: deadline); break;
                case 2: await keyValue.DeleteAsync(new DeleteRequest { Session = Session(), Key = Key() }, deadline: deadline); break;
                case 3:
                {
                    var cas = new CompareAndSwapRequest { Session = Session(), Key = Key() };
                    if (Random.Next(2) == 0)
                    {
                        cas.Expected = Value();
                    }
                    if (Random.Next(2) == 0)
                    {
                        cas.Value = Value();
                    }
                    await keyValue.CompareAndSwapAsync(cas, deadline: deadline);
                    break;
                }
                // The writer's token may not operate: each of these must be refused before it does anything.
                case 4: await admin.RemoveServerAsync(new RemoveServerRequest { Id = members[Random.Next(members.Length)] }, deadline: deadline); break;
                case 5: await admin.AddServerAsync(new AddServerRequest { Id = Text(Random.Next(0, 100)), Address = Random.Next(2) == 0 ? "http://127.0.0.1:1" : Text(50) }, deadline: deadline); break;
                case 6: await admin.SetFaultsAsync(new FaultSpec { Isolate = true, DropRate = double.NaN, MaxDelayMs = -1 }, deadline: deadline); break;
                default: await admin.GetStatusAsync(new StatusRequest(), deadline: deadline); break;
            }
        }

        public (string Method, object?[] Arguments) HubCall() => Random.Next(6) switch
        {
            0 => ("GetState", []),
            1 => ("GetData", []),
            2 => ("TraceMessages", [true]), // a reader may not
            3 => ("GetState", [Text(100), Number()]), // wrong arguments
            4 => ("TraceMessages", [Text(10)]),
            _ => (Text(Random.Next(1, 50)), [Number()]), // no such method
        };

        /// <summary>One frame flagged compressed: gzip of up to 64 MiB of zeros (at most about 64 KB sent).</summary>
        public byte[] GzipBomb()
        {
            using var packed = new MemoryStream();
            using (var gzip = new System.IO.Compression.GZipStream(packed, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
            {
                byte[] zeros = new byte[1024 * 1024];
                for (int i = Random.Next(1, 65); i > 0; i--)
                {
                    gzip.Write(zeros);
                }
            }
            byte[] frame = new byte[5 + packed.Length];
            frame[0] = 1;
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)packed.Length);
            packed.ToArray().CopyTo(frame, 5);
            return frame;
        }

        public byte[] RawBody()
        {
            byte[] payload = new byte[Random.Next(4) == 0 ? Random.Next(100_000) : Random.Next(200)];
            Random.NextBytes(payload);
            return Random.Next(4) switch
            {
                0 => payload, // not even a frame
                1 => Frame(payload, payload.Length + Random.Next(1, 1000)), // announces more than comes
                2 => Frame(payload, payload.Length)[..Math.Max(0, 5 + payload.Length - Random.Next(1, 6))], // truncated
                _ => Frame(payload, payload.Length),
            };
        }

        private byte[] Frame(byte[] payload, int announced)
        {
            byte[] frame = new byte[5 + payload.Length];
            frame[0] = (byte)(Random.Next(8) == 0 ? 1 : 0); // sometimes flagged compressed
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)announced);
            payload.CopyTo(frame, 5);
            return frame;
        }
    }
}
