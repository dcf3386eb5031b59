namespace Raft.Tests.Node;

/// <summary>A node process whose data folder cannot be used refuses to start: one line naming the file, exit code 65.</summary>
public sealed class NodeStartupTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("raft-startup-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task A_second_process_on_the_same_data_folder_and_a_damaged_file_are_refused_with_one_line()
    {
        MemberSpec spec = MemberSpec.Create("n1", _folder);
        string members = $"n1={spec.GrpcUrl}";
        await using (NodeProcess first = NodeProcess.Start(spec, members))
        {
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(File.Exists(Path.Combine(spec.DataDir, "raft.db"))), seconds: 30, what: "the first node to open its store");
            await Task.Delay(500);
            MemberSpec twin = spec with { GrpcUrl = $"http://127.0.0.1:{Ports.Free()}", HttpUrl = $"http://127.0.0.1:{Ports.Free()}" };
            await AssertRefusedAsync(twin, $"n1={twin.GrpcUrl}", "in use by another process");
            // Found by a hostile user: deleting raft.db.lock let a second process in. Nothing beside the store guards it now.
            File.Delete(Path.Combine(spec.DataDir, "raft.db.lock"));
            await AssertRefusedAsync(twin, $"n1={twin.GrpcUrl}", "in use by another process");
            Assert.False(first.Process.HasExited, "the first node keeps running");
        }

        // A node started with another --id on n1's data folder is refused: it would vote and log as n1 under a new name.
        MemberSpec impostor = spec with { Id = "n2" };
        await AssertRefusedAsync(impostor, $"n2={impostor.GrpcUrl}", "belongs to node n1, not n2");

        await File.WriteAllTextAsync(Path.Combine(spec.DataDir, "raft.db"), "not a database at all");
        File.Delete(Path.Combine(spec.DataDir, "raft.db-wal"));
        File.Delete(Path.Combine(spec.DataDir, "raft.db-shm"));
        await AssertRefusedAsync(spec, members, "not a SQLite database");
    }

    [Fact]
    public async Task A_member_stopped_by_SIGTERM_while_its_peers_stream_to_it_exits_at_once_and_cleanly()
    {
        // Found by a hostile user: a node took about 45 s to exit after SIGTERM (Kestrel waited its whole shutdown timeout
        // for the peers' streams, which never end) and then died of an ObjectDisposedException ('IServiceProvider').
        MemberSpec[] specs = [.. new[] { "n1", "n2", "n3" }.Select(id => MemberSpec.Create(id, _folder))];
        string members = string.Join(",", specs.Select(s => $"{s.Id}={s.GrpcUrl}"));
        var nodes = specs.Select(spec => NodeProcess.Start(spec, members)).ToList();
        try
        {
            using (var client = new Raft.Client.RaftClient(specs.Select(s => s.GrpcUrl)))
            {
                for (int i = 0; i < 20; i++)
                {
                    await client.PutAsync($"k{i}", "v"); // the peers' streams are open and busy
                }
            }
            NodeProcess stopped = nodes[0];
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", stopped.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }
            // Well inside the host's 30 s shutdown timeout, which it used to wait out in full.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await stopped.Process.WaitForExitAsync(timeout.Token);
            await Task.Delay(200); // the last lines of standard error
            Assert.True(stopped.Process.ExitCode == 0, $"exit code {stopped.Process.ExitCode}: {string.Join("\n", stopped.ErrorLines.TakeLast(5))}");
            Assert.DoesNotContain(stopped.ErrorLines, l => l.Contains("Unhandled exception", StringComparison.Ordinal));
        }
        finally
        {
            foreach (NodeProcess node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static async Task AssertRefusedAsync(MemberSpec spec, string members, string problem)
    {
        await using NodeProcess node = NodeProcess.Start(spec, members);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await node.Process.WaitForExitAsync(timeout.Token);
        await Task.Delay(200); // the last lines of standard error
        Assert.Equal(65, node.Process.ExitCode);
        string error = Assert.Single(node.ErrorLines, l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains(Path.Combine(spec.DataDir, "raft.db"), error, StringComparison.Ordinal);
        Assert.Contains(problem, error, StringComparison.Ordinal);
        Assert.DoesNotContain(node.ErrorLines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal)); // no stack trace
    }
}
