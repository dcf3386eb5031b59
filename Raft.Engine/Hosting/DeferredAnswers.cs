namespace Raft.Engine.Hosting;

/// <summary>
/// Answers the loop has decided and not yet given. They are released together once the node's status reflects them,
/// so that a caller reading <see cref="RaftNode.Status"/> after its answer sees at least what the answer promised.
/// </summary>
internal sealed class DeferredAnswers
{
    private readonly List<Action> _answers = [];

    public bool Any => _answers.Count > 0;

    public void Add(Action answer) => _answers.Add(answer);

    public void Release()
    {
        foreach (Action answer in _answers)
        {
            answer();
        }
        _answers.Clear();
    }
}
