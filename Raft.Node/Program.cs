using Raft.Engine.Storage;
using Raft.Client;
using Raft.Node.Hosting;

namespace Raft.Node;

/// <summary>Runs a cluster member, or (with a verb such as put, get or status) talks to a cluster as a client.</summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine(NodeOptions.HelpText);
            return 0;
        }
        if (args.Length > 0 && args[0] == TermRecovery.Verb)
        {
            return await TermRecovery.RunAsync(args, Console.Out, Console.Error);
        }
        if (args.Length > 0 && Cli.Verbs.Contains(args[0]))
        {
            return await Cli.RunAsync(args, Console.Out, Console.Error);
        }
        WebApplication app;
        try
        {
            app = NodeApp.Build(args);
        }
        catch (FormatException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}{(e.Message.Contains("--help", StringComparison.Ordinal) ? "" : " (Raft.Node --help lists the options)")}");
            return 2;
        }
        // Taken now: RunAsync disposes the services, and asking for it afterwards threw ObjectDisposedException at exit.
        ClusterMember member = app.Services.GetRequiredService<ClusterMember>();
        try
        {
            // Never join the cluster with a data folder that is in use, not ours or damaged.
            await member.OpenStoreAsync();
        }
        catch (StorageException unusable)
        {
            await Console.Error.WriteLineAsync($"error: {unusable.Message}");
            return 65; // EX_DATAERR: restarting does not help; the data folder needs an operator
        }
        await app.RunAsync();
        if (member.Failure is { } failure)
        {
            await Console.Error.WriteLineAsync($"error: the node failed: {failure.Message}");
            return 70; // EX_SOFTWARE: an orchestrator restarts it
        }
        return 0;
    }
}
