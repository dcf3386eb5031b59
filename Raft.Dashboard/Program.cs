using Raft.Dashboard;
using Raft.Dashboard.Access;
using Raft.Dashboard.Cluster;

if (args is ["hash-password", ..])
{
    // A line for the users file: the password is read from stdin (not the command line, which others can see).
    if (args.Length != 3 || !DashboardRoles.IsKnown(args[2]))
    {
        Console.Error.WriteLine("usage: Raft.Dashboard hash-password <name> <viewer|operator>  (reads the password from stdin)");
        return 2;
    }
    string? password = Console.In.ReadLine();
    if (string.IsNullOrEmpty(password))
    {
        Console.Error.WriteLine("error: no password on stdin");
        return 2;
    }
    Console.WriteLine($"{args[1]} {args[2]} {DashboardUsers.Hash(password)}");
    return 0;
}

WebApplication app;
try
{
    app = DashboardApp.Build(args);
}
catch (FormatException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
DashboardOptions options = app.Services.GetRequiredService<DashboardOptions>();
app.Lifetime.ApplicationStarted.Register(() =>
{
    bool recovered = options.Embedded && app.Services.GetRequiredService<Raft.Dashboard.Cluster.EmbeddedCluster>().Recovered;
    Console.WriteLine($"Raft dashboard: {string.Join(", ", app.Urls)}, {options.Describe(recovered)}  "
        + (options.Embedded ? "(Ctrl+C stops it and its cluster)" : "(Ctrl+C stops it; the nodes keep running)"));
    Console.WriteLine($"access: {options.DescribeAccess()}");
});
await app.RunAsync();
return 0;
