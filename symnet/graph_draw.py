"""A computational graph drawn like the lecture's figures: gates as circles, inputs on the
left, forward values above each edge (green) and gradients below it (red).

matplotlib is optional (`pip install symnet[plot]`) and imported only here, only when a
drawing is asked for. The picture is laid out in columns (a gate sits one column right of
its deepest input) and, within a column, near the mean height of its inputs.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from symnet.graph import Evaluation, Graph
from symnet.graph_gates import GraphError

FORMATS = (".png", ".svg")
COLUMN = 2.4        # horizontal distance between columns, in drawing units
ROW = 1.1           # least vertical distance between two nodes of a column
RADIUS = 0.3
INCH = 0.85         # inches per drawing unit
VALUE, GRADIENT, INK = "#1b7d2f", "#c0262d", "#222222"


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise GraphError("drawing needs matplotlib: pip install symnet[plot]") from None
    matplotlib.rcParams["svg.hashsalt"] = "symnet"  # the same SVG bytes every time
    from matplotlib.figure import Figure
    return Figure


def short(value) -> str:
    """A number as the lecture's figures write it: 0.73, -0.20, 3.00."""
    number = float(value)
    if number == 0 or 0.01 <= abs(number) < 1e4:
        return f"{number:.2f}"
    return f"{number:.2g}"


def _columns(graph: Graph) -> dict:
    column = {}
    for node in graph.nodes:
        column[node.name] = 1 + max((column[i] for i in node.inputs), default=-1)
    return column


def _spread(wanted: list[float]) -> list[float]:
    """Heights at least ROW apart, as near the wanted (sorted, descending) heights as a
    simple sweep gets them, centred on their mean."""
    placed = []
    for y in wanted:
        placed.append(min(y, placed[-1] - ROW) if placed else y)
    shift = (sum(wanted) - sum(placed)) / len(placed)
    return [y + shift for y in placed]


def layout(graph: Graph) -> dict:
    """name -> (x, y): inputs top to bottom in order, each gate near its inputs' mean."""
    column = _columns(graph)
    position = {}
    for depth in range(max(column.values()) + 1):
        names = [n.name for n in graph.nodes if column[n.name] == depth]
        if depth == 0:
            wanted = [-ROW * k for k in range(len(names))]
        else:
            wanted = [sum(position[i][1] for i in graph.node(n).inputs)
                      / len(graph.node(n).inputs) for n in names]
        order = sorted(range(len(names)), key=lambda k: (-wanted[k], k))
        heights = _spread([wanted[k] for k in order])
        for k, y in zip(order, heights, strict=True):
            position[names[k]] = (depth * COLUMN, y)
    return position


def _edge_labels(ax, start, end, above: str, below: str) -> None:
    (x0, y0), (x1, y1) = start, end
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
    nx, ny = -math.sin(math.radians(angle)), math.cos(math.radians(angle))
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    for text, sign, colour in ((above, 1, VALUE), (below, -1, GRADIENT)):
        if text:
            ax.text(mx + sign * 0.16 * nx, my + sign * 0.16 * ny, text, color=colour,
                    fontsize=9, ha="center", va="center", rotation=angle,
                    rotation_mode="anchor", family="DejaVu Sans")


def _edge(ax, start, end, above: str, below: str) -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": INK, "lw": 1.1,
                            "shrinkA": 0, "shrinkB": 0, "mutation_scale": 10})
    _edge_labels(ax, start, end, above, below)


def _toward(center, other, distance):
    """The point `distance` from center in the direction of other."""
    (x0, y0), (x1, y1) = center, other
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    return x0 + (x1 - x0) * distance / length, y0 + (y1 - y0) * distance / length


def _labels(graph: Graph, evaluation: Evaluation | None, source: str, consumer, k):
    """(value above, gradient below) of the edge from `source` into input k of consumer."""
    if evaluation is None:
        return "", ""
    upstream = evaluation.gradients[consumer.name]
    return short(evaluation.values[source]), short(upstream * evaluation.local[consumer.name][k])


def _draw_nodes(ax, graph: Graph, position: dict) -> None:
    from matplotlib.patches import Circle
    for node in graph.nodes:
        x, y = position[node.name]
        if node.kind == "input":
            ax.text(x, y, node.name, ha="right", va="center", fontsize=12, color=INK)
            continue
        ax.add_patch(Circle((x, y), RADIUS, facecolor="#f4f4f4", edgecolor=INK, lw=1.3))
        ax.text(x, y, node.label, ha="center", va="center", fontsize=11, color=INK)
        ax.text(x, y + RADIUS + 0.08, node.name, ha="center", va="bottom", fontsize=8,
                color="#777777")


def _draw_edges(ax, graph: Graph, position: dict, evaluation) -> tuple:
    for consumer in graph.gates:
        end_center = position[consumer.name]
        for k, source in enumerate(consumer.inputs):
            start = position[source]
            if graph.node(source).kind == "input":
                start = (start[0] + 0.08, start[1])
            else:
                start = _toward(start, end_center, RADIUS)
            end = _toward(end_center, start, RADIUS)
            _edge(ax, start, end, *_labels(graph, evaluation, source, consumer, k))
    x, y = position[graph.output]
    end = (x + COLUMN * 0.75, y)
    above, below = ("", "") if evaluation is None else \
        (short(evaluation.value), short(evaluation.gradients[graph.output]))
    _edge(ax, (x + RADIUS, y), end, above, below)
    ax.text(end[0] + 0.08, y, graph.output, ha="left", va="center", fontsize=12, color=INK)
    return end


def figure(graph: Graph, evaluation: Evaluation | None, title: str):
    """The drawing as a matplotlib Figure (no pyplot, no global state)."""
    Figure = _matplotlib()
    position = layout(graph)
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    left, right = min(xs) - 0.9, max(xs) + COLUMN * 0.75 + 0.6
    bottom, top = min(ys) - 0.8, max(ys) + 1.2
    fig = Figure(figsize=((right - left) * INCH, (top - bottom) * INCH))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.axis("off")
    _draw_edges(ax, graph, position, evaluation)
    _draw_nodes(ax, graph, position)
    key = "   values above the edges, gradients below" if evaluation is not None else ""
    ax.text(left + 0.2, top - 0.35, title + key, ha="left", va="center", fontsize=10,
            color=INK)
    return fig


def save(graph: Graph, evaluation: Evaluation | None, path: str, title: str) -> None:
    """Draw to FILE.png or FILE.svg; the file appears whole or not at all."""
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise GraphError(f"cannot draw to {path}: the drawing is a .png or .svg file")
    if not target.parent.is_dir():
        raise GraphError(f"cannot draw to {path}: no folder {target.parent}")
    fig = figure(graph, evaluation, title)
    handle, temporary = tempfile.mkstemp(suffix=target.suffix, dir=target.parent)
    os.close(handle)
    try:
        fig.savefig(temporary, format=target.suffix[1:].lower(), dpi=150,
                    metadata={"Date": None} if target.suffix.lower() == ".svg" else None)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
