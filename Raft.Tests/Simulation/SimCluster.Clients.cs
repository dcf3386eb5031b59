using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.StateMachines;

namespace Raft.Tests.Simulation;

/// <summary>One recorded client: one operation at a time, each invocation and answer stamped on the history's clock.</summary>
internal sealed class SimClient(int id)
{
    public int Id { get; } = id;
    public long Sequence { get; set; }

    /// <summary>
    /// The session in use. A session's first applied command must be number 1 (an unknown session past 1 is taken
    /// for an expired one), so after a write that was refused or whose outcome is unknown the client starts a new one.
    /// </summary>
    public string Session => $"h{Id}.{Generation}";
    public int Generation { get; private set; }

    public void StartNewSession()
    {
        Generation++;
        Sequence = 0;
    }
    public PendingOperation? Pending { get; set; }
}

/// <summary>A client operation in flight: a write waiting for its entry to apply, or a read waiting for its read index.</summary>
internal sealed class PendingOperation(SimClient client, long call, KvCommand command, string server, long deadline)
{
    public SimClient Client { get; } = client;
    public long Call { get; } = call;
    public KvCommand Command { get; } = command;
    public string Server { get; } = server;
    public long Deadline { get; } = deadline;
    public long Index { get; set; }
    public long Term { get; set; }
    public long ReadId { get; set; }
    /// <summary>For reads: the index to wait for, once the read index is known (0 before).</summary>
    public long ReadIndex { get; set; }
    public bool IsRead => Command.Operation == KvOperation.Get;
}

/// <summary>The recorded clients: they drive put, get (by ReadIndex, on leaders and followers), delete and cas on a few keys.</summary>
internal sealed partial class SimCluster
{
    private const int ClientPatienceTicks = 300;
    private readonly SimClient[] _clients;
    private readonly List<PendingOperation> _pending = [];
    private readonly List<HistoryOp> _history = [];
    private long _clock;
    private long _nextReadId;

    public IReadOnlyList<HistoryOp> History => _history;

    private void RunClients()
    {
        if (Faults.ClientOperationRatePerTick <= 0)
        {
            return;
        }
        foreach (SimClient client in _clients)
        {
            if (client.Pending != null || _random.NextDouble() >= Faults.ClientOperationRatePerTick)
            {
                continue;
            }
            SimServer? server = _random.NextDouble() < 0.7 ? Leader : _servers[Ids[_random.Next(Ids.Count)]];
            if (server?.Core is not { } core)
            {
                continue;
            }
            string key = $"h{_random.Next(3)}";
            string value = $"c{client.Id}-{client.Sequence + 1}";
            KvCommand command = _random.Next(5) switch
            {
                0 or 1 => KvCommand.Get(key),
                2 => KvCommand.Put(key, value, client.Session, ++client.Sequence),
                3 => KvCommand.Delete(key, client.Session, ++client.Sequence),
                _ => KvCommand.CompareAndSwap(key, _random.Next(2) == 0 ? null : $"c{_random.Next(5)}-{_random.Next(1, 10)}", value, client.Session, ++client.Sequence),
            };
            var operation = new PendingOperation(client, ++_clock, command, server.Id, Now + ClientPatienceTicks);
            if (operation.IsRead)
            {
                operation.ReadId = ++_nextReadId;
                client.Pending = operation;
                _pending.Add(operation);
                core.ReadIndex(operation.ReadId);
            }
            else
            {
                ProposeResult result = core.Propose(command.Encode());
                if (!result.Accepted)
                {
                    client.StartNewSession();
                    continue; // refused before it was appended: it cannot take effect, so it is not part of the history
                }
                (operation.Index, operation.Term) = (result.Index, result.Term);
                client.Pending = operation;
                _pending.Add(operation);
            }
            Process(server);
        }
    }

    private void CompleteWrite(string server, LogEntry entry, byte[] result)
    {
        PendingOperation? operation = _pending.Find(p => !p.IsRead && p.Server == server && p.Index == entry.Index);
        if (operation is null)
        {
            return;
        }
        if (operation.Term == entry.Term)
        {
            Finish(operation, KvResult.Decode(result));
        }
        else
        {
            Finish(operation, null); // overwritten here; the client cannot tell whether it took effect elsewhere
        }
    }

    private void OnReadState(string server, ReadState read)
    {
        PendingOperation? operation = _pending.Find(p => p.IsRead && p.Server == server && p.ReadId == read.RequestId);
        if (operation is null)
        {
            return;
        }
        if (read.Ok)
        {
            operation.ReadIndex = read.Index;
        }
        else
        {
            Drop(operation); // refused: a read that returns nothing has no effect to account for
        }
    }

    /// <summary>Reads whose index this server has applied are answered from its state machine.</summary>
    private void CompleteReads(SimServer server)
    {
        foreach (PendingOperation read in _pending.Where(p => p.IsRead && p.Server == server.Id && p.ReadIndex > 0 && server.Up.AppliedIndex >= p.ReadIndex).ToList())
        {
            string? value = server.StateMachine.GetLocal(read.Command.Key);
            Finish(read, value is null ? new KvResult(KvStatus.NotFound) : new KvResult(KvStatus.Ok, value));
        }
    }

    private void ExpireClientOperations()
    {
        foreach (PendingOperation operation in _pending.Where(p => p.Deadline <= Now).ToList())
        {
            GiveUp(operation);
        }
    }

    private void AbandonClientOperationsAt(string server)
    {
        foreach (PendingOperation operation in _pending.Where(p => p.Server == server).ToList())
        {
            GiveUp(operation);
        }
    }

    private void AbandonWritesCoveredBySnapshot(string server, long index)
    {
        foreach (PendingOperation operation in _pending.Where(p => !p.IsRead && p.Server == server && p.Index <= index).ToList())
        {
            GiveUp(operation);
        }
    }

    /// <summary>The client stops waiting: a write's outcome is unknown (it may apply later), a read simply never happened.</summary>
    private void GiveUp(PendingOperation operation)
    {
        if (operation.IsRead)
        {
            Drop(operation);
        }
        else
        {
            Finish(operation, null);
        }
    }

    private void Finish(PendingOperation operation, KvResult? result)
    {
        _history.Add(new HistoryOp(operation.Client.Id, operation.Call, result is null ? long.MaxValue : ++_clock, operation.Command, result));
        if (result is null && !operation.IsRead)
        {
            operation.Client.StartNewSession(); // the write may or may not apply later: never number after it
        }
        Drop(operation);
    }

    private void Drop(PendingOperation operation)
    {
        _pending.Remove(operation);
        operation.Client.Pending = null;
    }

    private void CheckHistory()
    {
        foreach (PendingOperation operation in _pending.ToList())
        {
            GiveUp(operation);
        }
        if (!Linearizability.Check(_history, out string explanation))
        {
            throw new InvariantViolation("Linearizability", explanation);
        }
    }
}
