namespace Raft.Dashboard.Components.Controls;

/// <summary>
/// Where the labels of messages in flight are drawn. Each wants its spot on its link (at how far it has come, on the
/// requests' or the answers' side); one that would cover a label already placed or a node is moved along its link, then
/// further out to its side, to the first free spot. A paused cluster holds many messages at the same point of a link,
/// and their labels used to lie on top of each other and of the node's text.
/// </summary>
public sealed class MessageLabelLayout
{
    public const double Height = 18;

    /// <summary>A node's circle with its election timer around it.</summary>
    public const double NodeRadius = 46;

    private const double Margin = 2;
    private const double First = 0.22, Last = 0.78; // along a link: from just outside one node to just outside the other
    private readonly IReadOnlyCollection<(double X, double Y)> _nodes;
    private readonly List<Box> _placed = [];

    public MessageLabelLayout(IReadOnlyCollection<(double X, double Y)> nodes) => _nodes = nodes;

    /// <summary>A label's box: its centre and width.</summary>
    public readonly record struct Box(double X, double Y, double Width)
    {
        public double Left => X - (Width / 2);
        public double Top => Y - (Height / 2);

        public bool Overlaps(Box other) =>
            Math.Abs(X - other.X) < ((Width + other.Width) / 2) + Margin && Math.Abs(Y - other.Y) < Height + Margin;

        public bool Covers((double X, double Y) node)
        {
            double nearestX = Math.Clamp(node.X, Left, Left + Width), nearestY = Math.Clamp(node.Y, Top, Top + Height);
            return Math.Pow(nearestX - node.X, 2) + Math.Pow(nearestY - node.Y, 2) < NodeRadius * NodeRadius;
        }
    }

    /// <param name="progress">How far along the link the message has come (<see cref="First"/> to <see cref="Last"/>).</param>
    /// <param name="side">Its side of the link: positive for requests, negative for answers.</param>
    public Box Place((double X, double Y) from, (double X, double Y) to, double progress, double side, double width)
    {
        (double dx, double dy) = (to.X - from.X, to.Y - from.Y);
        double length = Math.Max(1, Math.Sqrt((dx * dx) + (dy * dy)));
        Box At(double along, double offset) =>
            new(from.X + (dx * along) + (-dy / length * offset), from.Y + (dy * along) + (dx / length * offset), width);

        Box wanted = At(progress, side);
        double step = (Height + Margin) / length; // one label's height along the link
        for (int level = 0; level < 4; level++)
        {
            double offset = side + (Math.Sign(side) * level * (Height + Margin));
            for (int shift = 0; shift <= 2 * (int)Math.Ceiling((Last - First) / step); shift++)
            {
                double along = progress + ((shift % 2 == 0 ? 1 : -1) * ((shift + 1) / 2) * step); // 0, +1, -1, +2, ...
                if (along < First || along > Last)
                {
                    continue;
                }
                Box candidate = At(along, offset);
                if (!_placed.Any(candidate.Overlaps) && !_nodes.Any(candidate.Covers))
                {
                    _placed.Add(candidate);
                    return candidate;
                }
            }
        }
        _placed.Add(wanted); // no free spot: where it belongs, over the others
        return wanted;
    }
}
