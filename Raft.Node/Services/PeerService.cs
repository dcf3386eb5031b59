using Grpc.Core;
using Raft.Engine.Consensus;
using Raft.Node.Hosting;
using Raft.Protocol;
using Raft.Node.Transport;
using EngineAppendEntriesResponse = Raft.Engine.Consensus.AppendEntriesResponse;
using EngineInstallSnapshotResponse = Raft.Engine.Consensus.InstallSnapshotResponse;
using EngineRequestVoteResponse = Raft.Engine.Consensus.RequestVoteResponse;

namespace Raft.Node.Services;

/// <summary>
/// Peer traffic into this node. On <c>Stream</c> every message is handed to the engine (answers go back on this node's
/// own stream to the sender); on the unary calls the engine's answer (sent after it persisted what the answer promises)
/// becomes the reply. Malformed messages are refused with INVALID_ARGUMENT and logged. With mutual TLS, a message must
/// come from the node its connection's certificate names: anything else is refused with PERMISSION_DENIED, logged and
/// counted (a node holding n2's certificate cannot speak as n3). When the node stops, its incoming streams end at once:
/// peers never end them, and Kestrel would otherwise wait its whole shutdown timeout for them.
/// </summary>
public sealed class PeerService(ClusterMember member, Metrics.NodeMetrics metrics, IHostApplicationLifetime lifetime, ILogger<PeerService> logger) : Peer.PeerBase
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(2);

    private T Decode<T>(Func<T> decode) where T : RaftMessage
    {
        try
        {
            return decode();
        }
        catch (FormatException e)
        {
            logger.LogWarning("rejected a malformed peer message: {Error}", e.Message);
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"malformed peer message: {e.Message}"));
        }
    }

    /// <summary>The node id the caller's certificate names, or null when peers do not authenticate (no mutual TLS).</summary>
    private string? AuthenticatedPeer(ServerCallContext context)
    {
        if (member.Certificates is null)
        {
            return null;
        }
        return context.GetHttpContext().Connection.ClientCertificate is { } certificate
            ? Security.PeerCertificates.IdOf(certificate)
            : throw Refuse(context, "(none)", "no client certificate");
    }

    private RpcException Refuse(ServerCallContext context, string holder, string claim)
    {
        metrics.AccessRefused("peer-identity");
        logger.LogWarning("refused peer traffic from {Remote} with the certificate of {Holder}: {Claim}", context.Peer, holder, claim);
        return new RpcException(new Status(StatusCode.PermissionDenied, $"the connection's certificate is {holder}'s; {claim}"));
    }

    /// <summary>A message must be from the certificate's holder.</summary>
    private T Authentic<T>(T message, string? authenticated, ServerCallContext context) where T : RaftMessage =>
        authenticated is null || message.From == authenticated ? message : throw Refuse(context, authenticated, $"it cannot speak as {message.From}");

    /// <summary>Delivers a request and waits for the answer of type <typeparamref name="TAnswer"/>; null when dropped or unanswered.</summary>
    private async Task<TAnswer?> ExchangeAsync<TAnswer>(RaftMessage request, int bytes, ServerCallContext context) where TAnswer : RaftMessage
    {
        if (member.Faults.ShouldDrop(request.From))
        {
            return null; // cut link: as if it never arrived
        }
        metrics.Received(ProtoMapping.KindOf(request), bytes);
        member.Tracer.Received(request);
        TaskCompletionSource<RaftMessage> waiter = member.Replies.Expect<TAnswer>(request.From);
        member.Node.Receive(request);
        return (TAnswer?)await ReplyCorrelator.WaitAsync(waiter, AnswerTimeout, context.CancellationToken);
    }

    /// <summary>A peer's stream of batches: every message goes to the engine; its answers leave on this node's own stream.</summary>
    public override async Task<PeerAck> Stream(IAsyncStreamReader<PeerBatch> requestStream, ServerCallContext context)
    {
        string? authenticated = AuthenticatedPeer(context);
        string? sender = context.RequestHeaders.GetValue(GrpcTransport.SenderIdHeader);
        if (authenticated != null && sender != null && sender != authenticated)
        {
            throw Refuse(context, authenticated, $"it cannot speak as {sender}");
        }
        if (sender != null && context.RequestHeaders.GetValue(GrpcTransport.SenderAddressHeader) is { } address)
        {
            member.Transport.LearnAddress(sender, address);
        }
        if (sender != null && context.RequestHeaders.GetValue(GrpcTransport.SenderClientAddressHeader) is { } clientAddress)
        {
            member.Transport.LearnClientAddress(sender, clientAddress);
        }
        if (sender != null)
        {
            member.Transport.PeerIsUp(sender);
        }
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        try
        {
            await foreach (PeerBatch batch in requestStream.ReadAllAsync(reading.Token))
            {
                foreach (PeerMessage item in batch.Messages)
                {
                    RaftMessage message = Authentic(Decode(() => ProtoMapping.FromPeerMessage(item, member.Id)), authenticated, context);
                    if (member.Faults.ShouldDrop(message.From))
                    {
                        continue; // cut link: as if it never arrived
                    }
                    metrics.Received(ProtoMapping.KindOf(message), item.CalculateSize());
                    member.Tracer.Received(message);
                    member.Node.Receive(message);
                }
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // this node stops: the sender reconnects elsewhere or later
        }
        return new PeerAck();
    }

    public override async Task<AppendEntriesReply> AppendEntries(AppendEntriesRequest request, ServerCallContext context)
    {
        var message = Authentic(Decode(() => ProtoMapping.FromProto(request, member.Id)), AuthenticatedPeer(context), context);
        var answer = await ExchangeAsync<EngineAppendEntriesResponse>(message, request.CalculateSize(), context);
        return new AppendEntriesReply { Response = answer is null ? null : ProtoMapping.ToProto(answer) };
    }

    public override async Task<RequestVoteReply> RequestVote(RequestVoteRequest request, ServerCallContext context)
    {
        var message = Authentic(Decode(() => ProtoMapping.FromProto(request, member.Id)), AuthenticatedPeer(context), context);
        var answer = await ExchangeAsync<EngineRequestVoteResponse>(message, request.CalculateSize(), context);
        return new RequestVoteReply { Response = answer is null ? null : ProtoMapping.ToProto(answer) };
    }

    public override async Task<InstallSnapshotReply> InstallSnapshot(IAsyncStreamReader<InstallSnapshotChunk> requestStream, ServerCallContext context)
    {
        EngineInstallSnapshotResponse? last = null;
        string? authenticated = AuthenticatedPeer(context);
        await foreach (InstallSnapshotChunk chunk in requestStream.ReadAllAsync(context.CancellationToken))
        {
            var message = Authentic(Decode(() => ProtoMapping.FromProto(chunk, member.Id)), authenticated, context);
            last = await ExchangeAsync<EngineInstallSnapshotResponse>(message, chunk.CalculateSize(), context) ?? last;
        }
        return new InstallSnapshotReply { Response = last is null ? null : ProtoMapping.ToProto(last) };
    }

    public override Task<PeerAck> TimeoutNow(TimeoutNowRequest request, ServerCallContext context)
    {
        var message = Authentic(Decode(() => ProtoMapping.FromProto(request, member.Id)), AuthenticatedPeer(context), context);
        if (!member.Faults.ShouldDrop(message.From))
        {
            metrics.Received(ProtoMapping.KindOf(message), request.CalculateSize());
            member.Tracer.Received(message);
            member.Node.Receive(message);
        }
        return Task.FromResult(new PeerAck());
    }

    public override async Task<ReadIndexPeerReply> ReadIndex(ReadIndexPeerRequest request, ServerCallContext context)
    {
        var message = Authentic(Decode(() => ProtoMapping.FromProto(request, member.Id)), AuthenticatedPeer(context), context);
        var answer = await ExchangeAsync<ReadIndexResponse>(message, request.CalculateSize(), context);
        return new ReadIndexPeerReply { Response = answer is null ? null : ProtoMapping.ToProto(answer) };
    }
}
