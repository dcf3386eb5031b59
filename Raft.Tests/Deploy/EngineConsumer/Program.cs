// A program that knows Raft.Engine only as a NuGet package: a counter state machine and a transport of its own,
// three nodes, writes through the leader, every replica at the same total. Built by EnginePackageTests.
using System.Threading.Channels;
using Raft.Engine.Consensus;
using Raft.Engine.Hosting;
using Raft.Engine.StateMachines;
using Raft.Engine.Storage;

string[] members = ["a", "b", "c"];
var nodes = new Dictionary<string, RaftNode>();
var counters = new Dictionary<string, Counter>();
var network = new MailboxNetwork(nodes);
foreach (string id in members)
{
    counters[id] = new Counter();
    nodes[id] = new RaftNode(new RaftNodeOptions { Id = id, Members = members }, new MemoryLogStore(), counters[id], network);
}
foreach (RaftNode node in nodes.Values)
{
    await node.StartAsync();
}
RaftNode leader = await LeaderAsync();
long total = 0;
for (int i = 1; i <= 20; i++)
{
    try
    {
        total = BitConverter.ToInt64(await leader.ProposeAsync(BitConverter.GetBytes((long)i)));
    }
    catch (NotLeaderException)
    {
        leader = await LeaderAsync();
        i--;
    }
}
RaftNode follower = nodes.Values.First(n => n.Status.Role != Role.Leader);
await follower.LinearizableReadAsync(); // after this, the follower has applied every acknowledged write
DateTime deadline = DateTime.UtcNow.AddSeconds(10);
while (counters.Values.Any(c => c.Total != 210) && DateTime.UtcNow < deadline)
{
    await Task.Delay(20);
}
Console.WriteLine($"leader {leader.Status.Id} answered {total}; totals {string.Join(", ", counters.Select(c => $"{c.Key}={c.Value.Total}"))}");
foreach (RaftNode node in nodes.Values)
{
    await node.DisposeAsync();
}
return total == 210 && counters.Values.All(c => c.Total == 210) ? 0 : 1;

async Task<RaftNode> LeaderAsync()
{
    for (int i = 0; i < 500; i++)
    {
        if (nodes.Values.FirstOrDefault(n => n.Status.Role == Role.Leader) is { } found)
        {
            return found;
        }
        await Task.Delay(20);
    }
    throw new TimeoutException("no leader");
}

/// <summary>Adds each command (a 64-bit number) to a total; the answer is the new total.</summary>
sealed class Counter : IStateMachine
{
    private long _total;

    public long Total => Interlocked.Read(ref _total);

    public byte[] Apply(long index, byte[] command) =>
        BitConverter.GetBytes(command.Length == 8 ? Interlocked.Add(ref _total, BitConverter.ToInt64(command)) : Total);

    public IStateCapture CaptureSnapshot() => new Capture(Total);

    public string? CheckSnapshot(byte[] data) => data.Length == 8 ? null : "not a counter";

    public async ValueTask RestoreSnapshotAsync(Stream source, CancellationToken cancellationToken = default)
    {
        byte[] bytes = new byte[8];
        await source.ReadExactlyAsync(bytes, cancellationToken);
        Interlocked.Exchange(ref _total, BitConverter.ToInt64(bytes));
    }

    private sealed class Capture(long total) : IStateCapture
    {
        public async ValueTask WriteToAsync(Stream destination, CancellationToken cancellationToken = default) =>
            await destination.WriteAsync(BitConverter.GetBytes(total), cancellationToken);
    }
}

/// <summary>Each node has a mailbox; a pump delivers its messages in order, off the sender's thread.</summary>
sealed class MailboxNetwork : ITransport
{
    private readonly Dictionary<string, RaftNode> _nodes;
    private readonly Channel<RaftMessage> _mail = Channel.CreateUnbounded<RaftMessage>();

    public MailboxNetwork(Dictionary<string, RaftNode> nodes)
    {
        _nodes = nodes;
        _ = Task.Run(async () =>
        {
            await foreach (RaftMessage message in _mail.Reader.ReadAllAsync())
            {
                if (_nodes.TryGetValue(message.To, out RaftNode? node))
                {
                    node.Receive(message);
                }
            }
        });
    }

    public void Send(RaftMessage message) => _mail.Writer.TryWrite(message);
}
