using Raft.Node.Hosting;

namespace Raft.Node.Security;

/// <summary>
/// Keeps the planes apart when the node has a peer endpoint of its own (<c>--peer-url</c>): peer calls are served only
/// there, and nothing else is. Decided by the port the connection arrived on, not by the Host header a caller chooses.
/// Refusals are gRPC statuses (PERMISSION_DENIED, UNIMPLEMENTED) with the reason, as trailers-only responses.
/// </summary>
public sealed class PlaneGuard(RequestDelegate next, NodeOptions options, Metrics.NodeMetrics metrics, ILogger<PlaneGuard> logger)
{
    public const string PeerServicePrefix = "/raft.v1.Peer/";
    private readonly int? _peerPort = options.SeparatePeerPlane ? new Uri(options.PeerUrl!).Port : null;

    public Task InvokeAsync(HttpContext context)
    {
        if (_peerPort is not { } peerPort)
        {
            return next(context);
        }
        bool onPeerPort = context.Connection.LocalPort == peerPort;
        bool peerCall = context.Request.Path.StartsWithSegments(PeerServicePrefix.TrimEnd('/'));
        if (onPeerPort == peerCall)
        {
            return next(context);
        }
        metrics.AccessRefused("plane");
        logger.LogWarning("refused {Path} from {Remote} on port {Port}: wrong endpoint", context.Request.Path, context.Connection.RemoteIpAddress, context.Connection.LocalPort);
        return onPeerPort
            ? Refuse(context, 12, $"only peer traffic is served on --peer-url; clients and operators use {options.GrpcUrl}") // UNIMPLEMENTED
            : Refuse(context, 7, "peer traffic is served only on this node's --peer-url"); // PERMISSION_DENIED
    }

    private static Task Refuse(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(message);
        return Task.CompletedTask;
    }
}
