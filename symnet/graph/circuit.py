"""Computational graphs of scalar expressions (lecture section 02, L17-L22).

    build(expr)          the graph: inputs, then gates in topological order, one node per
                         distinct subexpression (a shared one is built and visited once)
    forward_statements   s0 = w0*x0, ..., L = sigmoid(s3)
    backward_statements  grad_L = 1.0, grad_s3 = grad_L*(1 - L)*L, ...: reverse mode,
                         upstream times local gradient, summed over a node's consumers
    evaluate(graph, at)  every node's value, local gradients and gradient at a point

An *operation* is one of `sympy.count_ops` on a statement's right-hand side, the same
count for forward, backward and a naive `sympy.diff` (see benchmarks/graph_ops.py).
Values are exact while the arithmetic is rational, else 50-digit floats.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sympy as sp

from symnet.graph.gates import (
    GATES,
    UNARY,
    GraphError,
    IsGreater,
    IsGreaterEqual,
    IsLess,
    IsLessEqual,
    OrderedMax,
    OrderedMin,
    Where,
    evaluated,
    negated_term,
    unevaluated,
)
from symnet.graph.rewrite import as_graph_functions

DIGITS = 50
_EXTREMA = {sp.Max: "max", OrderedMax: "max", sp.Min: "min", OrderedMin: "min"}
#: a where gate's comparison, and the same comparison seen from its right side
_FLIPPED = {IsGreater: IsLess, IsGreaterEqual: IsLessEqual, IsLess: IsGreater,
            IsLessEqual: IsGreaterEqual}


@dataclass(frozen=True)
class Node:
    """An input (kind "input") or a gate; `forward` and `local` use the nodes' own names."""

    name: str
    kind: str
    inputs: tuple = ()
    constant: object = None
    forward: sp.Expr | None = None
    #: per input, the factors of its local gradient (empty: the local gradient is 1)
    local: tuple = ()

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name)

    @property
    def label(self) -> str:
        return self.name if self.kind == "input" else GATES[self.kind].label(self.constant)

    def local_gradient(self, position: int) -> sp.Expr:
        """d self / d inputs[position], as the code writes it (it may use this node's output)."""
        factors = self.local[position]
        return unevaluated(sp.Mul, *factors) if len(factors) > 1 else \
            (factors[0] if factors else sp.S.One)


@dataclass(frozen=True)
class Graph:
    expr: sp.Expr
    nodes: tuple
    output: str

    @property
    def inputs(self) -> tuple:
        return tuple(n.name for n in self.nodes if n.kind == "input")

    @property
    def gates(self) -> tuple:
        return tuple(n for n in self.nodes if n.kind != "input")

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def consumers(self, name: str) -> list:
        return [n for n in self.gates if name in n.inputs]


@dataclass(frozen=True)
class Statement:
    """`target = rhs`, one line of straight-line code."""

    target: str
    rhs: sp.Expr

    @property
    def ops(self) -> int:
        return int(sp.count_ops(self.rhs))


def grad_name(name: str) -> str:
    return f"grad_{name}"


# --- building ------------------------------------------------------------------------------


def _value_of(expr: sp.Expr) -> sp.Expr:
    """A constant subexpression as one number (or exact constant like log(2))."""
    value = evaluated(expr)
    if value.has(sp.zoo, sp.oo, sp.nan) or value.is_real is False:
        raise GraphError(f"the constant {sp.sstr(expr)} is not a finite real number")
    return value


