using System.Diagnostics;

namespace Raft.Tests.Deploy;

/// <summary>Runs a program the way a user would from a shell (dotnet pack, dotnet tool install, raftctl, a script).</summary>
internal static class Processes
{
    /// <summary>Runs to the end; the exit code and what it printed (stdout, then stderr).</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string program, string directory, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Runs, logs the output, and asserts the exit code.</summary>
    public static async Task<string> ExpectAsync(Xunit.Abstractions.ITestOutputHelper log, int expectedExit, string program, string directory, params string[] arguments)
    {
        (int exit, string text) = await RunAsync(program, directory, arguments);
        string command = $"{Path.GetFileName(program)} {string.Join(' ', arguments)}";
        log.WriteLine($"{command} -> {exit}\n{text}");
        Assert.True(exit == expectedExit, $"{command} exited with {exit}, not {expectedExit}:\n{text}");
        return text;
    }
}
