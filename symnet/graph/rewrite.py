"""The sigmoid as one gate or as four (L20): a computational graph is not unique.

`elementary` writes every sigmoid(u) as 1/(1 + exp(-u)), the lecture's *-1, exp, +1 and
1/x gates (and softplus(u) as log(1 + exp(u))); `composite` finds every 1/(1 + exp(-u))
and makes it one sigmoid gate, whose local gradient (1 - sigma) sigma is simpler (and
every log(1 + exp(u)) one softplus gate). Both keep the rest of the expression exactly
as written.

Neither knows a formula of its own: each reads the naive formula of every row of the table
of stable primitives (symnet.primitives.TABLE) that a graph holds as a gate
(gates.ROW_GATES), so that log(cosh(u)), sinh(u)/cosh(u) and exp(u) - 1 are gates too, and
so is the naive formula of a row added to the table.
"""

from __future__ import annotations

from functools import cache
from itertools import permutations

import sympy as sp

from symnet.graph.gates import (
    ROW_GATES,
    GraphError,
    IsGreater,
    IsGreaterEqual,
    IsLess,
    IsLessEqual,
    PrimitiveGate,
    Where,
    evaluated,
    graph_rows,
    negated_term,
    unevaluated,
)

#: a piecewise condition's relation as the where gate's comparison
_COMPARISONS = {sp.StrictGreaterThan: IsGreater, sp.GreaterThan: IsGreaterEqual,
                sp.StrictLessThan: IsLess, sp.LessThan: IsLessEqual}


def _rebuild(expr: sp.Expr, rewrite) -> sp.Expr:
    """Bottom-up rewrite that keeps sums and products as written (no re-evaluation)."""
    if expr.is_Atom:
        return expr
    args = [_rebuild(a, rewrite) for a in expr.args]
    if expr.is_Add or expr.is_Mul or expr.is_Pow:
        expr = expr.func(*args, evaluate=False)
    elif tuple(args) != expr.args:
        expr = expr.func(*args)
    return rewrite(expr)


@cache
def _naive_formulas() -> list[tuple[sp.Expr, sp.Symbol, type]]:
    """(naive formula, its argument, the gate it becomes) for each row a graph holds, in the
    table's order: the first row with a formula gives its gate."""
    return [(row.naive(row.arguments[0]), row.arguments[0], ROW_GATES[row.name])
            for row in graph_rows()]


def _divided(expr: sp.Expr, coefficient: sp.Expr) -> sp.Expr:
    """expr / coefficient as written: -z's z for -1 (any other z as -1*z, so that every
    1/(1 + exp(z)) is a sigmoid, of -z)."""
    if coefficient == -1:
        negated = negated_term(expr)
        return negated if negated is not None else unevaluated(sp.Mul, -1, expr)
    return unevaluated(sp.Mul, 1 / coefficient, expr)


def _binds(formula: sp.Expr, expr: sp.Expr, u: sp.Symbol, bound: dict) -> bool:
    """Whether expr, as written, is `formula` for some u (put in `bound`): the same tree,
    the terms of a sum and factors of a product in any order, numbers by value."""
    if formula == u:
        return bound.setdefault(u, expr) == expr
    coefficient, rest = formula.as_coeff_Mul()
    if rest == u and coefficient != 1:        # the sigmoid's -u
        return _binds(u, _divided(expr, coefficient), u, bound)
    if formula.is_Number:
        return bool(expr.is_number) and evaluated(expr) == formula
    if formula.is_Atom or formula.func != expr.func or len(formula.args) != len(expr.args):
        return False
    orders = permutations(expr.args) if formula.is_Add or formula.is_Mul else [expr.args]
    for args in orders:
        trial = dict(bound)
        if all(_binds(f, a, u, trial) for f, a in zip(formula.args, args, strict=True)):
            bound.update(trial)
            return True
    return False


def _written(formula: sp.Expr, u: sp.Symbol, argument: sp.Expr) -> sp.Expr:
    """formula at u = argument, each sum, product and power as written (no evaluation)."""
    if formula == u:
        return argument
    if formula.is_Atom:
        return formula
    args = [_written(a, u, argument) for a in formula.args]
    if formula.is_Add or formula.is_Mul or formula.is_Pow:
        return unevaluated(formula.func, *args)
    return formula.func(*args)


def _where(piecewise: sp.Piecewise) -> sp.Expr:
    """Piecewise((a, c1), (b, c2), (d, True)) as where(c1, a, where(c2, b, d))."""
    *pieces, (choice, last) = piecewise.args
    if last != sp.true:
        raise GraphError(f"{sp.sstr(piecewise)} is undefined where no condition holds; "
                         f"end it with a piece for True")
    for branch, condition in reversed(pieces):
        if condition.func not in _COMPARISONS:
            raise GraphError(f"no gate for the condition {sp.sstr(condition)} in "
                             f"{sp.sstr(piecewise)}: a where gate compares with <, <=, > or >=")
        choice = Where(_COMPARISONS[condition.func](*condition.args), branch, choice)
    return choice


def as_graph_functions(expr: sp.Expr) -> sp.Expr:
    """The catalog's functions as the gates': each primitive of a row (symnet.primitives:
    its Logistic, as silu uses it, its Softplus) as its row's gate, a Piecewise (leaky
    ReLU, ELU) as where gates; everything else as written."""
    gates = {row.function: ROW_GATES[row.name] for row in graph_rows() if row.function}

    def to_gates(e):
        if type(e) in gates:
            return gates[type(e)](*e.args)
        return _where(e) if isinstance(e, sp.Piecewise) else e
    return _rebuild(sp.sympify(expr), to_gates)


def elementary(expr: sp.Expr) -> sp.Expr:
    """Every gate of a row as its row's naive formula: sigmoid(u) as the four gates
    1/(1 + exp(-u)) (*-1, exp, +1, 1/x), softplus(u) as the three log(1 + exp(u))."""
    expr = as_graph_functions(expr)

    def naive(e):
        if not isinstance(e, PrimitiveGate):
            return e
        u = e.row.arguments[0]
        return _written(e.row.naive(u), u, e.args[0])
    return _rebuild(sp.sympify(expr), naive)


def composite(expr: sp.Expr) -> sp.Expr:
    """Every naive formula of a row as its one gate: 1/(1 + exp(-u)) as the sigmoid, whose
    local gradient is (1 - sigma) sigma; log(1 + exp(u)) as softplus, whose local gradient
    is sigma(u); log(cosh(u)), sinh(u)/cosh(u), exp(u) - 1 as theirs."""
    expr = as_graph_functions(expr)

    def one_gate(e):
        for formula, u, gate in _naive_formulas():
            bound = {}
            if _binds(formula, e, u, bound):
                return gate(bound[u])
        return e
    return _rebuild(sp.sympify(expr), one_gate)
