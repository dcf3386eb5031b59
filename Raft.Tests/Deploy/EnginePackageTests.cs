using System.Reflection;
using System.Xml.Linq;
using static Raft.Tests.Deploy.Manifests;

namespace Raft.Tests.Deploy;

/// <summary>
/// Issue 13 item 3: the engine as NuGet packages. Every public type is documented; `dotnet pack` makes Raft.Engine and
/// Raft.Engine.Core with their metadata; and a program outside this repository, restored from a local feed with only
/// those packages, runs a three-node cluster with a state machine and a transport of its own.
/// </summary>
[Trait("Speed", "Slow")]
public sealed class EnginePackageTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Every_public_type_of_the_engine_has_a_summary()
    {
        foreach (Assembly assembly in new[] { typeof(Raft.Engine.Hosting.RaftNode).Assembly, typeof(Raft.Engine.Consensus.RaftCore).Assembly })
        {
            string file = Path.ChangeExtension(assembly.Location, ".xml");
            Assert.True(File.Exists(file), $"{file}: no XML documentation was generated");
            var documented = XDocument.Load(file).Descendants("member")
                .Where(m => !string.IsNullOrWhiteSpace(m.Element("summary")?.Value))
                .Select(m => m.Attribute("name")!.Value).ToHashSet(StringComparer.Ordinal);
            var missing = assembly.GetExportedTypes().Select(t => $"T:{t.FullName!.Replace('+', '.')}").Where(name => !documented.Contains(name)).ToList();
            Assert.True(missing.Count == 0, $"{assembly.GetName().Name}: public types without a <summary>: {string.Join(", ", missing)}");
        }
    }

    [Fact]
    public async Task A_program_outside_the_repository_runs_a_cluster_from_the_packages()
    {
        string folder = Directory.CreateTempSubdirectory("raft-package-").FullName;
        string feed = Path.Combine(folder, "feed");
        // A version of its own, so that the machine's package cache never serves an earlier build of these packages.
        string version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";
        foreach (string project in new[] { "Raft.Engine.Core", "Raft.Engine" })
        {
            await DotnetAsync(Root, "pack", PathOf(project, $"{project}.csproj"), "-o", feed, $"-p:Version={version}", "-p:ContinuousIntegrationBuild=true");
        }
        Assert.True(File.Exists(Path.Combine(feed, $"Raft.Engine.{version}.nupkg")));
        using (var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"Raft.Engine.{version}.nupkg")))
        {
            var entries = package.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("README.md", entries);
            Assert.Contains("lib/net10.0/Raft.Engine.xml", entries);
            string nuspec = new StreamReader(package.GetEntry("Raft.Engine.nuspec")!.Open()).ReadToEnd();
            Assert.Contains("<license type=\"expression\">Apache-2.0</license>", nuspec, StringComparison.Ordinal);
            Assert.Contains($"<dependency id=\"Raft.Engine.Core\" version=\"{version}\"", nuspec, StringComparison.Ordinal);
        }

        string consumer = Path.Combine(folder, "consumer");
        Directory.CreateDirectory(consumer);
        File.Copy(PathOf("Raft.Tests", "Deploy", "EngineConsumer", "Program.cs"), Path.Combine(consumer, "Program.cs"));
        File.WriteAllText(Path.Combine(consumer, "consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Raft.Engine" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        // The local feed beside the machine's own sources (Raft.Engine's dependencies come from there).
        File.WriteAllText(Path.Combine(consumer, "nuget.config"), $"""
            <configuration>
              <packageSources><add key="local" value="{feed}" /></packageSources>
            </configuration>
            """);
        await DotnetAsync(consumer, "build", "-c", "Release");
        string run = await DotnetAsync(consumer, "run", "-c", "Release", "--no-build");
        Assert.Contains("totals a=210, b=210, c=210", run, StringComparison.Ordinal);
    }

    private Task<string> DotnetAsync(string directory, params string[] arguments) => Processes.ExpectAsync(output, 0, "dotnet", directory, arguments);
}
