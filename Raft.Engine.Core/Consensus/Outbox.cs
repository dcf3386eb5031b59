namespace Raft.Engine.Consensus;

/// <summary>
/// What the core has produced since the last <see cref="Ready"/>: messages, read answers and notices. A leader's
/// AppendEntries and snapshot chunks are kept apart from the rest: they depend on nothing the leader has yet to
/// persist but the entries they carry, so they may leave before the batch's write (see <see cref="Ready"/>).
/// </summary>
internal sealed class Outbox
{
    private readonly List<RaftMessage> _messages = [];
    private readonly List<RaftMessage> _replication = [];
    private readonly List<ReadState> _reads = [];
    private readonly List<RaftNotice> _notices = [];

    public bool IsEmpty => _messages.Count == 0 && _replication.Count == 0 && _reads.Count == 0 && _notices.Count == 0;

    public void Send(RaftMessage message, bool replication) => (replication ? _replication : _messages).Add(message);

    public void Add(ReadState read) => _reads.Add(read);

    public void Add(RaftNotice notice) => _notices.Add(notice);

    /// <summary>Takes everything; the lists are copied (the shared empty array when there is nothing, as in most batches).</summary>
    public (RaftMessage[] Messages, RaftMessage[] Replication, ReadState[] Reads, RaftNotice[] Notices) Take()
    {
        var taken = (Copy(_messages), Copy(_replication), Copy(_reads), Copy(_notices));
        _messages.Clear();
        _replication.Clear();
        _reads.Clear();
        _notices.Clear();
        return taken;
    }

    private static T[] Copy<T>(List<T> items) => items.Count == 0 ? [] : [.. items];
}
