using Raft.Client.Events;

namespace Raft.Dashboard.Model;

/// <summary>What the dashboard knows of one node: how to reach it, whether its hub is connected, its last status and log window.</summary>
public sealed record NodeSnapshot(
    string Id,
    string GrpcUrl,
    string HttpUrl,
    bool Connected,
    bool Stopped,
    StatusView? Status,
    IReadOnlyList<LogEntryView> Log)
{
    public bool IsLeader => Connected && Status?.Role == "Leader";

    public LogEntryView? EntryAt(long index)
    {
        // The window is sorted by index and contiguous except across a truncation, which replaces the tail.
        if (Log.Count == 0 || index < Log[0].Index || index > Log[^1].Index)
        {
            return null;
        }
        LogEntryView candidate = Log[(int)(index - Log[0].Index)];
        return candidate.Index == index ? candidate : Log.FirstOrDefault(e => e.Index == index);
    }
}

/// <summary>One line of the event timeline.</summary>
public sealed record TimelineEvent(DateTimeOffset At, string NodeId, string Kind, string Text);

/// <summary>The whole cluster as last seen: an immutable copy that components render.</summary>
public sealed record ClusterSnapshot(
    IReadOnlyList<NodeSnapshot> Nodes,
    IReadOnlyList<TimelineEvent> Timeline,
    double CommitsPerSecond,
    bool CanManageNodes)
{
    public static ClusterSnapshot Empty { get; } = new([], [], 0, false);

    /// <summary>The leader with the highest term among connected nodes.</summary>
    public NodeSnapshot? Leader => Nodes.Where(n => n.IsLeader).MaxBy(n => n.Status!.Term);

    public NodeSnapshot? this[string id] => Nodes.FirstOrDefault(n => n.Id == id);

    /// <summary>Whether the link between two nodes is cut on either side (or either is isolated).</summary>
    public bool IsCut(string a, string b)
    {
        static bool Blocks(NodeSnapshot? node, string other) =>
            node?.Status?.Faults is { } f && (f.Isolated || f.CutPeers.Contains(other));
        return Blocks(this[a], b) || Blocks(this[b], a);
    }

    /// <summary>The nodes to draw: members of the configuration the leader (or any node) knows, plus nodes being watched.</summary>
    public IReadOnlyList<NodeSnapshot> Members
    {
        get
        {
            StatusView? reference = Leader?.Status ?? Nodes.Where(n => n.Status != null).MaxBy(n => n.Status!.Term)?.Status;
            if (reference is null)
            {
                return Nodes;
            }
            var members = reference.Members.Select(m => m.Id).ToHashSet();
            return Nodes.Where(n => members.Contains(n.Id)).ToList();
        }
    }
}
