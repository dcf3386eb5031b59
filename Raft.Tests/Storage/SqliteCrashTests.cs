namespace Raft.Tests.Storage;

public sealed class SqliteCrashTests
{
    internal static Task RunWriterAsync(string path) => Task.CompletedTask;
}
