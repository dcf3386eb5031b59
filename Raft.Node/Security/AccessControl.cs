using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.SignalR;
using Raft.Client.Events;
using Raft.Node.Events;
using Raft.Node.Metrics;

namespace Raft.Node.Security;

/// <summary>
/// Who may call what, in one table per interface: every client and admin gRPC method and every hub method
/// needs a role; a method missing from the tables needs <see cref="AccessRole.Operator"/>. No token, or one the node does
/// not know: UNAUTHENTICATED (the hub: 401); a token whose role is too low: PERMISSION_DENIED (the hub: an error for
/// that call). Each refusal is logged and counted. Peer traffic is not here: it is kept apart by its endpoint and
/// authenticated by certificates (<see cref="PlaneGuard"/>, <see cref="PeerCertificates"/>).
/// </summary>
public sealed class AccessControl(AccessTokens tokens, NodeMetrics metrics, ILogger<AccessControl> logger)
{
    public static readonly IReadOnlyDictionary<string, AccessRole> GrpcMethods = new Dictionary<string, AccessRole>(StringComparer.Ordinal)
    {
        ["/raft.v1.KeyValue/Get"] = AccessRole.Reader,
        ["/raft.v1.KeyValue/Put"] = AccessRole.Writer,
        ["/raft.v1.KeyValue/Delete"] = AccessRole.Writer,
        ["/raft.v1.KeyValue/CompareAndSwap"] = AccessRole.Writer,
        ["/raft.v1.Admin/GetStatus"] = AccessRole.Reader,
        ["/raft.v1.Admin/AddServer"] = AccessRole.Operator,
        ["/raft.v1.Admin/RemoveServer"] = AccessRole.Operator,
        ["/raft.v1.Admin/TransferLeadership"] = AccessRole.Operator,
        ["/raft.v1.Admin/TakeSnapshot"] = AccessRole.Operator,
        ["/raft.v1.Admin/SetFaults"] = AccessRole.Operator,
        ["/raft.v1.Admin/Heal"] = AccessRole.Operator,
    };

    /// <summary>Connecting to the hub at all needs <see cref="AccessRole.Reader"/>; its methods need these.</summary>
    public static readonly IReadOnlyDictionary<string, AccessRole> HubMethods = new Dictionary<string, AccessRole>(StringComparer.Ordinal)
    {
        [nameof(RaftHub.GetState)] = AccessRole.Reader,
        [nameof(RaftHub.GetData)] = AccessRole.Reader,
        [nameof(RaftHub.TraceMessages)] = AccessRole.Operator,
    };

    public AccessTokens Tokens => tokens;

    /// <summary>The caller of <paramref name="http"/> if it may do what needs <paramref name="needed"/>; else null, with the refusal.</summary>
    public Caller? Check(HttpContext http, string what, AccessRole needed, out Refusal? refusal)
    {
        refusal = null;
        Caller? caller = tokens.Authenticate(BearerToken(http), out string? problem);
        if (caller is null)
        {
            refusal = new Refusal(false, $"{what}: {problem}");
        }
        else if (caller.Role < needed)
        {
            refusal = new Refusal(true, $"{what} needs the role {Name(needed)}; the token of {caller.Name} is {Name(caller.Role)}");
        }
        if (refusal is { } refused)
        {
            metrics.AccessRefused(refused.Authenticated ? "permission" : "authentication");
            logger.LogWarning("refused a request from {Remote}: {Reason}", http.Connection.RemoteIpAddress, refused.Message);
            return null;
        }
        return caller;
    }

    public static string Name(AccessRole role) => role.ToString().ToLowerInvariant();

    /// <summary>"authorization: Bearer t", or for the hub's browser transports (which cannot set headers) ?access_token=t.</summary>
    private static string? BearerToken(HttpContext http)
    {
        string? header = http.Request.Headers.Authorization;
        if (header != null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return header["Bearer ".Length..].Trim();
        }
        return http.Request.Path.StartsWithSegments(HubContract.Path) ? http.Request.Query["access_token"].FirstOrDefault() : null;
    }

    /// <summary>A refused request: <see cref="Authenticated"/> says whether the caller was known (then the role was too low).</summary>
    public sealed record Refusal(bool Authenticated, string Message)
    {
        public RpcException ToRpcException() =>
            new(new Status(Authenticated ? StatusCode.PermissionDenied : StatusCode.Unauthenticated, Message));
    }
}

/// <summary>Checks every client and admin gRPC call against <see cref="AccessControl.GrpcMethods"/>.</summary>
public sealed class AccessInterceptor(AccessControl access) : Interceptor
{
    private void Check(ServerCallContext context)
    {
        if (context.Method.StartsWith("/raft.v1.Peer/", StringComparison.Ordinal))
        {
            return; // the peer plane's own guards
        }
        AccessRole needed = AccessControl.GrpcMethods.GetValueOrDefault(context.Method, AccessRole.Operator);
        if (access.Check(context.GetHttpContext(), context.Method.TrimStart('/'), needed, out AccessControl.Refusal? refusal) is null)
        {
            throw refusal!.ToRpcException();
        }
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context,
        ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }
}

/// <summary>The hub: connecting needs a reader's token (401 with the reason otherwise), each method its role.</summary>
public sealed class HubAccess(AccessControl access, ILogger<HubAccess> logger) : IHubFilter
{
    /// <summary>Middleware for the hub's path (negotiate and every transport request).</summary>
    public static async Task RequireReaderAsync(HttpContext http, RequestDelegate next)
    {
        if (!http.Request.Path.StartsWithSegments(HubContract.Path))
        {
            await next(http);
            return;
        }
        AccessControl access = http.RequestServices.GetRequiredService<AccessControl>();
        if (access.Check(http, "the event hub", AccessRole.Reader, out AccessControl.Refusal? refusal) is null)
        {
            http.Response.StatusCode = refusal!.Authenticated ? StatusCodes.Status403Forbidden : StatusCodes.Status401Unauthorized;
            await http.Response.WriteAsync(refusal.Message);
            return;
        }
        await next(http);
    }

    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        string method = invocationContext.HubMethodName;
        AccessRole needed = AccessControl.HubMethods.GetValueOrDefault(method, AccessRole.Operator);
        AccessControl.Refusal? refusal = null;
        if (invocationContext.Context.GetHttpContext() is not { } http)
        {
            refusal = access.Tokens.Required ? new AccessControl.Refusal(false, $"hub {method}: no credentials") : null;
        }
        else
        {
            access.Check(http, $"hub {method}", needed, out refusal);
        }
        if (refusal != null)
        {
            throw new HubException(refusal.Message); // HubException: the caller sees this message, not a generic error
        }
        try
        {
            return await next(invocationContext);
        }
        catch (Exception e) when (e is not HubException and not OperationCanceledException)
        {
            // Logged here, once; SignalR's own line for a failed invocation is filtered out (NodeApp), since it would
            // also log every refusal and every bad argument (a HubException, the caller's mistake) with a stack trace.
            logger.LogError(e, "hub {Method} failed", method);
            throw;
        }
    }
}