class _Builder:
    """Turns a sympy expression into gates, post-order, so inputs come before consumers."""

    def __init__(self):
        self.inputs: dict[str, sp.Symbol] = {}
        self.gates: list[tuple] = []        # (kind, input refs, constant)
        self.by_signature: dict[tuple, tuple] = {}
        self.by_expr: dict[sp.Expr, tuple] = {}

    def gate(self, kind: str, inputs: tuple, constant=None) -> tuple:
        signature = (kind, inputs, constant)
        if signature not in self.by_signature:
            self.gates.append(signature)
            self.by_signature[signature] = ("gate", len(self.gates) - 1)
        return self.by_signature[signature]

    def visit(self, expr: sp.Expr) -> tuple:
        if expr not in self.by_expr:
            self.by_expr[expr] = self._lower(expr)
        return self.by_expr[expr]

    def _lower(self, expr: sp.Expr) -> tuple:
        if isinstance(expr, sp.Symbol):
            return self._input(expr)
        if expr.is_Add:
            return self._add(expr.args)
        if expr.is_Mul:
            return self._mul(expr.args)
        if expr.is_Pow:
            return self._pow(*expr.args)
        if expr.func in _EXTREMA:
            return self._extremum(_EXTREMA[expr.func], expr.args)
        if expr.func in UNARY:
            return self.gate(UNARY[expr.func], (self.visit(expr.args[0]),))
        if isinstance(expr, Where):
            return self._where(expr)
        known = ", ".join(sorted({*UNARY.values(), "max", "min", "sqrt", "+", "-", "*", "/",
                                  "**", "where"}))
        raise GraphError(f"no gate for {type(expr).__name__} in {sp.sstr(expr)} "
                         f"(the gates are: {known})")

    def _where(self, expr) -> tuple:
        """where(u OP c, a, b), a piecewise function's choice (see as_graph_functions)."""
        condition, *branches = expr.args
        if condition.func not in _FLIPPED:
            raise GraphError(f"no gate for the condition {sp.sstr(condition)} in "
                             f"{sp.sstr(expr)}: a where gate compares with <, <=, > or >=")
        comparison, (left, right) = condition.func, condition.args
        if left.is_number:
            comparison, left, right = _FLIPPED[comparison], right, left
        elif not right.is_number:     # u > v as u - v > 0: the where gate compares with c
            left, right = unevaluated(sp.Add, left, unevaluated(sp.Mul, -1, right)), sp.S.Zero
        refs = tuple(self.visit(b) for b in branches if not b.is_number)
        if not refs:
            raise GraphError(f"both branches of {sp.sstr(expr)} are constants: write it "
                             f"with a step of its own")
        values = tuple(_value_of(b) if b.is_number else None for b in branches)
        condition = self.visit(left)
        if condition in refs:        # leaky ReLU's x: one edge, the branch's
            return self.gate("where", refs, (comparison, _value_of(right), *values,
                                             refs.index(condition)))
        return self.gate("where", (condition, *refs),
                         (comparison, _value_of(right), *values, None))

    def _input(self, symbol: sp.Symbol) -> tuple:
        known = self.inputs.setdefault(symbol.name, symbol)
        if known != symbol:
            raise GraphError(f"two different symbols are both named {symbol.name!r}")
        return ("input", symbol.name)

    def _add(self, args) -> tuple:
        constant = sum((_value_of(a) for a in args if a.is_number), sp.S.Zero)
        terms = [a for a in args if not a.is_number]
        ref = self.visit(terms[0])
        for term in terms[1:]:
            negated = negated_term(term)
            ref = self.gate("sub", (ref, self.visit(negated))) if negated is not None \
                else self.gate("add", (ref, self.visit(term)))
        if constant != 0:
            ref = self.gate("add_c", (ref,), (constant, bool(args[0].is_number)))
        return ref

    def _mul(self, args) -> tuple:
        constant = sp.Mul(*(_value_of(a) for a in args if a.is_number))
        factors = [a for a in args if not a.is_number]
        ref = self.visit(factors[0])
        for factor in factors[1:]:
            ref = self.gate("mul", (ref, self.visit(factor)))
        if constant != 1:
            ref = self.gate("mul_c", (ref,), constant)
        return ref

    def _pow(self, base: sp.Expr, exponent: sp.Expr) -> tuple:
        if not exponent.is_number:
            # b^e = exp(e log b): exp, log and mul gates, each with a cheap local gradient
            log_base = sp.S.One if base == sp.E else (
                _value_of(sp.log(base)) if base.is_number else sp.log(base))
            return self.visit(sp.exp(unevaluated(sp.Mul, log_base, exponent)))
        n = _value_of(exponent)
        if n == 0:
            raise GraphError(f"{sp.sstr(base)}**0 is the constant 1: nothing to graph")
        if n == 1:
            return self.visit(base)
        if n.is_negative:
            return self.gate("recip", (self._pow(base, -n),))
        if n == sp.S.Half:
            return self.gate("sqrt", (self.visit(base),))
        return self.gate("pow", (self.visit(base),), n)

    def _extremum(self, kind: str, args) -> tuple:
        operand = args[0] if args[0].is_number else self.visit(args[0])
        for arg in args[1:]:
            if isinstance(operand, tuple) and not arg.is_number:
                operand = self.gate(kind, (operand, self.visit(arg)))
            elif isinstance(operand, tuple):
                operand = self.gate(kind + "_c", (operand,), (_value_of(arg), False))
            elif not arg.is_number:
                operand = self.gate(kind + "_c", (self.visit(arg),), (_value_of(operand), True))
            else:
                raise GraphError(f"{kind}({sp.sstr(operand)}, {sp.sstr(arg)}) is a constant")
        return operand


