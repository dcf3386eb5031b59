using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.SignalR;
using Raft.Client.Events;
using Raft.Node.Events;
using Raft.Node.Metrics;
using Raft.Node.Security;
using Raft.Node.Services;

namespace Raft.Node.Hosting;

/// <summary>Builds the node's web host: Kestrel on two endpoints (gRPC over HTTP/2, and HTTP/1.1 for the hub, health and metrics).</summary>
public static class NodeApp
{
    /// <summary>
    /// appsettings are read once: watching them for changes watches the whole content root, and with it every write to
    /// a data folder there (a thread that took 6% of a node's CPU under load).
    /// </summary>
    internal const string NoConfigurationWatching = "--hostBuilder:reloadConfigOnChange=false";

    /// <summary>Builds from the command line, the environment and appsettings (section "Raft").</summary>
    public static WebApplication Build(string[] args)
    {
        NodeOptions.CheckSwitches(args);
        WebApplicationBuilder builder = WebApplication.CreateBuilder([.. args, NoConfigurationWatching]);
        builder.Configuration.AddCommandLine(args, NodeOptions.Switches.ToDictionary(s => s.Key, s => s.Value));
        var options = new NodeOptions();
        builder.Configuration.GetSection(NodeOptions.Section).Bind(options);
        return Build(builder, options);
    }

    /// <summary>Builds for given options (tests and embedding hosts use this).</summary>
    public static WebApplication Build(NodeOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder([NoConfigurationWatching]);
        configure?.Invoke(builder);
        return Build(builder, options);
    }

    private static WebApplication Build(WebApplicationBuilder builder, NodeOptions options)
    {
        options.Validate();
        AccessTokens tokens;
        try
        {
            tokens = AccessTokens.Load(options.TokensFile);
        }
        catch (IOException e)
        {
            throw new FormatException($"--tokens-file {options.TokensFile}: {e.Message}", e);
        }
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Grpc", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.None); // HubAccess logs what matters
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            Listen(kestrel, "--grpc-url", options.GrpcUrl, HttpProtocols.Http2); // h2c: cleartext HTTP/2 needs its own endpoint
            Listen(kestrel, "--http-url", options.HttpUrl, HttpProtocols.Http1);
            if (options.PeerUrl is { } peerUrl)
            {
                Listen(kestrel, "--peer-url", peerUrl, HttpProtocols.Http2, !options.PeerTls ? null : https =>
                    kestrel.ApplicationServices.GetRequiredService<ClusterMember>().Certificates!.ConfigureServer(
                        https, kestrel.ApplicationServices.GetRequiredService<ILoggerFactory>().CreateLogger<PeerCertificates>()));
            }
        });
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(tokens);
        if (options.PeerTls)
        {
            builder.Services.AddSingleton(PeerCertificates.Load(options)); // a wrong file is a start-up error, like any bad option
        }
        builder.Services.AddSingleton<AccessControl>();
        builder.Services.AddSingleton<NodeMetrics>();
        builder.Services.AddSingleton<ClusterMember>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClusterMember>());
        builder.Services.AddSingleton<EventStreamer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EventStreamer>());
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = Math.Max(16 * 1024 * 1024, options.MaxCommandBytes * 2);
            grpc.Interceptors.Add<AccessInterceptor>();
            grpc.Interceptors.Add<MalformedStreams>(); // after access: only a caller allowed to stream gets this far
        });
        builder.Services.AddSignalR(hub => hub.AddFilter<HubAccess>());
        NodeTelemetry.Add(builder, options);

        WebApplication app = builder.Build();
        app.UseMiddleware<PlaneGuard>();
        app.Use(HubAccess.RequireReaderAsync);
        app.UseMiddleware<MalformedRequests>();
        app.MapGrpcService<PeerService>();
        app.MapGrpcService<KeyValueService>();
        app.MapGrpcService<AdminService>();
        app.MapHub<RaftHub>(HubContract.Path);
        app.MapGet("/healthz", (ClusterMember member) => member.Failure is { } failure
            ? Results.Json(new { member.Id, Failed = failure.Message }, statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Ok(new
            {
                member.Id,
                Role = member.Node.Status.Role.ToString(),
                member.Node.Status.Term,
                Leader = member.Node.Status.LeaderId,
                Storage = member.Node.StorageProblem is { } full ? full.Message : "ok",
            }));
        // Liveness is /healthz (the process and its engine work); readiness is this (it can serve clients now).
        app.MapGet("/readyz", (ClusterMember member) => member.NotReadyReason() is { } reason
            ? Results.Json(new { member.Id, Ready = false, Reason = reason }, statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Ok(new { member.Id, Ready = true, Leader = member.Node.Status.LeaderId }));
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation("{Security}", Describe(options, tokens)));
        return app;
    }

    /// <summary>One line at start saying what is protected and what is not.</summary>
    internal static string Describe(NodeOptions options, AccessTokens tokens)
    {
        string clients = tokens.Required ? "clients need a bearer token" : "no client authentication (--tokens-file): anyone who reaches --grpc-url and --http-url may read, write and operate";
        string peers = options.PeerTls ? "peers use mutual TLS on --peer-url"
            : options.SeparatePeerPlane ? "peers have their own --peer-url but do not authenticate (--peer-ca)"
            : "peers share --grpc-url and do not authenticate";
        string faults = options.EnableFaultInjection ? "fault injection is on" : "fault injection is off";
        return $"security: {clients}; {peers}; {faults}";
    }

    private static void Listen(KestrelServerOptions kestrel, string name, string address, HttpProtocols protocols,
        Action<Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions>? https = null)
    {
        var url = new Uri(address);
        Action<ListenOptions> configure = listen =>
        {
            listen.Protocols = protocols;
            if (url.Scheme == Uri.UriSchemeHttps && https != null)
            {
                listen.UseHttps(https);
            }
            else if (url.Scheme == Uri.UriSchemeHttps)
            {
                // TLS by configuration: the certificate comes from Kestrel:Certificates:Default (path and password).
                listen.UseHttps();
            }
        };
        if (url.Host is "localhost")
        {
            kestrel.ListenLocalhost(url.Port, configure);
        }
        else if (url.Host is "*" or "+" or "0.0.0.0")
        {
            kestrel.ListenAnyIP(url.Port, configure);
        }
        else
        {
            foreach (IPAddress ip in NodeOptions.ListenAddresses(name, address)!)
            {
                kestrel.Listen(ip, url.Port, configure);
            }
        }
    }
}
