using Raft.Client.Events;
using Raft.Engine.Consensus;
using Raft.Node.Transport;

namespace Raft.Node.Events;

/// <summary>
/// Opt-in (it is high-volume): every peer message this node sends or receives, with its kind and key fields, for the
/// event stream. Off until a hub subscriber turns it on with TraceMessages(true).
/// </summary>
public sealed class MessageTracer
{
    private volatile bool _enabled;

    public bool Enabled
    {
        get => _enabled;
        set => _enabled = value;
    }

    public event Action<MessageTrace>? Traced;

    public void Sent(RaftMessage message)
    {
        if (_enabled)
        {
            Traced?.Invoke(new MessageTrace(true, message));
        }
    }

    public void Received(RaftMessage message)
    {
        if (_enabled)
        {
            Traced?.Invoke(new MessageTrace(false, message));
        }
    }
}

/// <summary>One traced message and a one-line description of its key fields.</summary>
public sealed record MessageTrace(bool Outgoing, RaftMessage Message)
{
    public string Describe()
    {
        string fields = Message switch
        {
            AppendEntries m => $"prev {m.PrevLogIndex}/{m.PrevLogTerm}, {m.Entries.Count} entries, commit {m.LeaderCommit}",
            AppendEntriesResponse m => m.Success ? $"ok, match {m.MatchIndex}" : $"rejected {m.RejectedIndex}, hint {m.ConflictIndex}/{m.ConflictTerm}",
            RequestVote m => $"last {m.LastLogIndex}/{m.LastLogTerm}{(m.Transfer ? ", transfer" : "")}",
            RequestVoteResponse m => m.Granted ? "granted" : "refused",
            InstallSnapshot m => $"snapshot {m.Metadata.Index}, offset {m.Offset}, {m.Data.Length} bytes{(m.Done ? ", last" : "")}",
            InstallSnapshotResponse m => m.Done ? $"installed {m.SnapshotIndex}" : $"next offset {m.NextOffset}",
            ReadIndexResponse m => m.Ok ? $"read index {m.ReadIndex}" : "refused",
            _ => "",
        };
        string direction = Outgoing ? $"to {Message.To}" : $"from {Message.From}";
        return $"{ProtoMapping.KindOf(Message)} {direction}, term {Message.Term}{(fields.Length > 0 ? $": {fields}" : "")}";
    }
}