def _names(builder: _Builder, root: tuple, output: str) -> list[str]:
    """s0, s1, ... for the gates in order, `output` for the last one; never an input's name."""
    taken = set(builder.inputs) | {output}
    names, counter = [], 0
    for index in range(len(builder.gates)):
        if ("gate", index) == root:
            names.append(output)
            continue
        while f"s{counter}" in taken:
            counter += 1
        names.append(f"s{counter}")
        counter += 1
    return names


def build(expr: sp.Expr, output: str = "f") -> Graph:
    """The computational graph of a scalar expression; its output node is named `output`."""
    expr = as_graph_functions(sp.sympify(expr))
    if expr.is_number:
        raise GraphError(f"{sp.sstr(expr)} is a constant: there is no input to graph")
    builder = _Builder()
    root = builder.visit(expr)
    if root[0] == "input":
        raise GraphError(f"{sp.sstr(expr)} is a bare input: there is no gate to graph")
    if output in builder.inputs:
        raise GraphError(f"the output name {output!r} is also an input's name; "
                         f"name the output otherwise (symnet graph --name)")
    names = _names(builder, root, output)

    def name_of(ref):
        return ref[1] if ref[0] == "input" else names[ref[1]]

    nodes = [Node(name, "input") for name in builder.inputs]
    for name, (kind, refs, constant) in zip(names, builder.gates, strict=True):
        inputs = tuple(name_of(r) for r in refs)
        symbols = tuple(sp.Symbol(i) for i in inputs)
        gate = GATES[kind]
        local = gate.local(symbols, sp.Symbol(name), constant)
        nodes.append(Node(name, kind, inputs, constant, gate.forward(symbols, constant),
                          tuple(tuple(sp.sympify(f) for f in fs) for fs in local)))
    return Graph(expr, tuple(nodes), output)


# --- reverse mode --------------------------------------------------------------------------


def forward_statements(graph: Graph) -> list[Statement]:
    return [Statement(n.name, n.forward) for n in graph.gates]


def _contribution(upstream: sp.Symbol, factors: tuple) -> sp.Expr:
    """upstream * local, constants first (-grad_s, 2*grad_s*x), else in the lecture's order."""
    if not factors:
        return upstream
    numbers = [f for f in factors if f.is_number]
    others = [f for f in factors if not f.is_number]
    return unevaluated(sp.Mul, *numbers, upstream, *others)


