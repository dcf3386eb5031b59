namespace Raft.Dashboard.Components.Controls;

/// <summary>Colours shared by the views and explained by the legend: one colour per role, one per term.</summary>
public static class Palette
{
    /// <summary>Twelve clearly different hues: terms 1 to 12 never share a colour; from 13 on the cycle repeats.</summary>
    private static readonly string[] Terms =
    [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
        "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939", "#ad494a",
    ];

    public static string Term(long term) => term <= 0 ? "#bdbdbd" : Terms[(term - 1) % Terms.Length];

    /// <summary>The roles, each a colour no other role comes near (a pre-voting follower must not look like a leader).</summary>
    public static readonly IReadOnlyList<(string Role, string Label, string Colour)> Roles =
    [
        ("Leader", "leader", "#f9a825"),
        ("Candidate", "candidate", "#c2185b"),
        ("PreCandidate", "pre-vote", "#00897b"),
        ("Follower", "follower", "#1e88e5"),
        ("Down", "crashed or unreachable", "#9e9e9e"),
    ];

    public static string Role(string? role, bool connected) =>
        !connected ? "#9e9e9e" : Roles.FirstOrDefault(r => r.Role == role).Colour ?? "#1e88e5";
}
