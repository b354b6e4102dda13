"""A graph as straight-line numpy code in the lecture's style (L22), through a jinja2 template.

    def forward_backward(w0, x0, w1, x1, w2):
        s0 = w0*x0                     # forward pass: compute output
        ...
        grad_L = 1.0                   # backward pass: compute grads
        grad_s3 = grad_L*(1 - L)*L
        ...
        return L, {"w0": grad_w0, ...}

The code needs numpy only, works on scalars and elementwise on arrays, and is the same
bytes for the same expression (no timestamps, everything in graph order).
"""

from __future__ import annotations

import keyword
import unicodedata

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence

from symnet.graph.circuit import Graph, backward_statements, forward_statements, grad_name
from symnet.graph.gates import GraphError, PrimitiveGate, Sigmoid
from symnet.stable_rows import named_operands, printed_operands
from symnet.templating import environment

FUNCTION = "forward_backward"
#: names the emitted module defines itself; an input may not take them
RESERVED = {"np", "sigmoid", FUNCTION}

_SIGMOID_HELPER = (
    "def sigmoid(x):",
    "    # 1/(1 + e^-x), written so that no exponential overflows",
    f"    return {Sigmoid.row.spell('numpy', named_operands(['x']))}",
)


_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _decimal(q: sp.Rational) -> str | None:
    """p/q as a short decimal when q has no prime factor but 2 and 5 (0.1, 0.25), else None."""
    denominator = int(q.q)
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return repr(float(q)) if denominator == 1 else None


class GraphPrinter(NumPyPrinter):
    """The numpy printer, keeping the order a statement was written in; `np.` or, for
    people (the node table), no module prefix."""

    def __init__(self, prefix: str = "np."):
        super().__init__({"order": "none"})
        self.prefix = prefix

    def _module_format(self, fqn, register=True):
        return self.prefix + fqn.split(".")[-1] if fqn.startswith("numpy.") else \
            super()._module_format(fqn, register)

    def parenthesize(self, item, level, strict=False):
        # a positive decimal (0.1, 2.5) is one literal: no parentheses around it
        if isinstance(item, sp.Rational) and not item.is_Integer and item > 0 and _decimal(item):
            return _decimal(item)
        return super().parenthesize(item, level, strict)

    def _print_Rational(self, expr):
        return _decimal(expr) or f"{expr.p}/{expr.q}"

    def _print_Half(self, expr):
        return "0.5"

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent == -1:
            return f"1/{self.parenthesize(base, precedence(expr))}"
        if exponent == sp.S.Half:
            return f"{self.prefix}sqrt({self._print(base)})"
        return f"{self.parenthesize(base, precedence(expr))}**" \
               f"{self.parenthesize(exponent, precedence(expr))}"

    def _print_Sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _print_Function(self, expr):
        # a gate of a row (softplus, log_cosh, expm1; sympy's printer finds no method named
        # after their base class): its row's spelling, finite for any x; for people by name
        if not isinstance(expr, PrimitiveGate):
            return super()._print_Function(expr)
        if self.prefix:
            return expr.row.spell("numpy", printed_operands(self, expr.args))
        return f"{expr.row.name}({self._print(expr.args[0])})"

    def _comparison(self, expr):
        a, b = expr.args
        if a.is_number and not b.is_number:  # (x > 0) reads better than (0 < x)
            return f"({self._print(b)} {_FLIPPED[expr.symbol]} {self._print(a)})"
        return f"({self._print(a)} {expr.symbol} {self._print(b)})"

    _print_IsGreater = _print_IsGreaterEqual = _comparison
    _print_IsLess = _print_IsLessEqual = _comparison

    def _print_Where(self, expr):
        condition, a, b = (self._print(arg) for arg in expr.args)
        return f"{self.prefix}where({condition.strip('()')}, {a}, {b})"

    def _extremum(self, expr, function: str):
        """maximum(a, b), nested for more arguments: maximum(maximum(a, b), c)."""
        text = self._print(expr.args[0])
        for arg in expr.args[1:]:
            text = f"{self.prefix}{function}({text}, {self._print(arg)})"
        return text

    def _print_OrderedMax(self, expr):
        return self._extremum(expr, "maximum")

    def _print_OrderedMin(self, expr):
        return self._extremum(expr, "minimum")

    _print_Max = _print_OrderedMax
    _print_Min = _print_OrderedMin


def code_text(expr: sp.Expr) -> str:
    """One right-hand side as the emitted code writes it."""
    if expr.is_Number:  # grad_L = 1.0: a seed is a float, as on the slide
        return repr(float(expr))
    return GraphPrinter().doprint(expr)


def formula_text(expr: sp.Expr) -> str:
    """The same, for people: exp(s4), where(a >= b, a, b)."""
    return GraphPrinter(prefix="").doprint(expr)


def check_names(graph: Graph) -> None:
    """Every input and the output must be usable as Python names in the emitted function."""
    for name in (*graph.inputs, graph.output):
        if not name.isidentifier() or keyword.iskeyword(name):
            raise GraphError(f"the name {name!r} is not a Python name; rename it")
        # Python reads an identifier in its NFKC form: the output --name 𝐱 would be x
        read = unicodedata.normalize("NFKC", name)
        if read != name:
            raise GraphError(f"the name {name!r} reads as {read!r} in Python; write {read!r}")
        if name in RESERVED or name.startswith("grad_"):
            raise GraphError(f"the name {name!r} clashes with a name of the emitted code "
                             f"({', '.join(sorted(RESERVED))} and grad_*); rename it")


def _lines(statements) -> list[str]:
    return [f"{s.target} = {code_text(s.rhs)}" for s in statements]


def emit(graph: Graph, source: str | None = None) -> str:
    """The module: a forward pass, then a backward pass, in one function."""
    check_names(graph)
    statements = forward_statements(graph) + backward_statements(graph)
    uses_sigmoid = any(s.rhs.has(Sigmoid) for s in statements)   # softplus' local too
    gradients = ", ".join(f'"{n}": {grad_name(n)}' for n in graph.inputs)
    return environment().get_template("graph.py.j2").render(
        output=graph.output,
        source=source or formula_text(graph.expr),
        function=FUNCTION,
        parameters=", ".join(graph.inputs),
        helper_lines=list(_SIGMOID_HELPER) if uses_sigmoid else [],
        forward_lines=_lines(forward_statements(graph)),
        backward_lines=_lines(backward_statements(graph)),
        result=f"{graph.output}, {{{gradients}}}",
    )


def load(code: str):
    """The emitted function, ready to call (for tests and the CLI's own checks)."""
    namespace: dict = {}
    exec(compile(code, "<symnet graph>", "exec"), namespace)  # our own emitted code
    return namespace[FUNCTION]
