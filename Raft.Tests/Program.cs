namespace Raft.Tests;

/// <summary>
/// The test assembly is also an executable: the storage crash test starts it as a child process
/// (<c>dotnet Raft.Tests.dll crash-writer &lt;db&gt;</c>) and kills it with SIGKILL mid-write.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "crash-writer")
        {
            await Storage.SqliteCrashTests.RunWriterAsync(args[1]);
            return 0;
        }
        await Console.Error.WriteLineAsync("usage: Raft.Tests crash-writer <database path>  (used by the storage crash test)");
        return 2;
    }
}
