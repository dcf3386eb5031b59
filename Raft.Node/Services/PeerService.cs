using Grpc.Core;
using Raft.Engine.Consensus;
using Raft.Node.Hosting;
using Raft.Node.Protocol;
using Raft.Node.Transport;
using EngineAppendEntriesResponse = Raft.Engine.Consensus.AppendEntriesResponse;
using EngineInstallSnapshotResponse = Raft.Engine.Consensus.InstallSnapshotResponse;
using EngineRequestVoteResponse = Raft.Engine.Consensus.RequestVoteResponse;

namespace Raft.Node.Services;

/// <summary>
/// Peer traffic into this node. On <c>Stream</c> every message is handed to the engine (answers go back on this node's
/// own stream to the sender); on the unary calls the engine's answer (sent after it persisted what the answer promises)
/// becomes the reply. Malformed messages are refused with INVALID_ARGUMENT and logged.
/// </summary>
public sealed class PeerService(ClusterMember member, Metrics.NodeMetrics metrics, ILogger<PeerService> logger) : Peer.PeerBase
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
        string? sender = context.RequestHeaders.GetValue(GrpcTransport.SenderIdHeader);
        if (sender != null && context.RequestHeaders.GetValue(GrpcTransport.SenderAddressHeader) is { } address)
        {
            member.Transport.LearnAddress(sender, address);
        }
        await foreach (PeerBatch batch in requestStream.ReadAllAsync(context.CancellationToken))
        {
            foreach (PeerMessage item in batch.Messages)
            {
                RaftMessage message = Decode(() => ProtoMapping.FromPeerMessage(item, member.Id));
                if (member.Faults.ShouldDrop(message.From))
                {
                    continue; // cut link: as if it never arrived
                }
                metrics.Received(ProtoMapping.KindOf(message), item.CalculateSize());
                member.Tracer.Received(message);
                member.Node.Receive(message);
            }
        }
        return new PeerAck();
    }

    public override async Task<AppendEntriesReply> AppendEntries(AppendEntriesRequest request, ServerCallContext context)
    {
        var message = Decode(() => ProtoMapping.FromProto(request, member.Id));
        var answer = await ExchangeAsync<EngineAppendEntriesResponse>(message, request.CalculateSize(), context);
        return new AppendEntriesReply { Response = answer is null ? null : ProtoMapping.ToProto(answer) };
    }

    public override async Task<RequestVoteReply> RequestVote(RequestVoteRequest request, ServerCallContext context)
    {
        var message = Decode(() => ProtoMapping.FromProto(request, member.Id));
        var answer = await ExchangeAsync<EngineRequestVoteResponse>(message, request.CalculateSize(), context);
        return new RequestVoteReply { Response = answer is null ? null : ProtoMapping.ToProto(answer) };
    }

    public override async Task<InstallSnapshotReply> InstallSnapshot(IAsyncStreamReader<InstallSnapshotChunk> requestStream, ServerCallContext context)
    {
        EngineInstallSnapshotResponse? last = null;
        await foreach (InstallSnapshotChunk chunk in requestStream.ReadAllAsync(context.CancellationToken))
        {
            var message = Decode(() => ProtoMapping.FromProto(chunk, member.Id));
            last = await ExchangeAsync<EngineInstallSnapshotResponse>(message, chunk.CalculateSize(), context) ?? last;
        }
        return new InstallSnapshotReply { Response = last is null ? null : ProtoMapping.ToProto(last) };
    }

    public override Task<PeerAck> TimeoutNow(TimeoutNowRequest request, ServerCallContext context)
    {
        var message = Decode(() => ProtoMapping.FromProto(request, member.Id));
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
        var message = Decode(() => ProtoMapping.FromProto(request, member.Id));
        var answer = await ExchangeAsync<ReadIndexResponse>(message, request.CalculateSize(), context);
        return new ReadIndexPeerReply { Response = answer is null ? null : ProtoMapping.ToProto(answer) };
    }
}
