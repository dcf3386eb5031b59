using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Raft.Dashboard;
using Raft.Dashboard.Cluster;
using Raft.Tests.Node;

namespace Raft.Tests.Dashboard;

/// <summary>
/// The real dashboard with its embedded three-node cluster on a free loopback port, and a headless Chromium driven by
/// Playwright. The browser is Debian's chromium (RAFT_CHROMIUM overrides the path); where it is missing, Playwright's own.
/// Screenshots, and on failure the page's HTML and console, go to TestResults/dashboard/.
/// </summary>
public sealed class DashboardFixture : IAsyncLifetime
{
    private WebApplication? _app;
    private IPlaywright? _playwright;

    public string Url { get; private set; } = "";

    /// <summary>The embedded cluster's gRPC endpoints.</summary>
    public IEnumerable<string> Endpoints => _app!.Services.GetRequiredService<INodeDirectory>().Nodes.Select(n => n.GrpcUrl);
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The dashboard's services (its embedded cluster's clock, for measurements).</summary>
    public IServiceProvider Services => _app!.Services;
    public string DataDir { get; } = Directory.CreateTempSubdirectory("raft-dashboard-").FullName;

    public static string ArtifactsDirectory { get; } = Directory.CreateDirectory(Path.Combine(
        Environment.GetEnvironmentVariable("RAFT_ARTIFACTS") ?? Path.Combine(AppContext.BaseDirectory, "TestResults"), "dashboard")).FullName;

    public async Task InitializeAsync()
    {
        Url = $"http://127.0.0.1:{Ports.Free()}";
        _app = DashboardApp.Build(new DashboardOptions { DataDir = DataDir, Fresh = true }, Url);
        await _app.StartAsync();

        _playwright = await Playwright.CreateAsync();
        string? chromium = FindOrInstallChromium();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    private static readonly string[] KnownBrowsers = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

    /// <summary>
    /// RAFT_CHROMIUM, else a system Chromium, else Playwright's own browser (installed now if it can be downloaded),
    /// else, as root on Debian, Debian's chromium package. Null means "Playwright's own".
    /// </summary>
    private static string? FindOrInstallChromium()
    {
        if (Environment.GetEnvironmentVariable("RAFT_CHROMIUM") is { Length: > 0 } configured)
        {
            return configured;
        }
        if (KnownBrowsers.FirstOrDefault(File.Exists) is { } system)
        {
            return system;
        }
        if (Microsoft.Playwright.Program.Main(["install", "chromium"]) == 0)
        {
            return null;
        }
        if (Environment.UserName == "root" && File.Exists("/usr/bin/apt-get"))
        {
            using var install = System.Diagnostics.Process.Start("/bin/sh", ["-c", "apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium"]);
            install.WaitForExit();
        }
        return KnownBrowsers.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("no Chromium: install Debian's chromium (apt-get install chromium) or set RAFT_CHROMIUM");
    }

    public async Task DisposeAsync()
    {
        if (Browser != null)
        {
            await Browser.CloseAsync();
        }
        _playwright?.Dispose();
        if (_app != null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

[CollectionDefinition(Name)]
public sealed class DashboardCollection : ICollectionFixture<DashboardFixture>
{
    public const string Name = "Dashboard in a browser";
}
