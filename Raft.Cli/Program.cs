using Raft.Node.Client;
using Raft.Node.Hosting;

// raftctl <verb> ...: the same verbs as `Raft.Node <verb>`, without the server around them.
if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
{
    string help = NodeOptions.HelpText;
    int verbs = help.IndexOf("Talk to a cluster", StringComparison.Ordinal);
    Console.WriteLine((verbs >= 0 ? help[verbs..] : help).Replace("Raft.Node <verb>", "raftctl <verb>", StringComparison.Ordinal));
    return args.Length == 0 ? 2 : 0;
}
if (!Cli.Verbs.Contains(args[0]))
{
    Console.Error.WriteLine($"error: unknown verb '{args[0]}' (raftctl --help lists them)");
    return 2;
}
return await Cli.RunAsync(args, Console.Out, Console.Error);
