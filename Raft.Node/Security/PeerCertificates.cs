using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Raft.Node.Hosting;

namespace Raft.Node.Security;

/// <summary>
/// Mutual TLS between peers: this node's certificate and the CA its peers' certificates must chain to. A
/// certificate's common name is its holder's node id, checked both ways: a node accepts a connection only from a
/// certificate of the CA and then only messages from the id that certificate names, and it dials a peer only if the
/// server it reaches presents that peer's certificate. The TLS host name is not checked (peers are named by id).
/// </summary>
public sealed class PeerCertificates
{
    private readonly X509Certificate2Collection _authorities;

    private PeerCertificates(X509Certificate2 own, X509Certificate2Collection authorities)
    {
        Own = own;
        _authorities = authorities;
    }

    public X509Certificate2 Own { get; }

    /// <summary>Loads the PEM files named by the options; throws <see cref="FormatException"/> saying which file is wrong.</summary>
    public static PeerCertificates Load(NodeOptions options)
    {
        X509Certificate2 own;
        try
        {
            using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(options.PeerCertificate!, options.PeerKey!);
            // Re-imported so that the key is usable by the TLS stack on every platform (a PEM key is ephemeral).
            own = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"--peer-cert {options.PeerCertificate} with --peer-key {options.PeerKey}: {e.Message}", e);
        }
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(options.PeerCa!);
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"--peer-ca {options.PeerCa}: {e.Message}", e);
        }
        if (authorities.Count == 0)
        {
            throw new FormatException($"--peer-ca {options.PeerCa} holds no certificate");
        }
        var certificates = new PeerCertificates(own, authorities);
        if (IdOf(own) != options.Id)
        {
            throw new FormatException($"--peer-cert {options.PeerCertificate} is for '{IdOf(own)}', not for this node ({options.Id}): its common name must be the node id");
        }
        if (certificates.Problem(own) is { } problem)
        {
            throw new FormatException($"--peer-cert {options.PeerCertificate} is not accepted by --peer-ca {options.PeerCa}: {problem}");
        }
        return certificates;
    }

    /// <summary>The node id a certificate speaks for: its subject's common name.</summary>
    public static string IdOf(X509Certificate2 certificate) => certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);

    /// <summary>Null when <paramref name="certificate"/> chains to one of the CAs and is valid now; else why not.</summary>
    public string? Problem(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // a private CA of a cluster publishes no revocation lists
        if (chain.Build(certificate))
        {
            return null;
        }
        return string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).DefaultIfEmpty("not trusted"));
    }

    /// <summary>Kestrel's side: every connection to the peer endpoint must present a certificate of the CA.</summary>
    public void ConfigureServer(HttpsConnectionAdapterOptions https, ILogger logger)
    {
        https.ServerCertificate = Own;
        https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
        https.ClientCertificateValidation = (certificate, _, _) =>
        {
            if (Problem(certificate) is not { } problem)
            {
                return true;
            }
            logger.LogWarning("refused a peer connection with the certificate of '{Subject}': {Problem}", certificate.Subject, problem);
            return false;
        };
    }

    /// <summary>The dialing side: present this node's certificate, and talk only to a server that holds <paramref name="peer"/>'s.</summary>
    public SslClientAuthenticationOptions ClientOptions(string peer) => new()
    {
        ClientCertificates = [Own],
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Own,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            certificate is X509Certificate2 server && IdOf(server) == peer && Problem(server) is null,
    };
}
