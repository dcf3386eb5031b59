using Google.Protobuf;
using Raft.Engine.Consensus;
using Raft.Engine.Log;
using Raft.Engine.Membership;
using Raft.Protocol;
using EngineAppendEntries = Raft.Engine.Consensus.AppendEntries;
using EngineAppendEntriesResponse = Raft.Engine.Consensus.AppendEntriesResponse;
using EngineInstallSnapshotResponse = Raft.Engine.Consensus.InstallSnapshotResponse;
using EngineRequestVote = Raft.Engine.Consensus.RequestVote;
using EngineRequestVoteResponse = Raft.Engine.Consensus.RequestVoteResponse;
using EngineSnapshotMetadata = Raft.Engine.Log.SnapshotMetadata;
using EngineTimeoutNow = Raft.Engine.Consensus.TimeoutNow;
using ProtoEntryKind = Raft.Protocol.EntryKind;

namespace Raft.Node.Transport;

/// <summary>
/// Engine messages to and from their protobuf form. Decoding validates: a malformed peer message becomes a
/// <see cref="FormatException"/> (InvalidArgument on the wire), never a message the core sees.
/// </summary>
public static class ProtoMapping
{
    private static Envelope Envelope(RaftMessage m) => new() { From = m.From, To = m.To, Term = m.Term };

    private static void Check(Envelope? envelope, string self)
    {
        if (envelope is null || envelope.From.Length == 0 || envelope.To.Length == 0)
        {
            throw new FormatException("the message has no envelope (from, to, term)");
        }
        if (envelope.To != self)
        {
            throw new FormatException($"the message is for {envelope.To}, this is {self}");
        }
        if (envelope.Term < 0)
        {
            throw new FormatException("negative term");
        }
    }

    private static void NonNegative(params long[] values)
    {
        if (values.Any(v => v < 0))
        {
            throw new FormatException("negative index or term");
        }
    }

    /// <summary>Entry data is never changed once in the log, so the wire form wraps it instead of copying it.</summary>
    public static Entry ToProto(LogEntry e) => new() { Index = e.Index, Term = e.Term, Kind = (ProtoEntryKind)(int)e.Kind, Data = UnsafeByteOperations.UnsafeWrap(e.Data) };

    public static LogEntry FromProto(Entry e)
    {
        NonNegative(e.Index, e.Term);
        if (!Enum.IsDefined((Raft.Engine.Log.EntryKind)(int)e.Kind))
        {
            throw new FormatException($"unknown entry kind {e.Kind}");
        }
        return new LogEntry(e.Index, e.Term, (Raft.Engine.Log.EntryKind)(int)e.Kind, Bytes(e.Data));
    }

    public static AppendEntriesRequest ToProto(EngineAppendEntries m)
    {
        var request = new AppendEntriesRequest
        {
            Envelope = Envelope(m), PrevLogIndex = m.PrevLogIndex, PrevLogTerm = m.PrevLogTerm, LeaderCommit = m.LeaderCommit, Context = m.Context,
        };
        request.Entries.AddRange(m.Entries.Select(ToProto));
        return request;
    }

    public static EngineAppendEntries FromProto(AppendEntriesRequest r, string self)
    {
        Check(r.Envelope, self);
        NonNegative(r.PrevLogIndex, r.PrevLogTerm, r.LeaderCommit);
        LogEntry[] entries = r.Entries.Select(FromProto).ToArray();
        for (int i = 0; i < entries.Length; i++)
        {
            if (entries[i].Index != r.PrevLogIndex + 1 + i)
            {
                throw new FormatException("entries are not consecutive after prev_log_index");
            }
        }
        return new EngineAppendEntries(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.PrevLogIndex, r.PrevLogTerm, entries, r.LeaderCommit, r.Context);
    }

    public static Protocol.AppendEntriesResponse ToProto(EngineAppendEntriesResponse m) => new()
    {
        Envelope = Envelope(m), Success = m.Success, MatchIndex = m.MatchIndex, RejectedIndex = m.RejectedIndex,
        ConflictTerm = m.ConflictTerm, ConflictIndex = m.ConflictIndex, Context = m.Context,
    };

