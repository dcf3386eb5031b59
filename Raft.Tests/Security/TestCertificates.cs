using Raft.Tests.Node;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Raft.Tests.Security;

/// <summary>A throwaway CA and node certificates (common name = node id) written as PEM files, as openssl would make them.</summary>
internal sealed class TestCertificates
{
    private readonly X509Certificate2 _authority;

    public TestCertificates(string folder, string name = "test-cluster-ca")
    {
        Folder = folder;
        Directory.CreateDirectory(folder);
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        _authority = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddYears(2));
        CaFile = Path.Combine(folder, $"{name}.crt");
        File.WriteAllText(CaFile, _authority.ExportCertificatePem());
    }

    public string Folder { get; }
    public string CaFile { get; }

    /// <summary>Writes {id}.crt and {id}.key signed by this CA; returns (certificate, key) paths.</summary>
    public (string Certificate, string Key) Issue(string id)
    {
        using RSA key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={id}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(id);
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        using X509Certificate2 issued = request.Create(_authority, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1), serial);
        string certificate = Path.Combine(Folder, $"{id}.crt");
        string keyFile = Path.Combine(Folder, $"{id}.key");
        File.WriteAllText(certificate, issued.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        return (certificate, keyFile);
    }

    /// <summary>The options a member needs for mutual TLS with this CA.</summary>
    public Action<Raft.Node.Hosting.NodeOptions> For()
    {
        return options =>
        {
            (string certificate, string key) = Issue(options.Id);
            options.PeerCertificate = certificate;
            options.PeerKey = key;
            options.PeerCa = CaFile;
        };
    }

    public X509Certificate2 Load(string id) =>
        X509CertificateLoader.LoadPkcs12(X509Certificate2.CreateFromPemFile(Path.Combine(Folder, $"{id}.crt"), Path.Combine(Folder, $"{id}.key")).Export(X509ContentType.Pkcs12), null);
}
