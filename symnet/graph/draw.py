"""A computational graph drawn like the lecture's figures: gates as circles, inputs on the
left, forward values above each edge (green) and gradients below it (red).

matplotlib is optional (`pip install "symnet[plot]"`) and imported only here, only when a
drawing is asked for. The picture is laid out in columns (a gate sits one column right of
its deepest input) and, within a column, near the mean height of its inputs.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from symnet.errors import install_hint
from symnet.files import usual_file_mode
from symnet.graph.circuit import Evaluation, Graph
from symnet.graph.gates import GraphError

FORMATS = (".png", ".svg")
COLUMN = 2.4        # horizontal distance between columns, in drawing units
ROW = 1.1           # least vertical distance between two nodes of a column
RADIUS = 0.3
INCH = 0.85         # inches per drawing unit
MAX_PIXELS = 8000   # the longest side of a PNG
VALUE, GRADIENT, INK = "#1b7d2f", "#c0262d", "#222222"


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise GraphError(f"drawing needs matplotlib: {install_hint('plot')}") from None
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
    """A gate one column right of its deepest input; an input one column left of its first
    consumer, so a weight deep in a circuit sits next to the gate that uses it."""
    column = {}
    for node in graph.nodes:
        column[node.name] = 1 + max((column[i] for i in node.inputs), default=-1)
    for name in graph.inputs:
        column[name] = min(column[c.name] for c in graph.consumers(name)) - 1
    return column


def _spread(wanted: list[float], sizes: list[float], anchored: list[bool]) -> list[float]:
    """Heights for items wanted at (descending) heights, each at least half its size plus
    half its neighbour's below the one above; shifted so that the anchored items (gates)
    are where they want to be on average, and the others (inputs) make way."""
    placed = []
    for k, y in enumerate(wanted):
        placed.append(min(y, placed[-1] - (sizes[k - 1] + sizes[k]) / 2) if placed else y)
    keys = [k for k in range(len(placed)) if anchored[k]] or range(len(placed))
    shift = sum(wanted[k] - placed[k] for k in keys) / len(keys)
    return [y + shift for y in placed]


def _edges(graph: Graph) -> list[tuple]:
    return [(source, gate.name) for gate in graph.gates for source in dict.fromkeys(gate.inputs)]


def _chains(graph: Graph, column: dict) -> list[list]:
    """Each edge as the items it passes: its source, a bend in every column it crosses (so it
    passes between nodes, never through one), its consumer."""
    return [[("node", source),
             *(("bend", (source, consumer), d) for d in range(column[source] + 1,
                                                                 column[consumer])),
             ("node", consumer)] for source, consumer in _edges(graph)]


def _place(items: list, wanted: dict, height: dict, leaves: set) -> None:
    order = sorted(range(len(items)), key=lambda k: (-wanted[items[k]], k))
    sizes = [ROW if items[k][0] == "node" else ROW / 2 for k in order]
    anchored = [items[k] not in leaves for k in order]
    spread = _spread([wanted[items[k]] for k in order], sizes, anchored)
    for k, y in zip(order, spread, strict=True):
        height[items[k]] = y


def layout(graph: Graph) -> tuple[dict, dict]:
    """(name -> (x, y), edge -> its bends): a gate one column right of its deepest input;
    heights by the barycentre heuristic (each item at the mean height of its neighbours,
    sweeping right and left twice), which keeps crossings few on small circuits."""
    column = _columns(graph)
    chains = _chains(graph, column)
    neighbours = {"left": defaultdict(list), "right": defaultdict(list)}
    columns = [[("node", n.name) for n in graph.nodes if column[n.name] == d]
               for d in range(max(column.values()) + 1)]
    for chain in chains:
        columns_of_bends = [item for item in chain if item[0] == "bend"]
        for item in columns_of_bends:
            columns[item[2]].append(item)
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            neighbours["right"][a].append(b)
            neighbours["left"][b].append(a)
    height = {item: -ROW * k for k, item in enumerate(columns[0])}

    leaves = {("node", name) for name in graph.inputs}

    def mean_height(item, side: str) -> float:
        # a bend straightens its edge: it looks both ways
        sides = ("left", "right") if item[0] == "bend" else (side,)
        around = [n for s in sides for n in neighbours[s][item] if n in height]
        # a gate follows the gates feeding it; the inputs (free to move) come to it
        if item[0] == "node" and side == "left" and any(n not in leaves for n in around):
            around = [n for n in around if n not in leaves]
        if not around:  # an input: it comes to the gate it feeds
            around = [n for n in neighbours["right"][item] if n in height]
        return sum(height[n] for n in around) / len(around) if around \
            else height.get(item, 0.0)

    def sweep(side: str, depths) -> None:
        for d in depths:
            wanted = {item: mean_height(item, side) for item in columns[d]}
            _place(columns[d], wanted, height, leaves)

    sweep("left", range(1, len(columns)))
    for _ in range(2):
        sweep("right", reversed(range(len(columns) - 1)))
        sweep("left", range(1, len(columns)))
    position = {name: (column[name] * COLUMN, height[("node", name)]) for name in column}
    bends = {edge: [(item[2] * COLUMN, height[item]) for item in chain if item[0] == "bend"]
             for edge, chain in zip(_edges(graph), chains, strict=True)}
    return position, bends


def _clearance(point, taken: list) -> float:
    """How far a pair of labels at `point` is from the others and from the gates, in label
    sizes (1 or more: no overlap)."""
    return min((math.hypot((point[0] - x) / 0.75, (point[1] - y) / 0.6) for x, y in taken),
               default=math.inf)


def _label_spot(points: list, taken: list) -> tuple:
    """(segment start, end, fraction) for an edge's labels: 60% along its last stretch
    (near the consumer, where edges fanning out of one node have parted), else the first
    other spot that does not overlap the labels already drawn, else the clearest."""
    segments = list(zip(points[:-1], points[1:], strict=True))
    spots = [(*segments[-1], t) for t in (0.6, 0.45, 0.75, 0.3, 0.85)]
    spots += [(a, b, 0.5) for a, b in segments[:-1]]

    def centre(spot):
        (x0, y0), (x1, y1), t = spot
        return x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    clear = [spot for spot in spots if _clearance(centre(spot), taken) >= 1]
    best = clear[0] if clear else max(spots, key=lambda spot: _clearance(centre(spot), taken))
    taken.append(centre(best))
    return best


def _edge_labels(ax, spot, above: str, below: str) -> None:
    """The value above the edge, the gradient below it, both along the edge."""
    (x0, y0), (x1, y1), t = spot
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
    nx, ny = -math.sin(math.radians(angle)), math.cos(math.radians(angle))
    mx, my = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    for text, sign, colour in ((above, 1, VALUE), (below, -1, GRADIENT)):
        ax.text(mx + sign * 0.16 * nx, my + sign * 0.16 * ny, text, color=colour,
                fontsize=9, ha="center", va="center", rotation=angle,
                rotation_mode="anchor", family="DejaVu Sans")


def _edge(ax, points: list, labels: tuple, taken: list) -> None:
    """A line through the points, an arrow into the last, the labels where they fit."""
    for a, b in zip(points[:-2], points[1:-1], strict=True):
        ax.plot((a[0], b[0]), (a[1], b[1]), color=INK, lw=1.1, solid_capstyle="round")
    ax.annotate("", xy=points[-1], xytext=points[-2],
                arrowprops={"arrowstyle": "-|>", "color": INK, "lw": 1.1,
                            "shrinkA": 0, "shrinkB": 0, "mutation_scale": 10})
    if any(labels):
        _edge_labels(ax, _label_spot(points, taken), *labels)


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


def _draw_edges(ax, graph: Graph, position: dict, bends: dict, evaluation) -> None:
    taken = [position[n.name] for n in graph.gates]  # labels keep off the gates
    for consumer in graph.gates:
        for k, source in enumerate(consumer.inputs):
            middle = bends[(source, consumer.name)]
            first, last = (middle or [position[consumer.name]])[0], \
                (middle or [position[source]])[-1]
            start = (position[source][0] + 0.08, position[source][1]) \
                if graph.node(source).kind == "input" \
                else _toward(position[source], first, RADIUS)
            end = _toward(position[consumer.name], last, RADIUS)
            _edge(ax, [start, *middle, end], _labels(graph, evaluation, source, consumer, k),
                  taken)
    x, y = position[graph.output]
    end = (x + COLUMN * 0.75, y)
    labels = ("", "") if evaluation is None else \
        (short(evaluation.value), short(evaluation.gradients[graph.output]))
    _edge(ax, [(x + RADIUS, y), end], labels, taken)
    ax.text(end[0] + 0.08, y, graph.output, ha="left", va="center", fontsize=12, color=INK)


def figure(graph: Graph, evaluation: Evaluation | None, title: str):
    """The drawing as a matplotlib Figure (no pyplot, no global state)."""
    Figure = _matplotlib()
    position, bends = layout(graph)
    points = [*position.values(), *(p for b in bends.values() for p in b)]
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    left, right = min(xs) - 0.9, max(xs) + COLUMN * 0.75 + 0.6
    bottom, top = min(ys) - 0.8, max(ys) + 1.2
    fig = Figure(figsize=((right - left) * INCH, (top - bottom) * INCH))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.axis("off")
    _draw_edges(ax, graph, position, bends, evaluation)
    _draw_nodes(ax, graph, position)
    key = "   values above the edges, gradients below" if evaluation is not None else ""
    # the expression as the user wrote it: a $ in its comment is a dollar, not mathtext
    ax.text(left + 0.2, top - 0.35, title + key, ha="left", va="center", fontsize=10,
            color=INK, parse_math=False)
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
        os.chmod(temporary, usual_file_mode())   # mkstemp's 0600 is for secrets, not drawings
        # a long circuit gets fewer dots per inch, not a picture no viewer opens
        dpi = min(150, MAX_PIXELS / max(fig.get_size_inches()))
        fig.savefig(temporary, format=target.suffix[1:].lower(), dpi=dpi,
                    metadata={"Date": None} if target.suffix.lower() == ".svg" else None)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
