"""The sigmoid as one gate or as four (L20): a computational graph is not unique.

`elementary` writes every sigmoid(u) as 1/(1 + exp(-u)), the lecture's *-1, exp, +1 and
1/x gates (and softplus(u) as log(1 + exp(u))); `composite` finds every 1/(1 + exp(-u))
and makes it one sigmoid gate, whose local gradient (1 - sigma) sigma is simpler (and
every log(1 + exp(u)) one softplus gate). Both keep the rest of the expression exactly
as written.
"""

from __future__ import annotations

import sympy as sp

from symnet import primitives
from symnet.graph.gates import (
    GraphError,
    IsGreater,
    IsGreaterEqual,
    IsLess,
    IsLessEqual,
    Sigmoid,
    Softplus,
    Where,
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


def _sigmoid_argument(expr: sp.Expr):
    """u where expr is 1/(1 + exp(-u)), else None."""
    if not (expr.is_Pow and expr.args[1] == -1 and expr.args[0].is_Add):
        return None
    terms = expr.args[0].args
    exps = [t for t in terms if isinstance(t, sp.exp)]
    if len(terms) != 2 or 1 not in terms or len(exps) != 1:
        return None
    z = exps[0].args[0]
    negated = negated_term(z)
    return negated if negated is not None else unevaluated(sp.Mul, -1, z)


def _softplus_argument(expr: sp.Expr):
    """u where expr is log(1 + exp(u)), else None."""
    if not (isinstance(expr, sp.log) and expr.args[0].is_Add):
        return None
    terms = expr.args[0].args
    exps = [t for t in terms if isinstance(t, sp.exp)]
    if len(terms) != 2 or 1 not in terms or len(exps) != 1:
        return None
    return exps[0].args[0]


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
    """The catalog's functions as the gates': its logistic (symnet.primitives.Logistic, as
    silu uses it) as the sigmoid gate, its softplus as the softplus gate, a Piecewise (leaky
    ReLU, ELU) as where gates; everything else as written."""
    def to_gates(e):
        if isinstance(e, primitives.Logistic):
            return Sigmoid(e.args[0])
        if isinstance(e, primitives.Softplus):
            return Softplus(e.args[0])
        return _where(e) if isinstance(e, sp.Piecewise) else e
    return _rebuild(sp.sympify(expr), to_gates)


def elementary(expr: sp.Expr) -> sp.Expr:
    """Every sigmoid(u) as the four gates 1/(1 + exp(-u)): *-1, exp, +1, 1/x; every
    softplus(u) as the three log(1 + exp(u))."""
    expr = as_graph_functions(expr)

    def four_gates(e):
        if isinstance(e, Softplus):
            return sp.log(unevaluated(sp.Add, 1, sp.exp(e.args[0])))
        if not isinstance(e, Sigmoid):
            return e
        minus = unevaluated(sp.Mul, -1, e.args[0])
        return unevaluated(sp.Pow, unevaluated(sp.Add, 1, sp.exp(minus)), -1)
    return _rebuild(sp.sympify(expr), four_gates)


def composite(expr: sp.Expr) -> sp.Expr:
    """Every 1/(1 + exp(-u)) as one sigmoid gate, whose local gradient is (1 - sigma) sigma;
    every log(1 + exp(u)) as one softplus gate, whose local gradient is sigma(u)."""
    expr = as_graph_functions(expr)

    def one_gate(e):
        u = _sigmoid_argument(e)
        if u is not None:
            return Sigmoid(u)
        u = _softplus_argument(e)
        return e if u is None else Softplus(u)
    return _rebuild(sp.sympify(expr), one_gate)
