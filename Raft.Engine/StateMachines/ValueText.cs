using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Raft.Engine.StateMachines;

/// <summary>
/// How keys and values are shown to people (log summaries, events, answers, recordings): in full when short, else
/// their start, their size and a digest, so a 1 MiB value costs a line, and two long values that differ still read
/// differently.
/// </summary>
public static class ValueText
{
    /// <summary>Longest text shown in full.</summary>
    public const int MaxShown = 80;

    private const int ShownStart = 40;

    public static string Show(string? text)
    {
        if (text is null)
        {
            return "(absent)";
        }
        if (text.Length <= MaxShown)
        {
            return text;
        }
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        string digest = Convert.ToHexStringLower(SHA256.HashData(bytes).AsSpan(0, 4));
        // Cut before a low surrogate so the start stays valid text.
        int cut = char.IsLowSurrogate(text[ShownStart]) ? ShownStart - 1 : ShownStart;
        return string.Create(CultureInfo.InvariantCulture, $"{text[..cut]}… ({bytes.Length:N0} bytes, sha256 {digest})");
    }
}
