"""Sums over Kronecker deltas brought to closed form by symnet's own rules (sympy's
Sum.doit fails for a sum over the batch axis: gosper_sum -> hypersimp: TypeError, and
leaves Piecewise ranges where it works). Used by the derivation (derive.py), the proofs
(check.py) and the invariance of a statistic; imports nothing of symnet.
"""

from __future__ import annotations

import sympy as sp


def summation_ranges(expr: sp.Expr) -> dict:
    """Each summation variable of expr -> its number of values (upper - lower + 1)."""
    return {v: sp.expand(upper - lower + 1) for s in expr.atoms(sp.Sum)
            for v, lower, upper in s.limits}


def collapse(expr: sp.Expr, ranges: dict) -> sp.Expr:
    """Sums brought to closed form, innermost first: Sum(f(k) delta(k, p), k) -> f(p) for a
    p with k's range, factors free of k moved out, Sum(c, k) -> (number of k) * c, and
    delta(a, b)**n -> delta(a, b). `ranges` gives the free indices' ranges; the
    summation variables are distinct (fresh_dummies), so substituting never captures."""
    ranges = {**ranges, **summation_ranges(expr)}

    def visit(e: sp.Expr) -> sp.Expr:
        if not e.args or isinstance(e, sp.Indexed):
            return e
        if isinstance(e, sp.Sum):
            body = visit(e.function)
            for limit in e.limits:
                body = sum_one(body, limit, ranges)
            return body
        e = e.func(*[visit(a) for a in e.args])
        if e.is_Pow and isinstance(e.base, sp.KroneckerDelta) and e.exp.is_positive:
            return e.base
        return e

    return visit(expr)


def _distributed(expr: sp.Expr) -> sp.Expr:
    """Products multiplied out over sums, nothing else (no powers of sums expanded)."""
    return sp.expand(expr, power_base=False, power_exp=False, multinomial=False, log=False)


def sum_one(body: sp.Expr, limit: tuple, ranges: dict) -> sp.Expr:
    variable, lower, upper = limit
    extent = sp.expand(upper - lower + 1)
    total = []
    for term in sp.Add.make_args(_distributed(body)):
        factors = list(sp.Mul.make_args(term))
        position = _delta_partner(factors, variable, extent, ranges)
        if position is not None:
            delta, partner = position
            rest = sp.Mul(*(f for f in factors if f is not delta))
            total.append(rest.xreplace({variable: partner}))
            continue
        inner = [f for f in factors if variable in f.free_symbols]
        outer = [f for f in factors if variable not in f.free_symbols]
        if not inner:
            total.append(extent * term)
        else:
            total.append(sp.Mul(*outer) * sp.Sum(sp.Mul(*inner), (variable, lower, upper)))
    return sp.Add(*total)


def _delta_partner(factors, variable, extent, ranges):
    for factor in factors:
        if isinstance(factor, sp.KroneckerDelta) and variable in factor.args:
            first, second = factor.args
            partner = second if first == variable else first
            if partner != variable and sp.expand(ranges.get(partner, -1) - extent) == 0:
                return factor, partner
    return None
