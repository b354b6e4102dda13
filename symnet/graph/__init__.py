"""Computational graphs of scalar expressions (lecture section 02, L17-L22): `symnet graph`.

    parse.py     EXPR and --at values -> unevaluated sympy, as written (Python's ast; no eval)
    gates.py     the gates: forward and local gradients; sigmoid, comparisons, ordered max/min
    rewrite.py   the sigmoid as one gate or four (L20)
    circuit.py   expression -> graph; reverse mode; values at a point; op counts
    code.py      straight-line numpy code through templates/graph.py.j2
    draw.py      the drawing (matplotlib, optional)
(the `symnet graph` subcommand is symnet/cli/graph.py)
"""

from symnet.graph.circuit import (
    Evaluation,
    Graph,
    backward_statements,
    build,
    evaluate,
    forward_statements,
    grad_name,
    op_counts,
)

__all__ = ["Evaluation", "Graph", "backward_statements", "build", "evaluate",
           "forward_statements", "grad_name", "op_counts"]
