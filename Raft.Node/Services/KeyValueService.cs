using System.Diagnostics;
using System.Text;
using Grpc.Core;
using Raft.Client;
using Raft.Engine.StateMachines;
using Raft.Node.Hosting;
using Raft.Node.Metrics;
using Raft.Protocol;

namespace Raft.Node.Services;

/// <summary>The client API: writes through the log (with sessions for exactly-once retries), reads by ReadIndex or stale.</summary>
public sealed class KeyValueService(ClusterMember member, NodeMetrics metrics) : KeyValue.KeyValueBase
{
    private void Validate(string key, params string?[] values)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "the key must not be empty"));
        }
        long size = Encoding.UTF8.GetByteCount(key) + values.Sum(v => v is null ? 0 : Encoding.UTF8.GetByteCount(v));
        if (size > member.Options.MaxCommandBytes)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"the command is {size} bytes; this cluster accepts at most {member.Options.MaxCommandBytes}"));
        }
    }

    private static (string ClientId, long Sequence) SessionOf(Session? session)
    {
        if (session is null || session.ClientId.Length == 0)
        {
            return ("", 0); // no session: a retry may apply twice
        }
        if (session.Sequence is <= 0 or long.MaxValue)
        {
            // long.MaxValue would leave the session no next number: refused rather than locking the id out.
            throw new RpcException(new Status(StatusCode.InvalidArgument, "session.sequence must be positive and below 2^63-1 (1, 2, 3, ... per client)"));
        }
        return (session.ClientId, session.Sequence);
    }

    private Task<KvResult> WriteAsync(KvCommand command, ServerCallContext context) =>
        RpcErrors.GuardAsync(member, context, async token =>
        {
            long start = Stopwatch.GetTimestamp();
            if (command.ClientId.Length > 0)
            {
                // The clock sessions expire by: this leader's, made the same for every replica by going through the log.
                command = command with { IssuedAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() };
            }
            try
            {
                KvResult result = KvResult.Decode(await member.Node.ProposeAsync(command.Encode(), token));
                metrics.Proposed("applied");
                metrics.WriteCompleted(Stopwatch.GetElapsedTime(start));
                if (result.Status == KvStatus.StaleSequence)
                {
                    throw new RpcException(new Status(StatusCode.FailedPrecondition, "this session has already moved past that sequence number; its answer is gone"));
                }
                if (result.Status == KvStatus.SessionExpired)
                {
                    throw new RpcException(new Status(StatusCode.FailedPrecondition, result.Value ?? "the session expired"), new Metadata { { RaftTrailers.SessionExpired, "true" } });
                }
                if (result.Status == KvStatus.SessionReused)
                {
                    throw new RpcException(new Status(StatusCode.FailedPrecondition, $"{result.Value}: nothing was applied; use a client id of your own"));
                }
                return result;
            }
            catch (Exception e) when (e is not RpcException)
            {
                metrics.Proposed("failed");
                throw;
            }
        });

    public override async Task<PutReply> Put(PutRequest request, ServerCallContext context)
    {
        Validate(request.Key, request.Value);
        (string client, long sequence) = SessionOf(request.Session);
        KvResult result = await WriteAsync(KvCommand.Put(request.Key, request.Value, client, sequence), context);
        var reply = new PutReply { ServedBy = member.Id, Index = result.Index };
        if (result.Value != null)
        {
            reply.Previous = result.Value;
        }
        return reply;
    }

    public override async Task<DeleteReply> Delete(DeleteRequest request, ServerCallContext context)
    {
        Validate(request.Key);
        (string client, long sequence) = SessionOf(request.Session);
        KvResult result = await WriteAsync(KvCommand.Delete(request.Key, client, sequence), context);
        var reply = new DeleteReply { Deleted = result.Status == KvStatus.Ok, ServedBy = member.Id };
        if (result.Value != null)
        {
            reply.Previous = result.Value;
        }
        return reply;
    }

    public override async Task<CompareAndSwapReply> CompareAndSwap(CompareAndSwapRequest request, ServerCallContext context)
    {
        string? expected = request.HasExpected ? request.Expected : null;
        string? value = request.HasValue ? request.Value : null;
        Validate(request.Key, expected, value);
        (string client, long sequence) = SessionOf(request.Session);
        KvResult result = await WriteAsync(KvCommand.CompareAndSwap(request.Key, expected, value, client, sequence), context);
        var reply = new CompareAndSwapReply { Swapped = result.Status == KvStatus.Ok, ServedBy = member.Id };
        if (result.Value != null)
        {
            reply.Current = result.Value;
        }
        return reply;
    }

    public override async Task<GetReply> Get(GetRequest request, ServerCallContext context)
    {
        Validate(request.Key);
        if (!request.Stale)
        {
            await RpcErrors.GuardAsync(member, context, async token =>
            {
                await member.Node.LinearizableReadAsync(token);
                return true;
            });
        }
        string? value = member.StateMachine.GetLocal(request.Key);
        return new GetReply { Found = value != null, Value = value ?? "", ServedBy = member.Id };
    }
}
