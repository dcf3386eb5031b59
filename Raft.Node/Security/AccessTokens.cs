using System.Security.Cryptography;
using System.Text;

namespace Raft.Node.Security;

/// <summary>What a caller may do; each role may do what the ones below it may.</summary>
public enum AccessRole
{
    /// <summary>Get, status, the event hub (its state, the data, the stream of changes).</summary>
    Reader = 1,

    /// <summary>And put, delete, compare-and-swap.</summary>
    Writer = 2,

    /// <summary>And membership, leadership transfer, snapshots, fault injection, message tracing.</summary>
    Operator = 3,
}

/// <summary>Who made a request: a token's name and role.</summary>
public sealed record Caller(string Name, AccessRole Role);

/// <summary>
/// The bearer tokens a node accepts, from <c>--tokens-file</c>: one <c>name role token</c> per line, <c>#</c>
/// starts a comment. Tokens are kept and looked up by their SHA-256, so timing reveals nothing about them. With no file every caller is an operator
/// named "anonymous": the loopback default.
/// </summary>
public sealed class AccessTokens
{
    public const int MinimumTokenLength = 16;
    private readonly Dictionary<string, Caller> _byHash;

    private AccessTokens(Dictionary<string, Caller> byHash) => _byHash = byHash;

    /// <summary>True when tokens are configured, i.e. callers must authenticate.</summary>
    public bool Required => _byHash.Count > 0;

    public static readonly AccessTokens None = new([]);

    public static readonly Caller Anonymous = new("anonymous", AccessRole.Operator);

    public static AccessTokens Load(string? file) => file is null ? None : Parse(File.ReadAllLines(file), file);

    /// <summary>Parses the lines of a tokens file; throws <see cref="FormatException"/> naming the line.</summary>
    public static AccessTokens Parse(IEnumerable<string> lines, string source)
    {
        var byHash = new Dictionary<string, Caller>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            string line = raw.Split('#', 2)[0].Trim();
            if (line.Length == 0)
            {
                continue;
            }
            string[] fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 3)
            {
                throw new FormatException($"{source} line {number}: expected 'name role token'");
            }
            if (!Enum.TryParse(fields[1], ignoreCase: true, out AccessRole role) || !Enum.IsDefined(role) || int.TryParse(fields[1], out _))
            {
                throw new FormatException($"{source} line {number}: the role '{fields[1]}' is not reader, writer or operator");
            }
            if (fields[2].Length < MinimumTokenLength)
            {
                throw new FormatException($"{source} line {number}: the token of {fields[0]} is shorter than {MinimumTokenLength} characters");
            }
            if (!names.Add(fields[0]))
            {
                throw new FormatException($"{source} line {number}: the name {fields[0]} is given twice");
            }
            if (!byHash.TryAdd(Hash(fields[2]), new Caller(fields[0], role)))
            {
                throw new FormatException($"{source} line {number}: the token of {fields[0]} is also another name's");
            }
        }
        return new AccessTokens(byHash);
    }

    /// <summary>Who holds <paramref name="token"/>, or null with why not.</summary>
    public Caller? Authenticate(string? token, out string? problem)
    {
        problem = null;
        if (!Required)
        {
            return Anonymous;
        }
        if (string.IsNullOrEmpty(token))
        {
            problem = "this node requires a bearer token (authorization: Bearer <token>)";
            return null;
        }
        // Looked up by its hash: how long a comparison of hashes takes says nothing about the token itself.
        if (_byHash.TryGetValue(Hash(token), out Caller? caller))
        {
            return caller;
        }
        problem = "the bearer token is not one of this node's tokens";
        return null;
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
