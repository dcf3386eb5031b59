using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Rendering;

namespace Raft.Dashboard.Components.Controls;

/// <summary>An SVG &lt;text&gt; element (Razor reserves the tag inside code blocks).</summary>
public sealed class SvgLabel : ComponentBase
{
    [Parameter] public string X { get; set; } = "0";
    [Parameter] public string Y { get; set; } = "0";
    [Parameter] public int Size { get; set; } = 12;
    [Parameter] public string Fill { get; set; } = "black";
    [Parameter] public bool Bold { get; set; }
    [Parameter] public string Text { get; set; } = "";

    protected override void BuildRenderTree(RenderTreeBuilder builder)
    {
        builder.OpenElement(0, "text");
        builder.AddAttribute(1, "x", X);
        builder.AddAttribute(2, "y", Y);
        builder.AddAttribute(3, "text-anchor", "middle");
        builder.AddAttribute(4, "font-size", Size);
        builder.AddAttribute(5, "fill", Fill);
        if (Bold)
        {
            builder.AddAttribute(6, "font-weight", "bold");
        }
        builder.AddContent(7, Text);
        builder.CloseElement();
    }
}
