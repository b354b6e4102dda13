"""`symnet graph EXPR --at x=-2,y=5,z=-4`: the computational graph of a scalar expression.

Prints the nodes with their values, local gradients and gradients; `--code` the
straight-line forward and backward; `--json` one JSON object; `-o FILE.png|.svg` draws
the circuit, `-o FILE.py` writes the code.
"""

from __future__ import annotations

import json

import sympy as sp

from symnet.catalog import REGISTRY
from symnet.declare.scalar import Activation
from symnet.files import check_output, write_atomically
from symnet.graph.circuit import Graph, build, evaluate, op_counts
from symnet.graph.code import check_names, emit, formula_text
from symnet.graph.gates import GraphError
from symnet.graph.parse import parse_expression, parse_point
from symnet.graph.rewrite import composite, elementary
from symnet.loader import resolve, split_reference

GATE_CHOICES = {"as-written": lambda e: e, "elementary": elementary, "composite": composite}


def expression_from(reference: str) -> sp.Expr:
    """EXPR, a catalog activation (its forward, parameters at their defaults) or FILE.py:NAME."""
    path, name = split_reference(reference)
    if path is None and name not in REGISTRY:
        return parse_expression(reference)
    declaration = resolve(reference)
    if not isinstance(declaration, Activation):
        raise GraphError(f"{declaration.name} is a {declaration.kind} over a vector of symbolic "
                         f"length; symnet graph takes a scalar expression or an activation")
    return declaration.forward.subs(declaration.params)


def _number(value) -> float | int:
    return int(value) if value.is_Integer else float(value)


def _local_text(evaluation, gate) -> str:
    """ds0/dx = 1, df/ds0 = z = -4: each local gradient, and its value where it is not a number."""
    parts = []
    for k, name in enumerate(gate.inputs):
        local = gate.local_gradient(k)
        text = f"d{gate.name}/d{name} = {formula_text(local)}"
        if evaluation is not None and not local.is_number:
            text += f" = {_format(evaluation.local[gate.name][k])}"
        parts.append(text)
    return ", ".join(parts)


def _format(value) -> str:
    return str(value) if value.is_Integer else f"{float(value):.6g}"


def table(graph: Graph, evaluation) -> list[str]:
    """One row per node: gate, forward, value, gradient (d output / d node), local gradients."""
    header = ["node", "gate", "forward", "value", "gradient", "local gradients"]
    rows = []
    for node in graph.nodes:
        is_input = node.kind == "input"
        rows.append([
            node.name, "input" if is_input else node.label,
            "" if is_input else formula_text(node.forward),
            "" if evaluation is None else _format(evaluation.values[node.name]),
            "" if evaluation is None else _format(evaluation.gradients[node.name]),
            "" if is_input else _local_text(evaluation, node),
        ])
    if evaluation is None:
        header, rows = [h for h in header if h not in ("value", "gradient")], \
            [r[:3] + r[5:] for r in rows]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in [header, *rows]]


def report(graph: Graph, evaluation, source: str) -> dict:
    """The --json object: value, gradients, ops, and every node."""
    def number(values, name):
        return None if evaluation is None else _number(values[name])
    return {
        "expression": source,
        "output": graph.output,
        "at": None if evaluation is None else
        {n: _number(v) for n, v in evaluation.at.items()},
        "value": number(evaluation.values, graph.output) if evaluation else None,
        "gradients": None if evaluation is None else
        {n: _number(evaluation.gradients[n]) for n in graph.inputs},
        "ops": op_counts(graph),
        "nodes": [{"name": n.name, "gate": n.kind, "inputs": list(n.inputs),
                   "forward": None if n.forward is None else formula_text(n.forward),
                   "value": number(evaluation.values, n.name) if evaluation else None,
                   "gradient": number(evaluation.gradients, n.name) if evaluation else None}
                  for n in graph.nodes],
    }


def _save(graph: Graph, evaluation, path: str, source: str) -> None:
    if path.lower().endswith(".py"):
        write_atomically(path, emit(graph, source))
        return
    from symnet.graph.draw import save  # matplotlib only when a drawing is asked for
    save(graph, evaluation, path, f"{graph.output} = {source}")


#: what `-o FILE` writes, by its suffix
OUTPUT_SUFFIXES = (".py", ".png", ".svg")


def _check_out(path: str) -> None:
    if not path.lower().endswith(OUTPUT_SUFFIXES):
        raise GraphError(f"-o {path}: symnet graph writes its code to a .py file, or draws "
                         f"to a .png or .svg file")
    check_output("-o", path)


def graph_of(args) -> tuple[Graph, object]:
    expr = GATE_CHOICES[args.gates](expression_from(args.expr))
    try:
        graph = build(expr, output=args.name)
    except GraphError as exc:
        if args.expr.isidentifier() or ".py:" in args.expr:  # say which declaration it was
            raise GraphError(f"{args.expr}: {exc}") from None
        raise
    check_names(graph)
    point = parse_point(args.at) if args.at else None
    if point is not None:
        unknown = sorted(set(point) - set(graph.inputs))
        if unknown:
            raise GraphError(f"--at names {', '.join(unknown)}, which {args.expr!r} does not "
                             f"use (its inputs: {', '.join(graph.inputs)})")
    return graph, None if point is None else evaluate(graph, point)


def cmd_graph(args) -> int:
    if args.out:
        _check_out(args.out)
    graph, evaluation = graph_of(args)
    source = args.expr if args.expr not in REGISTRY else formula_text(graph.expr)
    if args.out:
        _save(graph, evaluation, args.out, source)
    if args.json:
        print(json.dumps(report(graph, evaluation, source)))
    elif args.code:
        print(emit(graph, source), end="")
    else:
        ops = op_counts(graph)
        where = "" if evaluation is None else "  at " + ", ".join(
            f"{n} = {_format(v)}" for n, v in evaluation.at.items())
        print(f"{graph.output} = {source}{where}")
        print(*table(graph, evaluation), sep="\n")
        print(f"operations (sympy.count_ops of the emitted code): forward {ops['forward']}, "
              f"backward {ops['backward']}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def add_command(commands) -> None:
    graphing = commands.add_parser(
        "graph", help="the computational graph of a scalar expression: values, local and "
                      "upstream gradients, straight-line backprop code, a drawing",
        description="Show a scalar expression as a circuit of gates, evaluated at a point: "
                    "each gate's value, local gradient and gradient, the straight-line "
                    "backprop code, and a drawing with -o FILE.png.")
    graphing.add_argument("expr", metavar="EXPR",
                          help='a scalar expression such as "(x+y)*z", or an activation of '
                               'the catalog (sigmoid) or FILE.py:NAME')
    graphing.add_argument("--at", metavar="NAME=VALUE,...",
                          help="the point, e.g. x=-2,y=5,z=-4 (values may be 0.5, 1/3, pi/4)")
    graphing.add_argument("--gates", choices=sorted(GATE_CHOICES), default="as-written",
                          help="sigmoid as one gate (composite) or four (elementary); "
                               "default: as written")
    graphing.add_argument("--name", default="f", help="the output's name (default f)")
    graphing.add_argument("--code", action="store_true",
                          help="print the generated forward and backward code")
    graphing.add_argument("--json", action="store_true", help="one JSON object")
    graphing.add_argument("-o", "--out", metavar="FILE",
                          help="draw to FILE.png or FILE.svg, or write the code to FILE.py")
    graphing.set_defaults(run=cmd_graph)
