using System.Text;

namespace Raft.Dashboard.Components.Controls;

/// <summary>
/// How much the command panel lets a user send. The nodes say what they accept (their --max-command-bytes); the page
/// refuses more before sending, and its own connection (the Blazor circuit) is sized for the most the fields can hold.
/// </summary>
public static class CommandLimits
{
    /// <summary>Characters a field takes at most (browsers stop typing and pasting there): 4 Mi.</summary>
    public const int MaxFieldCharacters = 4 * 1024 * 1024;

    /// <summary>
    /// A field's value crosses the circuit as JSON in UTF-8: up to 3 bytes per character (6 for an escaped control
    /// character, which a text field rarely holds), plus the message around it.
    /// </summary>
    public const long MaxCircuitMessageBytes = (3L * MaxFieldCharacters) + (64 * 1024);

    /// <summary>Null when the command fits in <paramref name="maxCommandBytes"/>; otherwise what to tell the user.</summary>
    public static string? Refusal(int maxCommandBytes, params string?[] parts)
    {
        long size = parts.Sum(p => p is null ? 0L : Encoding.UTF8.GetByteCount(p));
        return maxCommandBytes > 0 && size > maxCommandBytes
            ? $"not sent: the key and values are {Size(size)}; the nodes accept at most {Size(maxCommandBytes)} per command"
            : null;
    }

    public static string Size(long bytes) => bytes switch
    {
        >= 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.#} MiB ({bytes:N0} bytes)",
        >= 1024 => $"{bytes / 1024.0:0.#} KiB ({bytes:N0} bytes)",
        _ => $"{bytes} bytes",
    };
}
