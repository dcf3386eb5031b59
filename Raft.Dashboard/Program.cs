using Raft.Dashboard;

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
app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"Raft dashboard: {string.Join(", ", app.Urls)}, {app.Services.GetRequiredService<Raft.Dashboard.Cluster.DashboardOptions>().Describe()}  (Ctrl+C stops it and its cluster)"));
await app.RunAsync();
return 0;
