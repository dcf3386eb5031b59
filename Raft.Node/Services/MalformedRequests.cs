using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Raft.Protocol;
using Raft.Node.Security;

namespace Raft.Node.Services;

/// <summary>
/// Gives a unary request whose bytes are not the message it should be (truncated, an endless varint, a string that is
/// not UTF-8) INVALID_ARGUMENT with what is wrong, and logs one line. Without it the gRPC server fails such a request
/// while reading it, before any interceptor or handler, as UNKNOWN "Exception was thrown by handler" with a stack trace
/// in the log per request; a frame flagged compressed without an encoding would be INTERNAL. Client streams (peer
/// traffic) are checked message by message by <see cref="MalformedStreams"/> instead, never buffered.
/// <para>
/// Compressed requests are refused on every gRPC method before anything is read (UNIMPLEMENTED, as gRPC answers an
/// encoding it does not support): a node's clients never compress, and a small gzip body can inflate to gigabytes. Nothing
/// of a unary body is read before its caller is authenticated (a client or admin method needs a token when the node has
/// tokens), and no more of it than one message of the largest size the node accepts.
/// </para>
/// </summary>
public sealed class MalformedRequests(RequestDelegate next, IOptions<GrpcServiceOptions> grpc, AccessControl access, ILogger<MalformedRequests> logger)
{
    /// <summary>The largest body read here: one message as large as the gRPC server accepts, and its frame header.</summary>
    private readonly long maxBody = (grpc.Value.MaxReceiveMessageSize ?? 4 * 1024 * 1024) + 5L;

    private static readonly Dictionary<string, MessageDescriptor> Inputs = RaftReflection.Descriptor.Services
        .SelectMany(service => service.Methods.Where(m => !m.IsClientStreaming).Select(m => ($"/{service.FullName}/{m.Name}", m.InputType)))
        .ToDictionary(p => p.Item1, p => p.InputType, StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context)
    {
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await next(context);
            return;
        }
        // Peer methods are guarded by their endpoint and certificates (PlaneGuard); every other needs its role first.
        string path = context.Request.Path.Value ?? "";
        if (path.StartsWith("/raft.v1.", StringComparison.Ordinal) && !path.StartsWith("/raft.v1.Peer/", StringComparison.Ordinal)
            && access.Check(context, path.TrimStart('/'), AccessControl.GrpcMethods.GetValueOrDefault(path, AccessRole.Operator),
                out AccessControl.Refusal? refusal) is null)
        {
            Refuse(context, refusal!.ToRpcException().StatusCode, refusal.Message, logged: true);
            return;
        }
        string encoding = context.Request.Headers["grpc-encoding"].FirstOrDefault() ?? "identity";
        if (encoding != "identity")
        {
            // Every gRPC method, streams too: the gRPC server itself would inflate a message without bound.
            context.Response.Headers["grpc-accept-encoding"] = "identity";
            Refuse(context, StatusCode.Unimplemented, $"this node accepts no compressed requests (grpc-encoding {encoding}): send them uncompressed");
            return;
        }
        if (!Inputs.TryGetValue(path, out MessageDescriptor? input))
        {
            await next(context);
            return;
        }
        // Kestrel's own body limit would answer HTTP 413, which a gRPC client reports as UNKNOWN; the gRPC limit is ours.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }
        using var body = new MemoryStream();
        if (!await CopyAtMostAsync(context.Request.Body, body, maxBody, context.RequestAborted))
        {
            Refuse(context, StatusCode.ResourceExhausted, $"the request is larger than the {maxBody - 5} bytes a node accepts in one message");
            return;
        }
        if (Problem(body.GetBuffer().AsMemory(0, (int)body.Length), input) is { } problem)
        {
            Refuse(context, problem.Code, problem.Message);
            return;
        }
        body.Position = 0;
        context.Request.Body = body; // the server reads the same bytes again
        await next(context);
    }

    private void Refuse(HttpContext context, StatusCode code, string problem, bool logged = false)
    {
        if (!logged)
        {
            logger.LogWarning("{Path} from {Remote}: {Problem}", context.Request.Path, context.Connection.RemoteIpAddress, problem);
        }
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture); // trailers-only
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(problem);
    }

    private static async Task<bool> CopyAtMostAsync(Stream from, MemoryStream to, long max, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[64 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (to.Length + read > max)
            {
                return false;
            }
            to.Write(buffer, 0, read);
        }
        return true;
    }

    private sealed record BodyProblem(StatusCode Code, string Message);

    private static BodyProblem Invalid(string message) => new(StatusCode.InvalidArgument, message);

    /// <summary>Null when every length-prefixed message in the body is a plain <paramref name="input"/>.</summary>
    private static BodyProblem? Problem(ReadOnlyMemory<byte> body, MessageDescriptor input)
    {
        while (body.Length > 0)
        {
            if (body.Length < 5)
            {
                return Invalid($"the request is not a valid {input.FullName}: a truncated gRPC frame");
            }
            if (body.Span[0] > 1)
            {
                return Invalid($"the request's frame has the flag {body.Span[0]}: only 0 (plain) and 1 (compressed) exist");
            }
            if (body.Span[0] == 1)
            {
                return Invalid("the request's frame is flagged compressed but the request names no grpc-encoding");
            }
            uint length = BinaryPrimitives.ReadUInt32BigEndian(body.Span[1..5]);
            if (length > body.Length - 5)
            {
                return Invalid($"the request is not a valid {input.FullName}: the frame announces {length} bytes, {body.Length - 5} came");
            }
            try
            {
                input.Parser.ParseFrom(body.Span.Slice(5, (int)length));
            }
            catch (InvalidProtocolBufferException e)
            {
                return Invalid($"the request is not a valid {input.FullName}: {e.Message}");
            }
            body = body[(5 + (int)length)..];
        }
        return null;
    }
}
