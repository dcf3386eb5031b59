using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Raft.Client;
using Raft.Client.Events;
using Raft.Node.Events;
using Raft.Node.Hosting;
using Raft.Protocol;
using Raft.Node.Security;
using Raft.Node.Services;
using Raft.Tests.Node;

namespace Raft.Tests.Security;

/// <summary>Issue 11: the planes kept apart, peers authenticated by certificates, clients and operators by tokens.</summary>
public sealed class SecurityTests
{
    private static readonly Envelope OutsiderEnvelope = new() { From = "evil", To = "n1", Term = 1 };

    [Fact]
    public async Task With_a_peer_endpoint_peers_are_served_only_there_and_clients_are_sent_to_the_leaders_client_address()
    {
        await using var cluster = new NodeTestCluster(3, peerScheme: "http");
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        string follower = cluster.Specs.First(s => s.Id != leader).Id;

        // The cluster works over its peer endpoints; a client that knows only a follower is sent to the leader's client address.
        using (var client = new RaftClient([cluster[follower].GrpcUrl]))
        {
            await client.PutAsync("k", "v");
            Assert.Equal(cluster[leader].GrpcUrl, client.LastServedBy);
        }
        NodeStatus status = await cluster.StatusAsync(follower);
        Assert.Equal(cluster[leader].GrpcUrl, status.LeaderAddress);
        Assert.All(status.Members, m => Assert.Equal(cluster[m.Id].PeerUrl, m.Address));

        // Peer calls on the client endpoint are refused; client and admin calls on the peer endpoint too.
        var onClientPort = await Assert.ThrowsAsync<RpcException>(async () =>
            await cluster.Peer(leader).RequestVoteAsync(new RequestVoteRequest { Envelope = OutsiderEnvelope }));
        Assert.Equal(StatusCode.PermissionDenied, onClientPort.StatusCode);
        Assert.Contains("--peer-url", onClientPort.Status.Detail);

        using var peerChannel = GrpcChannel.ForAddress(cluster[leader].PeerUrl!);
        var onPeerPort = await Assert.ThrowsAsync<RpcException>(async () =>
            await new KeyValue.KeyValueClient(peerChannel).PutAsync(new PutRequest { Key = "x", Value = "y" }));
        Assert.Equal(StatusCode.Unimplemented, onPeerPort.StatusCode);
        var admin = await Assert.ThrowsAsync<RpcException>(async () =>
            await new Admin.AdminClient(peerChannel).RemoveServerAsync(new RemoveServerRequest { Id = follower }));
        Assert.Equal(StatusCode.Unimplemented, admin.StatusCode);
        Assert.Equal(3, (await cluster.StatusAsync(leader)).Members.Count);
    }

