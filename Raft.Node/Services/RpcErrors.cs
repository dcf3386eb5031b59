using Grpc.Core;
using Raft.Client;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.Storage;
using Raft.Node.Hosting;

namespace Raft.Node.Services;

/// <summary>
/// Engine outcomes as gRPC statuses. A refusal on a follower is FAILED_PRECONDITION with the trailers
/// <see cref="RaftTrailers.LeaderId"/> and <see cref="RaftTrailers.LeaderAddress"/> so clients can follow it.
/// </summary>
public static class RpcErrors
{
    public static RpcException NotLeader(ClusterMember member, string? leaderHint, string message)
    {
        if (leaderHint is null || leaderHint == member.Id)
        {
            return new RpcException(new Status(StatusCode.Unavailable, $"{message} (no leader is known yet; retry shortly)"));
        }
        var trailers = new Metadata { { RaftTrailers.LeaderId, leaderHint } };
        if (member.ClientAddressOf(leaderHint) is { } address)
        {
            trailers.Add(RaftTrailers.LeaderAddress, address);
        }
        return new RpcException(new Status(StatusCode.FailedPrecondition, message), trailers);
    }

    /// <summary>Runs a request against the engine and translates what it throws.</summary>
    public static async Task<T> GuardAsync<T>(ClusterMember member, ServerCallContext context, Func<CancellationToken, Task<T>> action)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        timeout.CancelAfter(member.RequestTimeout);
        try
        {
            return await action(timeout.Token);
        }
        catch (NotLeaderException e)
        {
            throw NotLeader(member, e.LeaderHint, e.Message);
        }
        catch (StorageFullException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"{member.Id} cannot write: {e.Message}; retry later or on another node"));
        }
        catch (NodeOverloadedException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
        catch (ProposalDroppedException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"{e.Message}; retry with the same session, it is applied at most once"));
        }
        catch (RaftAdminException e)
        {
            if (e.Status == AdminStatus.NotLeader)
            {
                throw NotLeader(member, e.LeaderHint, e.Message);
            }
            StatusCode code = e.Status switch
            {
                AdminStatus.InProgress => StatusCode.Aborted,
                // Not Aborted: clients retry that; an abandoned change is for the operator to look at, not to repeat.
                AdminStatus.Abandoned => StatusCode.FailedPrecondition,
                AdminStatus.LeaderNotReady => StatusCode.Unavailable,
                AdminStatus.UnknownServer => StatusCode.NotFound,
                AdminStatus.AlreadyMember => StatusCode.AlreadyExists,
                _ => StatusCode.InvalidArgument,
            };
            throw new RpcException(new Status(code, e.Message));
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded,
                $"no answer within {member.RequestTimeout.TotalMilliseconds:F0} ms: is a majority reachable from {member.Id}? The outcome is unknown; retry with the same session"));
        }
    }
}
