namespace Raft.Engine.Storage;

/// <summary>
/// A data file that cannot be used as it is: not ours, of an unknown schema, damaged, or in use by another process.
/// The message names the file and the problem in one line; a node refuses to start rather than join with bad data.
/// </summary>
public class StorageException(string path, string problem, Exception? inner = null) : IOException($"{path}: {problem}", inner)
{
    public string FilePath { get; } = path;
}

/// <summary>
/// The medium is full: the write was not made (nothing half-written) and can be retried when space returns.
/// </summary>
public sealed class StorageFullException(string path, Exception? inner = null)
    : StorageException(path, "the disk is full; the write was not made", inner);