    public static EngineAppendEntriesResponse FromProto(Protocol.AppendEntriesResponse r, string self)
    {
        Check(r.Envelope, self);
        NonNegative(r.MatchIndex, r.RejectedIndex, r.ConflictTerm, r.ConflictIndex);
        return new EngineAppendEntriesResponse(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.Success, r.MatchIndex, r.RejectedIndex, r.ConflictTerm, r.ConflictIndex, r.Context);
    }

    public static RequestVoteRequest ToProto(EngineRequestVote m) => new()
    {
        Envelope = Envelope(m), LastLogIndex = m.LastLogIndex, LastLogTerm = m.LastLogTerm, PreVote = m.PreVote, Transfer = m.Transfer,
    };

    public static EngineRequestVote FromProto(RequestVoteRequest r, string self)
    {
        Check(r.Envelope, self);
        NonNegative(r.LastLogIndex, r.LastLogTerm);
        return new EngineRequestVote(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.LastLogIndex, r.LastLogTerm, r.PreVote, r.Transfer);
    }

    public static Protocol.RequestVoteResponse ToProto(EngineRequestVoteResponse m) => new() { Envelope = Envelope(m), Granted = m.Granted, PreVote = m.PreVote, Leader = m.Leader ?? "" };

    public static EngineRequestVoteResponse FromProto(Protocol.RequestVoteResponse r, string self)
    {
        Check(r.Envelope, self);
        return new EngineRequestVoteResponse(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.Granted, r.PreVote, r.Leader.Length == 0 ? null : r.Leader);
    }

    public static InstallSnapshotChunk ToProto(InstallSnapshot m) => new()
    {
        Envelope = Envelope(m),
        Metadata = new Protocol.SnapshotMetadata { Index = m.Metadata.Index, Term = m.Metadata.Term, Configuration = ByteString.CopyFrom(m.Metadata.Configuration.Encode()) },
        Offset = m.Offset,
        Data = ByteString.CopyFrom(m.Data),
        Done = m.Done,
    };

    public static InstallSnapshot FromProto(InstallSnapshotChunk c, string self)
    {
        Check(c.Envelope, self);
        if (c.Metadata is null)
        {
            throw new FormatException("snapshot chunk without metadata");
        }
        NonNegative(c.Metadata.Index, c.Metadata.Term, c.Offset);
        var metadata = new EngineSnapshotMetadata(c.Metadata.Index, c.Metadata.Term, ClusterConfiguration.Decode(c.Metadata.Configuration.ToByteArray()));
        return new InstallSnapshot(c.Envelope.From, c.Envelope.To, c.Envelope.Term, metadata, c.Offset, c.Data.ToByteArray(), c.Done);
    }

    public static Protocol.InstallSnapshotResponse ToProto(EngineInstallSnapshotResponse m) => new()
    {
        Envelope = Envelope(m), SnapshotIndex = m.SnapshotIndex, NextOffset = m.NextOffset, Done = m.Done,
    };

    public static EngineInstallSnapshotResponse FromProto(Protocol.InstallSnapshotResponse r, string self)
    {
        Check(r.Envelope, self);
        NonNegative(r.SnapshotIndex, r.NextOffset);
        return new EngineInstallSnapshotResponse(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.SnapshotIndex, r.NextOffset, r.Done);
    }

    public static TimeoutNowRequest ToProto(EngineTimeoutNow m) => new() { Envelope = Envelope(m) };

    public static EngineTimeoutNow FromProto(TimeoutNowRequest r, string self)
    {
        Check(r.Envelope, self);
        return new EngineTimeoutNow(r.Envelope.From, r.Envelope.To, r.Envelope.Term);
    }

    public static ReadIndexPeerRequest ToProto(ReadIndexRequest m) => new() { Envelope = Envelope(m), RequestId = m.RequestId };

    public static ReadIndexRequest FromProto(ReadIndexPeerRequest r, string self)
    {
        Check(r.Envelope, self);
        return new ReadIndexRequest(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.RequestId);
    }

