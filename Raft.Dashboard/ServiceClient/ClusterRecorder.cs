using Raft.Dashboard.Model;

namespace Raft.Dashboard.ServiceClient;

/// <summary>
/// Records what the live monitor shows: a frame for each <see cref="MinInterval"/> in which something changed (so at
/// most five a second), keeping the last <see cref="MaxFrames"/> (ten minutes or more): the page can scrub back through
/// them or export them.
/// </summary>
public sealed class ClusterRecorder : IDisposable
{
    public const int MaxFrames = 3000;
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(200);
    private readonly Lock _lock = new();
    private readonly ClusterMonitor _monitor;
    private readonly LinkedList<RecordedFrame> _frames = new();
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private readonly Timer _timer;
    private int _changed;

    public ClusterRecorder(ClusterMonitor monitor)
    {
        _monitor = monitor;
        monitor.Changed += OnChanged;
        _timer = new Timer(_ => Capture(), null, MinInterval, MinInterval);
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _frames.Count;
            }
        }
    }

    public Recording Snapshot()
    {
        lock (_lock)
        {
            return new Recording(Recording.CurrentVersion, _started, [.. _frames]);
        }
    }

    private void OnChanged() => Volatile.Write(ref _changed, 1);

    private void Capture()
    {
        if (Interlocked.Exchange(ref _changed, 0) == 0)
        {
            return;
        }
        var frame = new RecordedFrame(_clock.Elapsed, Recording.Trim(_monitor.Current));
        lock (_lock)
        {
            _frames.AddLast(frame);
            while (_frames.Count > MaxFrames)
            {
                _frames.RemoveFirst();
            }
        }
    }

    public void Dispose()
    {
        _monitor.Changed -= OnChanged;
        _timer.Dispose();
    }
}
