using Grpc.Core;
using Raft.Engine.Hosting;
using Raft.Node.Hosting;
using Raft.Protocol;

namespace Raft.Node.Services;

/// <summary>Operators: status, membership, leadership transfer, snapshots and fault injection.</summary>
public sealed class AdminService(ClusterMember member) : Admin.AdminBase
{
    public override Task<NodeStatus> GetStatus(StatusRequest request, ServerCallContext context) => Task.FromResult(StatusMapper.ToProto(member));

    public override async Task<AdminReply> AddServer(AddServerRequest request, ServerCallContext context)
    {
        if (!NodeOptions.IsValidId(request.Id))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"'{request.Id}' is not a valid server id (letters, digits, '-', '_', '.')"));
        }
        if (!NodeOptions.IsValidAddress(request.Address))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"'{request.Address}' is not a gRPC address like http://127.0.0.1:7004"));
        }
        // Catching up can take longer than a client request: allow the full catch-up rounds.
        await RpcErrors.GuardAsync(member, context, async _ =>
        {
            await member.Node.AddServerAsync(request.Id, request.Address, context.CancellationToken);
            return true;
        });
        return new AdminReply { Message = $"{request.Id} ({request.Address}) is a voter" };
    }

    public override async Task<AdminReply> RemoveServer(RemoveServerRequest request, ServerCallContext context)
    {
        if (!NodeOptions.IsValidId(request.Id))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"'{request.Id}' is not a valid server id"));
        }
        await RpcErrors.GuardAsync(member, context, async token =>
        {
            await member.Node.RemoveServerAsync(request.Id, token);
            return true;
        });
        return new AdminReply { Message = $"{request.Id} was removed" };
    }

    public override async Task<AdminReply> TransferLeadership(TransferLeadershipRequest request, ServerCallContext context)
    {
        await RpcErrors.GuardAsync(member, context, async token =>
        {
            await member.Node.TransferLeadershipAsync(request.Id, token);
            return true;
        });
        return new AdminReply { Message = $"{request.Id} leads" };
    }

    public override async Task<AdminReply> TakeSnapshot(TakeSnapshotRequest request, ServerCallContext context)
    {
        await RpcErrors.GuardAsync(member, context, async token =>
        {
            await member.Node.TakeSnapshotAsync(token);
            return true;
        });
        RaftNodeStatus status = member.Node.Status;
        return new AdminReply { Message = $"snapshot at index {status.SnapshotIndex} ({status.SnapshotBytes} bytes)" };
    }

    public override Task<AdminReply> SetFaults(FaultSpec request, ServerCallContext context)
    {
        try
        {
            member.Faults.Set(request);
        }
        catch (InvalidOperationException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
        catch (ArgumentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        return Task.FromResult(new AdminReply { Message = $"faults on {member.Id}: {request}" });
    }

    public override Task<AdminReply> Heal(HealRequest request, ServerCallContext context) =>
        SetFaults(new FaultSpec(), context);
}
