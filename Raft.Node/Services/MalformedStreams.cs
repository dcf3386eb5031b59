using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Raft.Node.Services;

/// <summary>
/// The streaming half of <see cref="MalformedRequests"/>: a client stream whose bytes are not messages of its type (a
/// frame cut short, bytes that do not parse, a frame flagged compressed without an encoding) is the caller's mistake and
/// ends with INVALID_ARGUMENT. Without it the gRPC server's reader throws while the handler reads, and the call ends as
/// INTERNAL or UNKNOWN, which says the node is broken. Checked per message, as the stream arrives, so a long peer stream
/// is never buffered.
/// </summary>
public sealed class MalformedStreams(ILogger<MalformedStreams> logger) : Interceptor
{
    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
        => continuation(new CheckedReader<TRequest>(requestStream, context, logger), context);

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        => continuation(new CheckedReader<TRequest>(requestStream, context, logger), responseStream, context);

    private sealed class CheckedReader<T>(IAsyncStreamReader<T> inner, ServerCallContext context, ILogger logger) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            try
            {
                return await inner.MoveNext(cancellationToken);
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Internal && !context.CancellationToken.IsCancellationRequested)
            {
                throw Refused(e.Status.Detail);
            }
            catch (Exception e) when (e is InvalidProtocolBufferException or InvalidDataException) // bytes that do not parse; a frame flag other than 0 or 1
            {
                throw Refused(e.Message);
            }
        }

        private RpcException Refused(string problem)
        {
            logger.LogWarning("{Method} from {Peer}: a malformed request stream: {Problem}", context.Method, context.Peer, problem);
            return new RpcException(new Status(StatusCode.InvalidArgument, $"the request stream is not a valid stream of {typeof(T).Name}: {problem}"));
        }
    }
}
