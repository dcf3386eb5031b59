using System.Globalization;

namespace Raft.Tests;

/// <summary>
/// The knobs of the long and randomized tests, read from the environment (docs/testing.md lists them). Defaults are fixed,
/// seeds included, so that two runs of the default suite do the same thing; a failure names its seed to replay it.
/// </summary>
internal static class TestSettings
{
    public static int Int(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : fallback;
}
