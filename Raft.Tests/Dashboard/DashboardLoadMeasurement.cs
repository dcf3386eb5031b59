using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Raft.Client;
using Xunit.Abstractions;

namespace Raft.Tests.Dashboard;

/// <summary>A measurement, not a test: it runs only with RAFT_MEASURE=1 and prints numbers (the machines are too noisy to assert on speed).</summary>
public sealed class MeasurementFactAttribute : FactAttribute
{
    public MeasurementFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("RAFT_MEASURE") != "1")
        {
            Skip = "a measurement: run with RAFT_MEASURE=1";
        }
    }
}

[Collection(DashboardCollection.Name)]
public sealed class DashboardLoadMeasurement(DashboardFixture fixture, ITestOutputHelper output)
{
    /// <summary>
    /// Writes as fast as 32 concurrent clients can for 15 s while the dashboard is open, and reports how often the page
    /// re-rendered (DOM mutation batches), how busy the browser's main thread was, and the browser processes' CPU.
    /// </summary>
    [MeasurementFact]
    public async Task Dashboard_responsiveness_under_a_write_load()
    {
        await MeasureAsync("messages not drawn (flight time 0)", TimeSpan.Zero);
        // Every message held for 5 ms of cluster time, so that the picture draws the messages in flight all along.
        await MeasureAsync("messages in flight drawn (flight time 5 ms)", TimeSpan.FromMilliseconds(5));
    }

    private async Task MeasureAsync(string mode, TimeSpan flightTime)
    {
        var gate = fixture.Services.GetRequiredService<Raft.Dashboard.Cluster.EmbeddedClusterClock>().Shared.Gate;
        gate.FlightTime = flightTime;
        try
        {
            await MeasureAsync(mode);
        }
        finally
        {
            gate.FlightTime = TimeSpan.Zero;
        }
    }

    private async Task MeasureAsync(string mode)
    {
        await using IBrowserContext context = await fixture.Browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
        IPage page = await context.NewPageAsync();
        await page.GotoAsync(fixture.Url);
        await page.WaitForSelectorAsync("[data-testid=dashboard][data-interactive=true]");
        await page.WaitForSelectorAsync("[data-testid^=node-][data-role=Leader]");
        ICDPSession cdp = await context.NewCDPSessionAsync(page);
        await cdp.SendAsync("Performance.enable");
        await page.EvaluateAsync("() => { window.__renders = 0; window.__messages = 0; new MutationObserver(() => { window.__renders++; window.__messages = Math.max(window.__messages, document.querySelectorAll('[data-testid=msg]').length); }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true }); }");

        using var client = new RaftClient(fixture.Endpoints);
        double taskBefore = await TaskDuration(cdp);
        double cpuBefore = ChromiumCpuSeconds();
        var clock = Stopwatch.StartNew();
        long writes = 0;
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async worker =>
        {
            while (clock.Elapsed < TimeSpan.FromSeconds(15))
            {
                await client.PutAsync($"load-{worker}", $"{Interlocked.Increment(ref writes)}");
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        double busy = (await TaskDuration(cdp) - taskBefore) / seconds;
        double cpu = (ChromiumCpuSeconds() - cpuBefore) / seconds;
        long renders = await page.EvaluateAsync<long>("() => window.__renders");
        long messages = await page.EvaluateAsync<long>("() => window.__messages");
        output.WriteLine($"{mode}: {writes} writes in {seconds:F1} s ({writes / seconds:F0}/s); the page re-rendered {renders / seconds:F1} times/s " +
            $"(DOM mutation batches); at most {messages} messages drawn at once; browser main thread busy {busy:P0}; chromium processes {cpu:P0} of one core");
        Assert.True(writes > 0);
    }

    private static async Task<double> TaskDuration(ICDPSession cdp)
    {
        JsonElement? result = await cdp.SendAsync("Performance.getMetrics");
        return result!.Value.GetProperty("metrics").EnumerateArray().First(m => m.GetProperty("name").GetString() == "TaskDuration").GetProperty("value").GetDouble();
    }

    /// <summary>User plus system CPU time of every chromium process, from /proc (0 where /proc is missing).</summary>
    private static double ChromiumCpuSeconds()
    {
        double ticks = 0;
        foreach (Process process in Process.GetProcesses().Where(p => p.ProcessName.Contains("chrom", StringComparison.OrdinalIgnoreCase)))
        {
            try
            {
                ticks += process.TotalProcessorTime.TotalSeconds;
            }
            catch (InvalidOperationException)
            {
            }
        }
        return ticks;
    }
}
