using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Raft.Node.Protocol;

namespace Raft.Node.Services;

/// <summary>
/// Gives a unary request whose bytes are not the message it should be (truncated, an endless varint, a string that is
/// not UTF-8) INVALID_ARGUMENT with what is wrong, and logs one line. Without it the gRPC server fails such a request
/// while reading it, before any interceptor or handler, as UNKNOWN "Exception was thrown by handler" with a stack trace
/// in the log per request. Streaming calls (peer traffic) are left to the server.
/// </summary>
public sealed class MalformedRequests(RequestDelegate next, ILogger<MalformedRequests> logger)
{
    private static readonly Dictionary<string, MessageDescriptor> Inputs = RaftReflection.Descriptor.Services
        .SelectMany(service => service.Methods.Where(m => !m.IsClientStreaming).Select(m => ($"/{service.FullName}/{m.Name}", m.InputType)))
        .ToDictionary(p => p.Item1, p => p.InputType, StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context)
    {
        if (!Inputs.TryGetValue(context.Request.Path.Value ?? "", out MessageDescriptor? input)
            || context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await next(context);
            return;
        }
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        if (Problem(body.GetBuffer().AsMemory(0, (int)body.Length), input) is { } problem)
        {
            logger.LogWarning("{Path} from {Remote}: {Problem}", context.Request.Path, context.Connection.RemoteIpAddress, problem);
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "application/grpc";
            context.Response.Headers["grpc-status"] = "3"; // INVALID_ARGUMENT, as a trailers-only response
            context.Response.Headers["grpc-message"] = Uri.EscapeDataString(problem);
            return;
        }
        body.Position = 0;
        context.Request.Body = body; // the server reads the same bytes again
        await next(context);
    }

    /// <summary>Null when every length-prefixed message in the body parses as <paramref name="input"/>.</summary>
    private static string? Problem(ReadOnlyMemory<byte> body, MessageDescriptor input)
    {
        while (body.Length > 0)
        {
            if (body.Length < 5)
            {
                return $"the request is not a valid {input.FullName}: a truncated gRPC frame";
            }
            bool compressed = body.Span[0] != 0;
            uint length = BinaryPrimitives.ReadUInt32BigEndian(body.Span[1..5]);
            if (length > body.Length - 5)
            {
                return $"the request is not a valid {input.FullName}: the frame announces {length} bytes, {body.Length - 5} came";
            }
            if (!compressed)
            {
                try
                {
                    input.Parser.ParseFrom(body.Slice(5, (int)length).Span);
                }
                catch (InvalidProtocolBufferException e)
                {
                    return $"the request is not a valid {input.FullName}: {e.Message}";
                }
            }
            body = body[(5 + (int)length)..];
        }
        return null;
    }
}
