using System.Text.RegularExpressions;
using Microsoft.Extensions.FileSystemGlobbing;
using Raft.Tests.Node;
using Xunit.Abstractions;
using static Raft.Tests.Deploy.Manifests;
using static Raft.Tests.Deploy.Processes;

namespace Raft.Tests.Deploy;

/// <summary>
/// The images' build stages without a container engine (there is none here): each Dockerfile's COPY lines are carried
/// out from a build context filtered by .dockerignore, its RUN dotnet publish runs on that alone, and the published
/// node and dashboard then run as the images would start them (ENTRYPOINT), the dashboard attached to the node.
/// Not checked: the base images, the runtime stage's user and volume (ComposeFileTests reads those), docker itself.
/// </summary>
[Collection(Raft.Tests.Simulation.CpuHeavyCollection.Name)] // two Release builds: alone, so timing tests are not starved
[Trait("Speed", "Slow")]
public sealed partial class DockerfileBuildTests(ITestOutputHelper log)
{
    [GeneratedRegex(@"^(?<op>[A-Z]+)\s+(?<args>.*)$")]
    private static partial Regex Instruction();

    /// <summary>A build argument in a RUN line: <c>${NAME}</c> or <c>${NAME:-default}</c>.</summary>
    [GeneratedRegex(@"\$\{(?<name>\w+)(:-(?<default>[^}]*))?\}")]
    private static partial Regex BuildArg();

