using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Raft.Node.Hosting;

namespace Raft.Tests.Node;

/// <summary>What an operator reading a node's log at the default level sees.</summary>
public sealed class NodeLogTests
{
    private sealed class CapturingProvider : ILoggerProvider
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Capturing(this);

        public void Dispose()
        {
        }

        private sealed class Capturing(CapturingProvider provider) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    provider.Lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
                }
            }
        }
    }

    [Fact]
    public async Task The_console_log_has_one_line_per_event_each_with_its_time()
    {
        // Before, each event took two lines ("info: Category[0]", then the message) and none said when it happened.
        string folder = Directory.CreateTempSubdirectory("raft-log-").FullName;
        MemberSpec spec = MemberSpec.Create("n1", folder);
        NodeProcess node = NodeProcess.Start(spec, $"n1={spec.GrpcUrl}", logLevel: "Information");
        try
        {
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(node.LastLines.Any(l => l.Contains("the leader is n1", StringComparison.Ordinal))), what: "the leader's line");
            string line = node.LastLines.First(l => l.Contains("the leader is n1", StringComparison.Ordinal));
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: Raft\.Node\.Hosting\.ClusterMember\[0\] node n1: the leader is n1 in term 1$", line);
            Assert.All(node.LastLines, l => Assert.Matches(@"^\d{4}-\d\d-\d\dT", l));
        }
        finally
        {
            await node.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task The_info_log_says_when_a_node_changes_term_becomes_leader_and_takes_a_snapshot()
    {
        var capture = new CapturingProvider();
        string folder = Directory.CreateTempSubdirectory("raft-log-").FullName;
        MemberSpec spec = MemberSpec.Create("n1", folder);
        var app = NodeApp.Build(spec.Options($"n1={spec.GrpcUrl}", null), builder =>
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(capture);
            builder.Logging.SetMinimumLevel(LogLevel.Information);
        });
        await app.StartAsync();
        try
        {
            ClusterMember member = app.Services.GetRequiredService<ClusterMember>();
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(member.Node.Status.Role == Raft.Engine.Consensus.Role.Leader), what: "a leader");
            await member.Node.ProposeAsync(Raft.Engine.StateMachines.KvCommand.Put("k", "v").Encode());
            await member.Node.TakeSnapshotAsync();
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(capture.Lines.Any(l => l.Contains("took a snapshot", StringComparison.Ordinal))), what: "the snapshot's line");
            Assert.Contains(capture.Lines, l => l.Contains("node n1 is in term 1", StringComparison.Ordinal));
            Assert.Contains(capture.Lines, l => l.Contains("node n1 became Leader in term 1", StringComparison.Ordinal));
            Assert.Contains(capture.Lines, l => l.Contains("node n1 starts an election for term 1: it has heard from no leader since it started", StringComparison.Ordinal));
            Assert.Contains(capture.Lines, l => l.Contains("node n1: the leader is n1 in term 1", StringComparison.Ordinal));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task With_log_format_json_every_console_line_is_a_json_object_that_carries_the_event_fields()
    {
        string folder = Directory.CreateTempSubdirectory("raft-json-log-").FullName;
        MemberSpec spec = MemberSpec.Create("n1", folder);
        await using (NodeProcess node = NodeProcess.Start(spec, $"n1={spec.GrpcUrl}", "Information", "--log-format", "json"))
        {
            await NodeTestCluster.WaitUntilAsync(() => Task.FromResult(node.LastLines.Any(l => l.Contains("became Leader", StringComparison.Ordinal))),
                seconds: 30, what: "the leader line");
            foreach (string line in node.LastLines)
            {
                using System.Text.Json.JsonDocument parsed = System.Text.Json.JsonDocument.Parse(line); // throws on a line that is not JSON
                Assert.True(parsed.RootElement.TryGetProperty("Timestamp", out _), line);
                Assert.True(parsed.RootElement.TryGetProperty("LogLevel", out _), line);
            }
            string leaderLine = node.LastLines.First(l => l.Contains("became Leader", StringComparison.Ordinal));
            using System.Text.Json.JsonDocument leader = System.Text.Json.JsonDocument.Parse(leaderLine);
            System.Text.Json.JsonElement state = leader.RootElement.GetProperty("State");
            // A collector can filter on the fields, not only on the text.
            Assert.Equal("n1", state.GetProperty("Node").GetString());
            Assert.Equal("Leader", state.GetProperty("Role").GetString());
            Assert.Equal("Raft.Node.Hosting.ClusterMember", leader.RootElement.GetProperty("Category").GetString());
            Assert.EndsWith("Z", leader.RootElement.GetProperty("Timestamp").GetString(), StringComparison.Ordinal);
        }
        Directory.Delete(folder, recursive: true);
    }
}
