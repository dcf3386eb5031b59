using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace Raft.Tests.Deploy;

/// <summary>The repository's deployment files as data: YAML documents as nested maps and lists, looked up by path.</summary>
internal static class Manifests
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Every document of a YAML file (a file may hold several, separated by ---).</summary>
    public static List<Dictionary<object, object>> Load(string path)
    {
        var deserializer = new DeserializerBuilder().Build();
        var parser = new MergingParser(new Parser(new StringReader(File.ReadAllText(path)))); // with YAML merge keys (<<: *anchor)
        parser.Consume<StreamStart>();
        var documents = new List<Dictionary<object, object>>();
        while (parser.Accept<DocumentStart>(out _))
        {
            if (deserializer.Deserialize<object>(parser) is Dictionary<object, object> document)
            {
                documents.Add(document);
            }
        }
        return documents;
    }

    /// <summary>The value at a dotted path ("spec.template.spec"), or null.</summary>
    public static object? At(object? node, string path)
    {
        foreach (string key in path.Split('.'))
        {
            node = node is Dictionary<object, object> map && map.TryGetValue(key, out object? next) ? next : null;
        }
        return node;
    }

    public static Dictionary<object, object> Map(object? node, string path) =>
        At(node, path) as Dictionary<object, object> ?? throw new InvalidOperationException($"no map at {path}");

    public static List<object> List(object? node, string path) => At(node, path) as List<object> ?? [];

    public static string Text(object? node, string path) => At(node, path)?.ToString() ?? throw new InvalidOperationException($"no value at {path}");

    /// <summary>A container's plain env values by name (values from secrets or fields are null).</summary>
    public static Dictionary<string, string?> Env(object container) =>
        List(container, "env").ToDictionary(e => Text(e, "name"), e => At(e, "value")?.ToString());

    private static string FindRoot()
    {
        DirectoryInfo? directory = new(AppContext.BaseDirectory);
        while (directory != null && !File.Exists(Path.Combine(directory.FullName, "Raft.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("Raft.sln not found above the test binaries");
    }
}
