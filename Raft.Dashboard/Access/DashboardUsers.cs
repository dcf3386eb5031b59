using Microsoft.AspNetCore.Identity;

namespace Raft.Dashboard.Access;

/// <summary>The two things a dashboard user can be: one who looks, and one who may also change the cluster.</summary>
public static class DashboardRoles
{
    public const string Viewer = "viewer";
    public const string Operator = "operator";

    /// <summary>The authorization policy every control that changes something requires.</summary>
    public const string OperatorPolicy = "operator";

    public static bool IsKnown(string role) => role is Viewer or Operator;
}

/// <summary>
/// The users file (<c>Dashboard:UsersFile</c>, <c>--users-file</c>): one user per line as <c>name role password-hash</c>,
/// role <c>viewer</c> or <c>operator</c>, the hash as <c>Raft.Dashboard hash-password</c> prints it (ASP.NET Core
/// Identity's PBKDF2 format), so the file never holds a password. Blank lines and lines starting with # are skipped.
/// </summary>
public sealed class DashboardUsers
{
    private static readonly PasswordHasher<string> Hasher = new();
    private readonly Dictionary<string, (string Role, string Hash)> _users;

    private DashboardUsers(Dictionary<string, (string Role, string Hash)> users) => _users = users;

    public int Count => _users.Count;

    /// <summary>Reads the file; a line that is not "name role hash" is a <see cref="FormatException"/> naming it.</summary>
    public static DashboardUsers Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FormatException($"--users-file: {path} does not exist");
        }
        return Parse(File.ReadAllLines(path), path);
    }

    public static DashboardUsers Parse(IReadOnlyList<string> lines, string source)
    {
        var users = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        for (int i = 0; i < lines.Count; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }
            string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            string where = $"{source} line {i + 1}";
            if (parts.Length != 3)
            {
                throw new FormatException($"{where}: expected 'name role password-hash', got {parts.Length} fields");
            }
            if (!DashboardRoles.IsKnown(parts[1]))
            {
                throw new FormatException($"{where}: the role '{parts[1]}' is neither {DashboardRoles.Viewer} nor {DashboardRoles.Operator}");
            }
            if (!LooksLikeHash(parts[2]))
            {
                throw new FormatException($"{where}: the third field is not a password hash (make one with: Raft.Dashboard hash-password)");
            }
            if (!users.TryAdd(parts[0], (parts[1], parts[2])))
            {
                throw new FormatException($"{where}: the user '{parts[0]}' is listed twice");
            }
        }
        return new DashboardUsers(users);
    }

    /// <summary>The user's role when the password is theirs, else null (an unknown name costs the same as a wrong password).</summary>
    public string? Verify(string name, string password)
    {
        bool known = _users.TryGetValue(name, out (string Role, string Hash) user);
        string hash = known ? user.Hash : DummyHash;
        bool matches = Hasher.VerifyHashedPassword(name, hash, password) is not PasswordVerificationResult.Failed;
        return known && matches ? user.Role : null;
    }

    public static string Hash(string password) => Hasher.HashPassword("", password);

    private static readonly string DummyHash = Hash(Guid.NewGuid().ToString());

    private static bool LooksLikeHash(string value)
    {
        Span<byte> bytes = stackalloc byte[value.Length];
        return Convert.TryFromBase64String(value, bytes, out int length) && length > 13 && bytes[0] == 0x01;
    }
}