    [Fact]
    public async Task A_mutual_TLS_cluster_works_and_refuses_a_stranger_and_a_node_speaking_for_another()
    {
        string folder = Directory.CreateTempSubdirectory("raft-tls-").FullName;
        var ca = new TestCertificates(Path.Combine(folder, "ca"));
        await using var cluster = new NodeTestCluster(3, ca.For(), peerScheme: "https");
        await cluster.StartAllAsync();
        string leader = await cluster.WaitForLeaderAsync();
        using (var client = cluster.Client())
        {
            await client.PutAsync("tls", "works");
            Assert.Equal("works", (await client.GetAsync("tls")).Value);
        }
        string follower = cluster.Specs.First(s => s.Id != leader).Id;
        NodeStatus before = await cluster.StatusAsync(follower);

        // A certificate from another CA: the TLS handshake fails, nothing reaches the node.
        var stranger = new TestCertificates(Path.Combine(folder, "other"), "another-ca");
        stranger.Issue(leader); // even one that names the leader
        using (GrpcChannel channel = PeerChannel(cluster[follower].PeerUrl!, stranger.Load(leader)))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await new Peer.PeerClient(channel).AppendEntriesAsync(
                new AppendEntriesRequest { Envelope = new Envelope { From = leader, To = follower, Term = before.Term + 100 } }));
            AssertRefusedByTls(refused);
        }
        // No certificate at all: the same.
        using (GrpcChannel channel = PeerChannel(cluster[follower].PeerUrl!, null))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await new Peer.PeerClient(channel).RequestVoteAsync(
                new RequestVoteRequest { Envelope = new Envelope { From = leader, To = follower, Term = before.Term + 100 } }));
            AssertRefusedByTls(refused);
        }
        // A real member's certificate used to speak as another member: refused by name.
        string third = cluster.Specs.First(s => s.Id != leader && s.Id != follower).Id;
        using (GrpcChannel channel = PeerChannel(cluster[follower].PeerUrl!, ca.Load(third)))
        {
            var refused = await Assert.ThrowsAsync<RpcException>(async () => await new Peer.PeerClient(channel).AppendEntriesAsync(
                new AppendEntriesRequest { Envelope = new Envelope { From = leader, To = follower, Term = before.Term + 100 } }));
            Assert.Equal(StatusCode.PermissionDenied, refused.StatusCode);
            Assert.Contains($"cannot speak as {leader}", refused.Status.Detail);
        }
        NodeStatus after = await cluster.StatusAsync(follower);
        Assert.Equal(before.Term, after.Term);
        Assert.Equal(leader, after.LeaderId);
        string metrics = await new HttpClient().GetStringAsync(cluster[follower].HttpUrl + "/metrics");
        Assert.Matches("raft_access_refused_total\\{[^}]*reason=\"peer-identity\"\\} [1-9]", metrics);
    }

    [Fact]
    public void A_node_refuses_to_start_with_a_certificate_that_is_not_its_own_or_not_of_its_CA()
    {
        string folder = Directory.CreateTempSubdirectory("raft-tls-").FullName;
        var ca = new TestCertificates(Path.Combine(folder, "ca"));
        var other = new TestCertificates(Path.Combine(folder, "other"), "another-ca");
        (string n2Certificate, string n2Key) = ca.Issue("n2");
        (string strangerCertificate, string strangerKey) = other.Issue("n1");
        NodeOptions Options(string certificate, string key) => new()
        {
            Id = "n1", GrpcUrl = "http://127.0.0.1:7001", PeerUrl = "https://127.0.0.1:7101", HttpUrl = "http://127.0.0.1:8001",
            PeerCertificate = certificate, PeerKey = key, PeerCa = ca.CaFile,
        };
        var wrongId = Assert.Throws<FormatException>(() => PeerCertificates.Load(Options(n2Certificate, n2Key)));
        Assert.Contains("is for 'n2', not for this node (n1)", wrongId.Message);
        var wrongCa = Assert.Throws<FormatException>(() => PeerCertificates.Load(Options(strangerCertificate, strangerKey)));
        Assert.Contains("is not accepted by --peer-ca", wrongCa.Message);

        var plain = Options(n2Certificate, n2Key);
        plain.PeerUrl = "http://127.0.0.1:7101";
        Assert.Contains("needs an https --peer-url", Assert.Throws<FormatException>(plain.Validate).Message);
        var partial = Options(n2Certificate, n2Key);
        partial.PeerKey = null;
        Assert.Contains("all three of --peer-cert, --peer-key and --peer-ca", Assert.Throws<FormatException>(partial.Validate).Message);
        var samePort = new NodeOptions { GrpcUrl = "http://127.0.0.1:7001", PeerUrl = "http://127.0.0.1:7001" };
        Assert.Contains("a port of its own", Assert.Throws<FormatException>(samePort.Validate).Message);
    }

    private const string ReaderToken = "reader-token-0123456789";
    private const string WriterToken = "writer-token-0123456789";
    private const string OperatorToken = "operator-token-0123456789";

    private static Action<NodeOptions> WithTokens(string folder)
    {
        string file = Path.Combine(folder, "tokens");
        File.WriteAllLines(file, ["# name role token", $"dash reader {ReaderToken}", $"app writer {WriterToken}", $"ops operator {OperatorToken}"]);
        return options => options.TokensFile = file;
    }

    [Fact]
    public async Task A_compressed_request_is_never_inflated_and_one_without_a_token_is_refused_before_its_body_is_read()
    {
        // Found by a hostile user: a 1 MB gzip body that inflates to 1 GiB, sent to Put with no token, was inflated in
        // full before authentication (memory 119 MB to 3.2 GB); six of them cost the leader its leadership.
        string folder = Directory.CreateTempSubdirectory("raft-gzip-").FullName;
        await using var cluster = new NodeTestCluster(1, WithTokens(folder));
        await cluster.StartAllAsync();
        string leader = await LeaderAsync(cluster);
        string endpoint = cluster[leader].GrpcUrl;
        var bomb = new PutRequest { Key = "bomb", Value = new string('a', 64 * 1024 * 1024) }; // about 64 KB as gzip
        var gzip = new Metadata { { "grpc-internal-encoding-request", "gzip" } }; // Grpc.Net.Client compresses the message

        async Task<RpcException> PutCompressed(string? token)
        {
            using var channel = GrpcChannel.ForAddress(endpoint, ChannelOptions.For(endpoint, token, null));
            return await Assert.ThrowsAsync<RpcException>(async () => await new KeyValue.KeyValueClient(channel).PutAsync(bomb, gzip));
        }

        RpcException anonymous = await PutCompressed(null);
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode); // before: ResourceExhausted, after inflating it
        RpcException writer = await PutCompressed(WriterToken);
        Assert.Equal(StatusCode.Unimplemented, writer.StatusCode);
        Assert.Contains("no compressed requests", writer.Status.Detail, StringComparison.Ordinal);

        // Peer streams are read by the gRPC server itself: it knows no compression either. (Sent raw: a client stream
        // of Grpc.Net.Client does not compress.)
        var inflated = new InstallSnapshotChunk { Envelope = new Envelope { From = "evil", To = leader, Term = 1 }, Data = Google.Protobuf.ByteString.CopyFrom(new byte[8 * 1024 * 1024]) };
        using (var gzipped = new MemoryStream())
        {
            using (var zip = new System.IO.Compression.GZipStream(gzipped, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
            {
                zip.Write(inflated.ToByteArray());
            }
            byte[] frame = new byte[5 + gzipped.Length];
            frame[0] = 1;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)gzipped.Length);
            gzipped.ToArray().CopyTo(frame, 5);
            using var http = new HttpClient();
            using var request = new HttpRequestMessage(HttpMethod.Post, $"{cluster[leader].PeerAddress}/raft.v1.Peer/InstallSnapshot") { Content = new ByteArrayContent(frame), Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
            request.Headers.Add("grpc-encoding", "gzip");
            request.Headers.TE.ParseAdd("trailers");
            using HttpResponseMessage response = await http.SendAsync(request);
            await response.Content.ReadAsByteArrayAsync();
            string? status = response.Headers.TryGetValues("grpc-status", out var inHeaders) ? inHeaders.Single()
                : response.TrailingHeaders.TryGetValues("grpc-status", out var inTrailers) ? inTrailers.Single() : null;
            Assert.True(((int)StatusCode.Unimplemented).ToString(System.Globalization.CultureInfo.InvariantCulture) == status, $"{response.StatusCode} {response.Headers} {response.TrailingHeaders}");
        }

        using var client = new RaftClient(cluster.Endpoints) { Token = WriterToken };
        await client.PutAsync("still", "works");
        Assert.False((await client.GetAsync("bomb")).Found);
    }

    [Fact]
    public async Task Each_credential_path_is_refused_or_accepted_by_role_on_grpc_and_on_the_hub()
    {
        string folder = Directory.CreateTempSubdirectory("raft-tokens-").FullName;
        await using var cluster = new NodeTestCluster(3, WithTokens(folder));
        await cluster.StartAllAsync();
        string leader = await LeaderAsync(cluster);
        string endpoint = cluster[leader].GrpcUrl;

        async Task<StatusCode> Call(string? token, Func<GrpcChannel, Task> call)
        {
            using var channel = GrpcChannel.ForAddress(endpoint, ChannelOptions.For(endpoint, token, null));
            try
            {
                await call(channel);
                return StatusCode.OK;
            }
            catch (RpcException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Status.Detail), "a refusal says why");
                return e.StatusCode;
            }
        }
        Task Put(GrpcChannel c) => new KeyValue.KeyValueClient(c).PutAsync(new PutRequest { Key = "k", Value = "v" }).ResponseAsync;
        Task Get(GrpcChannel c) => new KeyValue.KeyValueClient(c).GetAsync(new GetRequest { Key = "k" }).ResponseAsync;
        Task Status(GrpcChannel c) => new Admin.AdminClient(c).GetStatusAsync(new StatusRequest()).ResponseAsync;
        Task Snapshot(GrpcChannel c) => new Admin.AdminClient(c).TakeSnapshotAsync(new TakeSnapshotRequest()).ResponseAsync;
        Task Faults(GrpcChannel c) => new Admin.AdminClient(c).HealAsync(new HealRequest()).ResponseAsync;

        Assert.Equal(StatusCode.Unauthenticated, await Call(null, Get));
        Assert.Equal(StatusCode.Unauthenticated, await Call("not-a-token-of-this-cluster", Status));
        Assert.Equal(StatusCode.OK, await Call(ReaderToken, Status));
        Assert.Equal(StatusCode.PermissionDenied, await Call(ReaderToken, Put));
        Assert.Equal(StatusCode.OK, await Call(WriterToken, Put));
        Assert.Equal(StatusCode.OK, await Call(ReaderToken, Get));
        Assert.Equal(StatusCode.PermissionDenied, await Call(WriterToken, Snapshot));
        Assert.Equal(StatusCode.PermissionDenied, await Call(WriterToken, Faults));
        Assert.Equal(StatusCode.OK, await Call(OperatorToken, Snapshot));
        Assert.Equal(StatusCode.OK, await Call(OperatorToken, Faults));
        Assert.Equal(StatusCode.OK, await Call(OperatorToken, Put));

        // The message says what was needed and what the token had.
        using (var channel = GrpcChannel.ForAddress(endpoint, ChannelOptions.For(endpoint, WriterToken, null)))
        {
            var denied = await Assert.ThrowsAsync<RpcException>(async () => await new Admin.AdminClient(channel).RemoveServerAsync(new RemoveServerRequest { Id = leader }));
            Assert.Equal("raft.v1.Admin/RemoveServer needs the role operator; the token of app is writer", denied.Status.Detail);
        }

        // The hub: no token is a 401 at connect; a reader may watch and read the data, not switch tracing on.
        string hubUrl = cluster[leader].HttpUrl + HubContract.Path;
        await using (HubConnection anonymous = new HubConnectionBuilder().WithUrl(hubUrl).Build())
        {
            var refused = await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.StartAsync());
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        await using (HubConnection reader = Hub(hubUrl, ReaderToken))
        {
            await reader.StartAsync();
            Assert.Equal(leader, (await reader.InvokeAsync<FullState>("GetState")).Status.Id);
            Assert.Contains(await reader.InvokeAsync<List<KeyValuePair<string, string>>>("GetData"), p => p.Key == "k");
            var tracing = await Assert.ThrowsAsync<HubException>(() => reader.InvokeAsync("TraceMessages", true));
            Assert.Contains("needs the role operator", tracing.Message);
            Assert.False(cluster.Member(leader).Tracer.Enabled);
        }
        await using (HubConnection operatorHub = Hub(hubUrl, OperatorToken))
        {
            await operatorHub.StartAsync();
            await operatorHub.InvokeAsync("TraceMessages", true);
            Assert.True(cluster.Member(leader).Tracer.Enabled);
            await operatorHub.InvokeAsync("TraceMessages", false);
        }
        // Refusals are counted (and logged).
        string metrics = await new HttpClient().GetStringAsync(cluster[leader].HttpUrl + "/metrics");
        Assert.Matches("raft_access_refused_total\\{[^}]*reason=\"authentication\"\\} [1-9]", metrics);
        Assert.Matches("raft_access_refused_total\\{[^}]*reason=\"permission\"\\} [1-9]", metrics);
    }

    [Fact]
    public async Task The_command_line_sends_its_token_and_exits_non_zero_when_refused()
    {
        string folder = Directory.CreateTempSubdirectory("raft-tokens-").FullName;
        await using var cluster = new NodeTestCluster(3, WithTokens(folder));
        await cluster.StartAllAsync();
        string leader = await LeaderAsync(cluster);
        string endpoints = string.Join(",", cluster.Endpoints);
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(2, await Cli.RunAsync(["put", "a", "1", "--endpoints", endpoints], output, error));
        Assert.Contains("Unauthenticated", error.ToString());
        Assert.Equal(2, await Cli.RunAsync(["put", "a", "1", "--endpoints", endpoints, "--token", ReaderToken], output, error));
        Assert.Contains("PermissionDenied", error.ToString());
        Assert.Equal(0, await Cli.RunAsync(["put", "a", "1", "--endpoints", endpoints, "--token", WriterToken], output, error));
        Assert.Equal(0, await Cli.RunAsync(["get", "a", "--endpoints", endpoints, "--token", ReaderToken], output, error));
        Assert.Contains("1", output.ToString());
        Assert.NotNull(leader);
    }

    [Fact]
    public void A_tokens_file_with_a_mistake_is_refused_with_its_line()
    {
        Assert.Contains("line 2: expected 'name role token'", Assert.Throws<FormatException>(() =>
            AccessTokens.Parse(["a reader 0123456789abcdef", "b writer"], "tokens")).Message);
        Assert.Contains("the role 'admin' is not reader, writer or operator", Assert.Throws<FormatException>(() =>
            AccessTokens.Parse(["a admin 0123456789abcdef"], "tokens")).Message);
        Assert.Contains("shorter than 16", Assert.Throws<FormatException>(() => AccessTokens.Parse(["a reader short"], "tokens")).Message);
        Assert.Contains("also another name's", Assert.Throws<FormatException>(() =>
            AccessTokens.Parse(["a reader 0123456789abcdef", "b writer 0123456789abcdef"], "tokens")).Message);
        AccessTokens tokens = AccessTokens.Parse(["  # comment", "", "ops operator 0123456789abcdef # trailing"], "tokens");
        Assert.Equal(new Caller("ops", AccessRole.Operator), tokens.Authenticate("0123456789abcdef", out _));
        Assert.Null(tokens.Authenticate("0123456789abcdeF", out string? problem));
        Assert.Contains("not one of this node's tokens", problem);
        Assert.Equal(AccessTokens.Anonymous, AccessTokens.None.Authenticate(null, out _));
    }

    [Fact]
    public void Every_client_and_admin_method_and_every_hub_method_has_a_role()
    {
        var methods = RaftReflection.Descriptor.Services.Where(s => s.Name != "Peer").SelectMany(s => s.Methods.Select(m => $"/{s.FullName}/{m.Name}"));
        Assert.Equal(methods.Order(), AccessControl.GrpcMethods.Keys.Order());
        var hubMethods = typeof(RaftHub).GetMethods(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.DeclaredOnly)
            .Where(m => !m.IsSpecialName && m.Name is not ("OnConnectedAsync" or "OnDisconnectedAsync")).Select(m => m.Name);
        Assert.Equal(hubMethods.Order(), AccessControl.HubMethods.Keys.Order());
    }

    private static HubConnection Hub(string url, string token) =>
        new HubConnectionBuilder().WithUrl(url, o => o.AccessTokenProvider = () => Task.FromResult<string?>(token)).Build();

    private static async Task<string> LeaderAsync(NodeTestCluster cluster)
    {
        // Status needs a reader's token here: ask each node's engine directly.
        string? found = null;
        await NodeTestCluster.WaitUntilAsync(() =>
        {
            var leaders = cluster.Specs.Select(s => cluster.Member(s.Id).Node.Status).Where(s => s.Role == Raft.Engine.Consensus.Role.Leader).ToList();
            found = leaders.Count == 1 ? leaders[0].Id : null;
            return Task.FromResult(found != null);
        }, what: "a leader");
        return found!;
    }

    /// <summary>
    /// Refused in the TLS handshake. With TLS 1.3 the server's verdict on the client certificate can arrive after the
    /// client sent its request, so the client reports it as Unavailable or as Internal (the connection broke mid-call).
    /// </summary>
    private static void AssertRefusedByTls(RpcException refused) =>
        Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, $"not a transport refusal: {refused.Status}");

    private static GrpcChannel PeerChannel(string address, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2) };
        // The server's side is under test: any node certificate will do for the caller.
        handler.SslOptions.RemoteCertificateValidationCallback = (_, server, _, _) => server?.Subject.StartsWith("CN=n", StringComparison.Ordinal) == true;
        if (certificate != null)
        {
            handler.SslOptions.ClientCertificates = [certificate];
            handler.SslOptions.LocalCertificateSelectionCallback = (_, _, _, _, _) => certificate;
        }
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
    }
}