    public static ReadIndexPeerResponse ToProto(ReadIndexResponse m) => new() { Envelope = Envelope(m), RequestId = m.RequestId, ReadIndex = m.ReadIndex, Ok = m.Ok };

    public static ReadIndexResponse FromProto(ReadIndexPeerResponse r, string self)
    {
        Check(r.Envelope, self);
        NonNegative(r.ReadIndex);
        return new ReadIndexResponse(r.Envelope.From, r.Envelope.To, r.Envelope.Term, r.RequestId, r.ReadIndex, r.Ok);
    }

    /// <summary>The bytes of a parsed field: the parser gave the field an array of its own, so it is taken, not copied.</summary>
    private static byte[] Bytes(ByteString value) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(value.Memory, out ArraySegment<byte> segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : value.ToByteArray();

    /// <summary>One engine message as an item of a peer stream.</summary>
    public static PeerMessage ToPeerMessage(RaftMessage message) => message switch
    {
        EngineAppendEntries m => new PeerMessage { AppendEntries = ToProto(m) },
        EngineAppendEntriesResponse m => new PeerMessage { AppendEntriesResponse = ToProto(m) },
        EngineRequestVote m => new PeerMessage { RequestVote = ToProto(m) },
        EngineRequestVoteResponse m => new PeerMessage { RequestVoteResponse = ToProto(m) },
        InstallSnapshot m => new PeerMessage { InstallSnapshot = ToProto(m) },
        EngineInstallSnapshotResponse m => new PeerMessage { InstallSnapshotResponse = ToProto(m) },
        EngineTimeoutNow m => new PeerMessage { TimeoutNow = ToProto(m) },
        ReadIndexRequest m => new PeerMessage { ReadIndex = ToProto(m) },
        ReadIndexResponse m => new PeerMessage { ReadIndexResponse = ToProto(m) },
        _ => throw new ArgumentException($"no wire form for {message.GetType().Name}", nameof(message)),
    };

    /// <summary>An item of a peer stream as an engine message for <paramref name="self"/>; malformed: <see cref="FormatException"/>.</summary>
    public static RaftMessage FromPeerMessage(PeerMessage message, string self) => message.MessageCase switch
    {
        PeerMessage.MessageOneofCase.AppendEntries => FromProto(message.AppendEntries, self),
        PeerMessage.MessageOneofCase.AppendEntriesResponse => FromProto(message.AppendEntriesResponse, self),
        PeerMessage.MessageOneofCase.RequestVote => FromProto(message.RequestVote, self),
        PeerMessage.MessageOneofCase.RequestVoteResponse => FromProto(message.RequestVoteResponse, self),
        PeerMessage.MessageOneofCase.InstallSnapshot => FromProto(message.InstallSnapshot, self),
        PeerMessage.MessageOneofCase.InstallSnapshotResponse => FromProto(message.InstallSnapshotResponse, self),
        PeerMessage.MessageOneofCase.TimeoutNow => FromProto(message.TimeoutNow, self),
        PeerMessage.MessageOneofCase.ReadIndex => FromProto(message.ReadIndex, self),
        PeerMessage.MessageOneofCase.ReadIndexResponse => FromProto(message.ReadIndexResponse, self),
        _ => throw new FormatException("an empty peer message"),
    };

    /// <summary>A short name of a message's kind, for metrics and the event stream.</summary>
    public static string KindOf(RaftMessage m) => m switch
    {
        EngineAppendEntries { Entries.Count: 0 } => "heartbeat",
        EngineAppendEntries => "append_entries",
        EngineAppendEntriesResponse => "append_entries_response",
        EngineRequestVote { PreVote: true } => "pre_vote",
        EngineRequestVote => "request_vote",
        EngineRequestVoteResponse => "request_vote_response",
        InstallSnapshot => "install_snapshot",
        EngineInstallSnapshotResponse => "install_snapshot_response",
        EngineTimeoutNow => "timeout_now",
        ReadIndexRequest => "read_index",
        ReadIndexResponse => "read_index_response",
        _ => m.GetType().Name,
    };
}