    [Fact]
    public async Task Each_image_publishes_from_only_what_its_dockerfile_copies_and_its_entrypoint_serves()
    {
        string work = Directory.CreateTempSubdirectory("raft-images-").FullName;
        string context = Path.Combine(work, "context");
        CopyContext(context);
        string node = await BuildStageAsync("Raft.Node/Dockerfile", context, Path.Combine(work, "node"));
        string dashboard = await BuildStageAsync("Raft.Dashboard/Dockerfile", context, Path.Combine(work, "dashboard"));

        MemberSpec spec = MemberSpec.Create("n1", work);
        await using var nodeProcess = Entrypoint("Raft.Node/Dockerfile", node,
            ["--id", "n1", "--grpc-url", spec.GrpcUrl, "--http-url", spec.HttpUrl, "--data-dir", spec.DataDir, "--members", $"n1={spec.GrpcUrl}"]);
        int dashboardPort = Ports.Free();
        await using var dashboardProcess = Entrypoint("Raft.Dashboard/Dockerfile", dashboard, ["--urls", $"http://127.0.0.1:{dashboardPort}"],
            new() { ["Dashboard__Nodes"] = $"n1={spec.GrpcUrl}|{spec.HttpUrl}", ["Dashboard__AuditFile"] = Path.Combine(work, "audit.jsonl") });

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        async Task<bool> Ok(string url)
        {
            try
            {
                return (await http.GetAsync(url)).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }
        await NodeTestCluster.WaitUntilAsync(() => Ok($"{spec.HttpUrl}/readyz"), seconds: 60, what: "the published node to be ready");
        await NodeTestCluster.WaitUntilAsync(() => Ok($"http://127.0.0.1:{dashboardPort}/"), seconds: 60, what: "the published dashboard to answer");
        string page = await http.GetStringAsync($"http://127.0.0.1:{dashboardPort}/");
        Assert.Contains("n1", page, StringComparison.Ordinal);
        // The static assets a browser needs are in the published output (they are not in the source tree).
        Match css = Regex.Match(page, "href=\"(?<href>_content/MudBlazor/MudBlazor[^\"]*\\.css)\"");
        Assert.True(css.Success, "the page links no MudBlazor stylesheet");
        Assert.True(await Ok($"http://127.0.0.1:{dashboardPort}/{css.Groups["href"].Value}"), $"{css.Groups["href"].Value} is not served");
        Directory.Delete(work, recursive: true);
    }

    /// <summary>What `docker build .` would send: the repository minus what .dockerignore leaves out.</summary>
    private static void CopyContext(string context)
    {
        var matcher = new Matcher();
        matcher.AddInclude("**/*");
        foreach (string line in File.ReadAllLines(PathOf(".dockerignore")).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            matcher.AddExclude(line.EndsWith('/') ? line + "**" : line);
        }
        foreach (string file in matcher.GetResultsInFullPath(Root))
        {
            string target = Path.Combine(context, Path.GetRelativePath(Root, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        Assert.False(Directory.Exists(Path.Combine(context, "Raft.Node", "bin")), ".dockerignore let build output into the context");
    }

    /// <summary>Carries out the build stage (up to the second FROM): COPY from the context, RUN dotnet publish into <paramref name="output"/>.</summary>
    private async Task<string> BuildStageAsync(string dockerfile, string context, string output)
    {
        string src = Path.Combine(output, "src");
        string published = Path.Combine(output, "app");
        Directory.CreateDirectory(src);
        int stages = 0;
        var buildArgs = new Dictionary<string, string>();
        foreach (string line in File.ReadAllLines(PathOf(dockerfile)))
        {
            Match instruction = Instruction().Match(line.Trim());
            if (!instruction.Success)
            {
                continue;
            }
            string[] args = instruction.Groups["args"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (instruction.Groups["op"].Value)
            {
                case "FROM" when ++stages > 1:
                    Assert.True(File.Exists(Path.Combine(published, EntrypointDll(dockerfile))), $"{dockerfile}: the build stage did not publish {EntrypointDll(dockerfile)}");
                    return published;
                case "WORKDIR":
                    Assert.Equal("/src", args[0]); // the COPY destinations below are relative to it
                    break;
                case "COPY":
                    string destination = Path.Combine(src, args[^1]);
                    foreach (string source in args[..^1])
                    {
                        string from = Path.Combine(context, source);
                        Assert.True(File.Exists(from) || Directory.Exists(from), $"{dockerfile}: COPY {source}: not in the build context");
                        if (Directory.Exists(from))
                        {
                            CopyDirectory(from, destination);
                        }
                        else
                        {
                            Directory.CreateDirectory(destination);
                            File.Copy(from, Path.Combine(destination, Path.GetFileName(source)));
                        }
                    }
                    break;
                case "ARG":
                    // BuildKit sets the platform's: the same as this machine's, for a build here.
                    buildArgs[args[0]] = args[0] == "TARGETARCH"
                        ? (System.Runtime.InteropServices.RuntimeInformation.OSArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? "arm64" : "amd64")
                        : "";
                    break;
                case "RUN":
                    Assert.Equal("dotnet", args[0]);
                    string[] arguments = [.. args[1..].Select(a => a == "/app" ? published : BuildArg().Replace(a, m =>
                        buildArgs.GetValueOrDefault(m.Groups["name"].Value) is { Length: > 0 } value ? value : m.Groups["default"].Value))];
                    await ExpectAsync(log, 0, "dotnet", src, arguments);
                    break;
            }
        }
        throw new InvalidOperationException($"{dockerfile} has no runtime stage");
    }

    private static string[] EntrypointArguments(string dockerfile)
    {
        string line = File.ReadAllLines(PathOf(dockerfile)).Single(l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal));
        return System.Text.Json.JsonSerializer.Deserialize<string[]>(line["ENTRYPOINT ".Length..])!;
    }

    private static string EntrypointDll(string dockerfile) => EntrypointArguments(dockerfile)[1];

    /// <summary>Starts the published app as the image's ENTRYPOINT would (its fixed arguments first, then these).</summary>
    private static Started Entrypoint(string dockerfile, string published, string[] arguments, Dictionary<string, string>? environment = null)
    {
        string[] entrypoint = EntrypointArguments(dockerfile);
        Assert.Equal("dotnet", entrypoint[0]);
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { WorkingDirectory = published, RedirectStandardOutput = true, RedirectStandardError = true };
        // The image's own arguments as they are; ours come last, so a --urls of ours (loopback) wins over the image's.
        foreach (string argument in entrypoint[1..].Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        foreach ((string key, string value) in environment ?? [])
        {
            start.Environment[key] = value;
        }
        var process = System.Diagnostics.Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new Started(process);
    }

    private sealed class Started(System.Diagnostics.Process process) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
            await process.WaitForExitAsync();
            process.Dispose();
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }
}
