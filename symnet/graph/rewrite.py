"""The sigmoid as one gate or as four (L20): a computational graph is not unique.

`elementary` writes every sigmoid(u) as 1/(1 + exp(-u)), the lecture's *-1, exp, +1 and
1/x gates; `composite` finds every 1/(1 + exp(-u)) and makes it one sigmoid gate, whose
local gradient (1 - sigma) sigma is simpler. Both keep the rest of the expression exactly
as written.
"""

from __future__ import annotations

import sympy as sp

from symnet.graph.gates import Sigmoid, negated_term, unevaluated


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


def elementary(expr: sp.Expr) -> sp.Expr:
    """Every sigmoid(u) as the four gates 1/(1 + exp(-u)): *-1, exp, +1, 1/x."""
    def four_gates(e):
        if not isinstance(e, Sigmoid):
            return e
        minus = unevaluated(sp.Mul, -1, e.args[0])
        return unevaluated(sp.Pow, unevaluated(sp.Add, 1, sp.exp(minus)), -1)
    return _rebuild(sp.sympify(expr), four_gates)


def composite(expr: sp.Expr) -> sp.Expr:
    """Every 1/(1 + exp(-u)) as one sigmoid gate, whose local gradient is (1 - sigma) sigma."""
    def one_gate(e):
        u = _sigmoid_argument(e)
        return e if u is None else Sigmoid(u)
    return _rebuild(sp.sympify(expr), one_gate)
