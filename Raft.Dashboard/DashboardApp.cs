using MudBlazor.Services;
using Raft.Dashboard.Access;
using Raft.Dashboard.Cluster;
using Raft.Dashboard.Components;
using Raft.Dashboard.ServiceClient;

namespace Raft.Dashboard;

/// <summary>Builds the dashboard: Blazor Server with MudBlazor, the cluster monitor and commands, and (by default) its own cluster.</summary>
public static class DashboardApp
{
    public const string DefaultUrl = "http://127.0.0.1:5080";

    /// <summary>appsettings are read once: watching them watches the content root, and the embedded cluster writes its data there.</summary>
    private const string NoConfigurationWatching = "--hostBuilder:reloadConfigOnChange=false";

    public static WebApplication Build(string[] args)
    {
        args = DashboardOptions.NormalizeArguments(args);
        WebApplicationBuilder builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [.. args, NoConfigurationWatching], ApplicationName = typeof(DashboardApp).Assembly.GetName().Name });
        builder.Configuration.AddCommandLine(args, DashboardOptions.Switches.ToDictionary(s => s.Key, s => s.Value));
        var options = new DashboardOptions();
        try
        {
            builder.Configuration.GetSection(DashboardOptions.Section).Bind(options);
            options.Validate();
        }
        catch (InvalidOperationException e)
        {
            throw new FormatException(e.Message, e); // e.g. "Failed to convert configuration value 'x' at 'Dashboard:Size' ..."
        }
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }
        return Build(builder, options);
    }

    /// <summary>Builds for given options and URL (the browser tests use this).</summary>
    public static WebApplication Build(DashboardOptions options, string url, Action<ILoggingBuilder>? logging = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [NoConfigurationWatching], ApplicationName = typeof(DashboardApp).Assembly.GetName().Name });
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        logging?.Invoke(builder.Logging);
        return Build(builder, options);
    }

    private static WebApplication Build(WebApplicationBuilder builder, DashboardOptions options)
    {
        // Run from a build output (not only `dotnet run` in Development), the static files of Blazor and MudBlazor
        // are found through the static web assets manifest.
        builder.WebHost.UseStaticWebAssets();
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(options.Credentials);
        builder.Services.AddDashboardAccess(options);
        Func<IServiceProvider, ISharedClusterClock> clockOf;
        if (options.Embedded)
        {
            builder.Services.AddSingleton<EmbeddedClusterClock>();
            clockOf = sp => sp.GetRequiredService<EmbeddedClusterClock>();
            builder.Services.AddSingleton<EmbeddedCluster>();
            builder.Services.AddSingleton<INodeDirectory>(sp => sp.GetRequiredService<EmbeddedCluster>());
            builder.Services.AddHostedService(sp => sp.GetRequiredService<EmbeddedCluster>());
        }
        else
        {
            builder.Services.AddSingleton<INodeDirectory>(new StaticNodeDirectory(options.ParseNodes()));
            builder.Services.AddSingleton<UnavailableClusterClock>();
            clockOf = sp => sp.GetRequiredService<UnavailableClusterClock>();
        }
        builder.Services.AddSingleton<ClusterMonitor>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterMonitor>());
        builder.Services.AddSingleton<ClusterRecorder>();
        // Each page renders through its own ReplayMonitor: live, or a recorded moment it scrubbed to.
        builder.Services.AddScoped<ReplayMonitor>();
        builder.Services.AddScoped<IClusterMonitor>(sp => sp.GetRequiredService<ReplayMonitor>());
        builder.Services.AddSingleton(sp => new ClusterCommands(sp.GetRequiredService<INodeDirectory>(), sp.GetRequiredService<ClusterMonitor>(), options.Credentials));
        builder.Services.AddSingleton(sp => new AuditTrail(options.AuditPath, sp.GetRequiredService<ClusterMonitor>(), sp.GetRequiredService<ILogger<AuditTrail>>()));
        // Pages act as their signed-in user: changes only for operators, each one audited.
        builder.Services.AddScoped<IClusterCommands, OperatorCommands>();
        builder.Services.AddScoped<IClusterClock>(sp => new OperatorClock(clockOf(sp), sp.GetRequiredService<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider>(), sp.GetRequiredService<AuditTrail>()));
        builder.Services.AddSingleton(sp => new Model.SafetyAuditor(sp.GetRequiredService<ClusterMonitor>()));
        // Notifications at the bottom left, where they cover no control (top right they hid the cluster panel).
        builder.Services.AddMudServices(mud => mud.SnackbarConfiguration.PositionClass = MudBlazor.Defaults.Classes.Position.BottomLeft);
        // The circuit carries what is typed: its default 32 KB message limit broke the connection on a 30 KB value, and
        // the put that followed sent "". It is raised past the largest input the page accepts.
        // A page that vanished without saying so (a browser killed, a laptop shut) gives its circuit up after 30 s, not
        // the default 3 minutes: with it go its pause and slowdown of the shared clock (OperatorClock).
        builder.Services.AddRazorComponents().AddInteractiveServerComponents(circuit => circuit.DisconnectedCircuitRetentionPeriod = TimeSpan.FromSeconds(30))
            .AddHubOptions(hub => hub.MaximumReceiveMessageSize = Components.Controls.CommandLimits.MaxCircuitMessageBytes);

        WebApplication app = builder.Build();
        app.Services.GetRequiredService<Model.SafetyAuditor>(); // audits from the first observation, not from the first page
        app.Services.GetRequiredService<ClusterRecorder>(); // and records from the start
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseAntiforgery();
        app.MapStaticAssets();
        app.MapDashboardAccess(options);
        var pages = app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        // The recording so far, as a file a teacher can hand out (the page imports it again).
        var recording = app.MapGet("/recording", async (ClusterRecorder recorder, HttpContext http) =>
        {
            http.Response.ContentType = "application/gzip";
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"raft-recording-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json.gz\"";
            await recorder.Snapshot().WriteAsync(http.Response.Body, http.RequestAborted);
        });
        // A value in full, which the key-value view only abbreviates: as a file.
        var value = app.MapGet("/value", async (string key, ClusterCommands commands, HttpContext http) =>
        {
            try
            {
                return await commands.ReadValueAsync(key, http.RequestAborted) is { } found
                    ? Results.File(System.Text.Encoding.UTF8.GetBytes(found), "text/plain; charset=utf-8", "value.txt")
                    : Results.NotFound($"no key {Raft.Engine.StateMachines.ValueText.Show(key)}");
            }
            catch (Grpc.Core.RpcException e)
            {
                return Results.Problem($"the cluster did not answer: {e.Status.Detail}", statusCode: StatusCodes.Status503ServiceUnavailable);
            }
        });
        if (options.LoginRequired)
        {
            pages.RequireAuthorization(); // the pages and their circuits (the _blazor hub)
            recording.RequireAuthorization();
            value.RequireAuthorization();
        }
        return app;
    }
}
