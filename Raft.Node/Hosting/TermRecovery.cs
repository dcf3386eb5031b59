using System.Globalization;
using Raft.Engine.Consensus;
using Raft.Engine.Storage;

namespace Raft.Node.Hosting;

/// <summary>
/// <c>Raft.Node reset-term</c>: the way back for a cluster whose stored terms were driven near the largest one (a forged
/// vote request before the sender rules bounded a term's step, or a bug). A server at <see cref="RaftCore.MaxTerm"/>
/// never campaigns, so no leader is ever elected again, restarts included.
/// <para>
/// Lowering a term is safe only when every member is stopped and every member gets the same new term, greater than every
/// term in every member's log and snapshot: then no entry of that term or later exists anywhere, and no one has voted in
/// it, so the cluster starts its next election as if the terms in between had never been used. (A leader always writes
/// an entry of its own term to its own log first, so every term that led anything is in some log.) Run it without
/// <c>--term</c> on each member first: it prints that member's highest term; give the largest of them plus one to all.
/// </para>
/// </summary>
public static class TermRecovery
{
    public const string Verb = "reset-term";

    public const string HelpText = """
        Raft.Node reset-term --data-dir <path> [--term <n>]

        Recovers a stopped cluster whose terms were driven to the limit (no leader is ever elected). With every member
        stopped, run it without --term on each member's data folder: it prints the member's term and the highest term in
        its log and snapshot. Then run it with --term N on every member, N one more than the highest of those highest
        terms: the same N everywhere. Each member's term becomes N and its vote is forgotten; the log is not touched.
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        string? dataDir = null;
        long? term = null;
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--data-dir" when i + 1 < args.Length:
                    dataDir = args[++i];
                    break;
                case "--term" when i + 1 < args.Length && long.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out long parsed) && parsed >= 1:
                    term = parsed;
                    i++;
                    break;
                case "--help" or "-h":
                    await output.WriteLineAsync(HelpText);
                    return 0;
                default:
                    await error.WriteLineAsync($"error: {Verb}: unexpected '{args[i]}' (--term takes a positive number)\n\n{HelpText}");
                    return 2;
            }
        }
        if (dataDir is null)
        {
            await error.WriteLineAsync($"error: {Verb} needs --data-dir\n\n{HelpText}");
            return 2;
        }
        try
        {
            await using SqliteLogStore store = SqliteLogStore.Open(Path.Combine(dataDir, "raft.db"));
            PersistentState state = await store.LoadAsync();
            long highest = HighestLogTerm(state);
            await output.WriteLineAsync($"{store.Path}: term {state.HardState.Term}, voted for {state.HardState.VotedFor ?? "no one"}; highest term in its log and snapshot {highest}");
            if (term is not { } target)
            {
                return 0;
            }
            if (target <= highest)
            {
                await error.WriteLineAsync($"error: --term {target} must be greater than {highest}, the highest term in this member's log and snapshot");
                return 2;
            }
            if (target >= state.HardState.Term)
            {
                await output.WriteLineAsync($"term {state.HardState.Term} is already at most {target}: nothing to do");
                return 0;
            }
            await store.SaveAsync(new HardState(target, null), []);
            await output.WriteLineAsync($"term set to {target}, vote cleared; run this with --term {target} on every other member before starting any");
            return 0;
        }
        catch (StorageException unusable)
        {
            await error.WriteLineAsync($"error: {unusable.Message}");
            return 65;
        }
    }

    /// <summary>Log terms never decrease, so the last entry's (or else the snapshot's) is the highest.</summary>
    public static long HighestLogTerm(PersistentState state) =>
        Math.Max(state.Snapshot?.Metadata.Term ?? 0, state.Entries.Count > 0 ? state.Entries[^1].Term : 0);
}
