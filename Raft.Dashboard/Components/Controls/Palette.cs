using System.Globalization;

namespace Raft.Dashboard.Components.Controls;

/// <summary>Colours shared by the views: one hue per term, one colour per role.</summary>
public static class Palette
{
    public static string Term(long term) => term <= 0 ? "#bdbdbd" : string.Create(CultureInfo.InvariantCulture, $"hsl({(term * 67) % 360}, 65%, 55%)");

    public static string Role(string? role, bool connected) => !connected ? "#9e9e9e" : role switch
    {
        "Leader" => "#f9a825",
        "Candidate" => "#ef6c00",
        "PreCandidate" => "#ffb74d",
        _ => "#1e88e5",
    };
}
