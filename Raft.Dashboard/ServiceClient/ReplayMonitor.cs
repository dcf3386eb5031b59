using Raft.Dashboard.Model;

namespace Raft.Dashboard.ServiceClient;

/// <summary>
/// What one page (one circuit) renders: the live cluster, or a moment of a recording it scrubs to, the live one or an
/// imported file. Every component reads the cluster through this, so the picture, the table, the logs and the timeline
/// all show the same moment.
/// </summary>
public sealed class ReplayMonitor : IClusterMonitor, IDisposable
{
    private readonly ClusterMonitor _live;
    private readonly ClusterRecorder _recorder;
    private Recording? _recording;
    private int? _position;

    public ReplayMonitor(ClusterMonitor live, ClusterRecorder recorder)
    {
        _live = live;
        _recorder = recorder;
        _live.Changed += OnLiveChanged;
    }

    public ClusterSnapshot Current => _position is int i && _recording is { } r ? r.Frames[i].Cluster : _live.Current;

    public event Action? Changed;

    /// <summary>Whether the page shows a recorded moment rather than the live cluster.</summary>
    public bool Replaying => _position != null;

    /// <summary>Whether what is replayed is a file that was imported (not this dashboard's own recording).</summary>
    public bool Imported { get; private set; }

    public int Position => _position ?? (FrameCount - 1);

    public int FrameCount => _recording?.Frames.Count ?? _recorder.Count;

    public RecordedFrame? Frame => _position is int i && _recording is { } r ? r.Frames[i] : null;

    /// <summary>Shows frame <paramref name="index"/> of the live recording (taken now) or of the imported one.</summary>
    public void Seek(int index)
    {
        if (!Imported || _recording is null)
        {
            _recording = _recorder.Snapshot();
        }
        if (_recording.Frames.Count == 0)
        {
            return;
        }
        _position = Math.Clamp(index, 0, _recording.Frames.Count - 1);
        Changed?.Invoke();
    }

    public void Import(Recording recording)
    {
        (_recording, Imported) = (recording, true);
        Seek(0);
    }

    public void GoLive()
    {
        (_recording, _position, Imported) = (null, null, false);
        Changed?.Invoke();
    }

    private void OnLiveChanged()
    {
        if (_position is null)
        {
            Changed?.Invoke();
        }
    }

    public Task<IReadOnlyList<KeyValuePair<string, string>>> ReadDataAsync(string nodeId, CancellationToken cancellationToken = default) =>
        _live.ReadDataAsync(nodeId, cancellationToken);

    public void Dispose() => _live.Changed -= OnLiveChanged;
}