def backward_statements(graph: Graph) -> list[Statement]:
    """grad_L = 1.0, then each node's gradient as soon as all of its consumers are done:
    the sum over its consumers of upstream times local gradient (L17, L21's copy gate)."""
    statements = [Statement(grad_name(graph.output), sp.S.One)]
    pending = defaultdict(int)
    for gate in graph.gates:
        for name in gate.inputs:
            pending[name] += 1
    parts = defaultdict(list)
    is_input = {n.name: n.kind == "input" for n in graph.nodes}
    for gate in reversed(graph.gates):
        upstream = sp.Symbol(grad_name(gate.name))
        done = []
        for name, factors in zip(gate.inputs, gate.local, strict=True):
            if sp.S.Zero not in factors:   # a where gate's condition takes no gradient
                parts[name].append(_contribution(upstream, factors))
            pending[name] -= 1
            if pending[name] == 0:
                done.append(name)
        # an input's gradient before a gate's, as on the slide (grad_w2, then grad_s2)
        for name in sorted(done, key=lambda n: not is_input[n]):
            terms = parts[name] or [sp.S.Zero]
            rhs = terms[0] if len(terms) == 1 else unevaluated(sp.Add, *terms)
            statements.append(Statement(grad_name(name), rhs))
    return statements


def op_counts(graph: Graph) -> dict:
    return {"forward": sum(s.ops for s in forward_statements(graph)),
            "backward": sum(s.ops for s in backward_statements(graph))}


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    output: str
    at: dict          # input name -> value
    values: dict      # node name -> value
    gradients: dict   # node name -> d output / d node
    local: dict       # gate name -> per input, the local gradient's value

    @property
    def value(self):
        return self.values[self.output]


def _settle(value: sp.Expr, what: str) -> sp.Expr:
    """Exact while rational, else a 50-digit float; a clear error if not finite and real."""
    if not value.is_Rational:
        value = value.evalf(DIGITS)
    if value.is_Number and value.is_finite and value.is_real:
        return value
    if value.has(sp.zoo, sp.oo, -sp.oo):
        kind = "infinite (a division by zero?)"
    elif value.has(sp.nan):
        kind = "undefined"
    else:
        kind = f"complex, {sp.sstr(sp.N(value, 6))}"
    raise GraphError(f"{what} is {kind}: not a finite real number")


def _run(statements, env: dict, where: str, results: dict) -> None:
    for statement in statements:
        what = f"{statement.target} = {sp.sstr(statement.rhs)} at {where}"
        try:
            value = evaluated(statement.rhs, env)
        except GraphError as exc:
            raise GraphError(f"{what}: {exc}") from None
        results[statement.target] = env[sp.Symbol(statement.target)] = _settle(value, what)


def evaluate(graph: Graph, at: dict) -> Evaluation:
    """Values, local gradients and gradients of every node at a point {input name: value}."""
    at = {str(k): sp.sympify(v) for k, v in at.items()}
    missing = [name for name in graph.inputs if name not in at]
    if missing:
        raise GraphError(f"no value for {', '.join(missing)} in the point (--at); "
                         f"the inputs are {', '.join(graph.inputs)}")
    where = ", ".join(f"{n} = {sp.sstr(at[n])}" for n in graph.inputs)
    env = {sp.Symbol(n): at[n] for n in graph.inputs}
    values = {n: at[n] for n in graph.inputs}
    _run(forward_statements(graph), env, where, values)
    local = {g.name: tuple(_settle(evaluated(g.local_gradient(i), env),
                                   f"d{g.name}/d{name} at {where}")
                           for i, name in enumerate(g.inputs))
             for g in graph.gates}
    grads: dict = {}
    _run(backward_statements(graph), env, where, grads)
    gradients = {n.name: grads[grad_name(n.name)] for n in graph.nodes}
    return Evaluation(output=graph.output, values={n.name: values[n.name] for n in graph.nodes},
                      gradients=gradients, local=local, at=at)
