namespace Raft.Dashboard.Cluster;

/// <summary>
/// What the dashboard shows the nodes it attaches to: a bearer token (<c>--node-token</c>; the role it has on the nodes
/// bounds what any dashboard user can do) and the CA that signed their TLS certificates (<c>--node-ca</c>).
/// </summary>
public sealed record NodeCredentials(string? Token, string? CaFile)
{
    public static readonly NodeCredentials None = new(null, null);
}
