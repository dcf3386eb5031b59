using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Raft.Engine.Hosting;
using Raft.Node.Hosting;

namespace Raft.Node.Metrics;

/// <summary>
/// A node's telemetry: metrics (scraped at /metrics), traces of client calls and of the engine's writes, and the console
/// log's format; OTLP export when configured (<see cref="NodeOptions.OtlpEndpoint"/>, else OTEL_EXPORTER_OTLP_ENDPOINT).
/// </summary>
internal static class NodeTelemetry
{
    public const string ServiceName = "raft-node";

    /// <summary>The client and admin planes are traced; peer streams, the hub, health probes and scrapes are not (noise).</summary>
    private static readonly string[] TracedPaths = ["/raft.v1.KeyValue/", "/raft.v1.Admin/"];

    public static void Add(WebApplicationBuilder builder, NodeOptions options)
    {
        if (options.LogFormat == "json")
        {
            builder.Logging.AddJsonConsole(json =>
            {
                json.UseUtcTimestamp = true;
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            // One line per event, stamped in UTC: an operator lines up the members' logs by time.
            builder.Logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.UseUtcTimestamp = true;
                console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            });
        }
        OpenTelemetryBuilder telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName, serviceInstanceId: options.Id))
            .WithMetrics(metrics => metrics.AddMeter(NodeMetrics.MeterName).AddPrometheusExporter());
        // What to trace is set here; a tracer provider exists only once something exports spans (OTLP below, or a host
        // embedding the node that calls WithTracing with its own exporter), so an untraced node pays nothing.
        builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing
            .AddSource(RaftTracing.SourceName)
            .AddAspNetCoreInstrumentation(aspNet => aspNet.Filter = http =>
                TracedPaths.Any(p => http.Request.Path.Value?.StartsWith(p, StringComparison.Ordinal) == true))
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.TraceSampleRatio))));
        if (options.OtlpEndpoint is { } endpoint)
        {
            telemetry.UseOtlpExporter(options.OtlpProtocol == "http" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc, new Uri(endpoint));
        }
        else if (Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 })
        {
            telemetry.UseOtlpExporter(); // the standard OTEL_EXPORTER_OTLP_* variables say where and how
        }
    }
}
