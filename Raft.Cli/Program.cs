using Raft.Client;

// raftctl <verb> ...: the cluster's command line (the same verbs as `Raft.Node <verb>`), with its own help.
if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
{
    (args.Length == 0 ? Console.Error : Console.Out).WriteLine(Cli.Help());
    return args.Length == 0 ? 2 : 0;
}
return await Cli.RunAsync(args, Console.Out, Console.Error);
