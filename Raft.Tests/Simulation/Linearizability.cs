using Raft.Engine.StateMachines;

namespace Raft.Tests.Simulation;

/// <summary>
/// One client operation on the key-value store as a client saw it: invoked at <see cref="Call"/>, answered at
/// <see cref="Return"/>. An operation whose outcome is unknown (timed out, its server crashed) has no answer and
/// <see cref="Return"/> = long.MaxValue: it may have taken effect at any point after its call, or never.
/// </summary>
internal sealed record HistoryOp(int Client, long Call, long Return, KvCommand Command, KvResult? Result)
{
    public bool Unknown => Result is null;
}

/// <summary>
/// Checks that a history of key-value operations is linearizable: that some order of the operations, consistent with
/// real time (an operation that returned before another was called comes first), explains every answer when applied
/// to a single copy of the store. Keys are independent, so each key's history is checked on its own (Porcupine's
/// partitioning). The search is Wing and Gong's, with Lowe's memoization of (linearized set, state) pairs; the set is
/// kept as a 128-bit Zobrist hash (a random number per operation, XORed in and out), so a step costs the same for ten
/// operations or a hundred thousand (the torture run's histories).
/// </summary>
internal static class Linearizability
{
    public static bool Check(IReadOnlyList<HistoryOp> history, out string explanation)
    {
        foreach (IGrouping<string, HistoryOp> key in history.GroupBy(op => op.Command.Key))
        {
            if (!CheckKey([.. key]))
            {
                explanation = $"the operations on key '{key.Key}' have no linearization:\n" + string.Join("\n", key.OrderBy(o => o.Call).Select(Describe));
                return false;
            }
        }
        explanation = "";
        return true;
    }

    private static string Describe(HistoryOp op) =>
        $"  client {op.Client} [{op.Call}, {(op.Unknown ? "?" : op.Return.ToString(System.Globalization.CultureInfo.InvariantCulture))}] {op.Command} -> {(op.Result is { } r ? $"{r.Status} {r.Value}" : "unknown")}";

    /// <summary>What the register of one key does with a command: whether the answer fits, and the new value.</summary>
    private static bool Step(string? state, HistoryOp op, out string? next)
    {
        KvCommand command = op.Command;
        next = command.Operation switch
        {
            KvOperation.Put => command.Value,
            KvOperation.Delete => null,
            KvOperation.CompareAndSwap when state == command.Expected => command.Value,
            _ => state,
        };
        if (op.Result is not { } result)
        {
            return true; // unknown outcome: any answer fits
        }
        return command.Operation switch
        {
            KvOperation.Put => result.Status == KvStatus.Ok && result.Value == state,
            KvOperation.Get => state is null ? result.Status == KvStatus.NotFound : result.Status == KvStatus.Ok && result.Value == state,
            KvOperation.Delete => state is null ? result.Status == KvStatus.NotFound : result.Status == KvStatus.Ok && result.Value == state,
            _ => state == command.Expected
                ? result.Status == KvStatus.Ok && result.Value == state
                : result.Status == KvStatus.CompareFailed && result.Value == state,
        };
    }

    private sealed class Node(int op, bool isCall)
    {
        public int Op { get; } = op;
        public bool IsCall { get; } = isCall;
        public Node? Match { get; set; }
        public Node? Prev { get; set; }
        public Node? Next { get; set; }
    }

    private static bool CheckKey(HistoryOp[] ops)
    {
        // Events in time order; at equal times calls come first (the more permissive reading).
        var events = new List<(long Time, int Kind, Node Node)>();
        for (int i = 0; i < ops.Length; i++)
        {
            var call = new Node(i, true);
            var ret = new Node(i, false);
            call.Match = ret;
            events.Add((ops[i].Call, 0, call));
            events.Add((ops[i].Return, 1, ret));
        }
        events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Kind.CompareTo(b.Kind));
        var head = new Node(-1, false);
        Node tail = head;
        foreach ((_, _, Node node) in events)
        {
            tail.Next = node;
            node.Prev = tail;
            tail = node;
        }

        var random = new Random(ops.Length);
        var keys = new UInt128[ops.Length];
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = new UInt128((ulong)random.NextInt64(), (ulong)random.NextInt64());
        }
        var cache = new HashSet<(UInt128, string?)>();
        var stack = new Stack<(Node Call, string? State)>();
        UInt128 linearized = 0;
        string? state = null;
        Node? entry = head.Next;
        while (head.Next != null)
        {
            if (entry!.IsCall)
            {
                if (Step(state, ops[entry.Op], out string? next))
                {
                    UInt128 candidate = linearized ^ keys[entry.Op];
                    if (cache.Add((candidate, next)))
                    {
                        stack.Push((entry, state));
                        state = next;
                        linearized = candidate;
                        Lift(entry);
                        entry = head.Next;
                        continue;
                    }
                }
                entry = entry.Next;
            }
            else
            {
                // A return whose call is not linearized yet: undo the last choice and try the next.
                if (stack.Count == 0)
                {
                    return false;
                }
                (Node call, string? previous) = stack.Pop();
                state = previous;
                linearized ^= keys[call.Op];
                Unlift(call);
                entry = call.Next;
            }
        }
        return true;
    }

    private static void Lift(Node call)
    {
        call.Prev!.Next = call.Next;
        call.Next!.Prev = call.Prev;
        Node ret = call.Match!;
        ret.Prev!.Next = ret.Next;
        if (ret.Next != null)
        {
            ret.Next.Prev = ret.Prev;
        }
    }

    private static void Unlift(Node call)
    {
        Node ret = call.Match!;
        ret.Prev!.Next = ret;
        if (ret.Next != null)
        {
            ret.Next.Prev = ret;
        }
        call.Prev!.Next = call;
        call.Next!.Prev = call;
    }
}
