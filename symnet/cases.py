"""Several steps of one variable as cases over its intervals (Huber's r < -delta,
|r| <= delta, r > delta): the page shows such a gradient as cases, and the code generator
writes it as one chain of np.where instead of a tree. Below both, so that a page of a
derivation does not depend on a lowering routine."""

from __future__ import annotations

import sympy as sp

from symnet.algebra import linear_parts, ordered, step_values


def linear_in(a: sp.Expr, v: sp.Symbol):
    """(c, d) with a = c v + d for a finite non-zero number c, else None: a threshold
    then compares the variable with an expression of the parameters alone."""
    parts = linear_parts(a, v)
    if parts is None or not (parts[0].is_number and parts[0].is_finite):
        return None
    return parts


def _one_variable(steps: list):
    """(u, v, (scale, shift), [(ratio, threshold) per step]) where u = scale*v + shift is
    the simplest argument, linear in a symbol v, and every step's argument is
    ratio*(u - threshold); else None."""
    arguments = [step.args[0] for step in steps]
    # u: an argument without its constant, its leading term positive (x for x + 1, 1 - x)
    candidates = [a.as_coeff_Add()[1] for a in arguments] + _shared_parts(arguments)
    candidates = [-c if c.could_extract_minus_sign() else c for c in candidates]
    u = min(candidates, key=lambda a: (len(a.free_symbols), sp.count_ops(a),
                                       sp.default_sort_key(a)))
    variables = [v for v in u.free_symbols if v.is_real and not v.is_integer]
    for v in sorted(variables, key=sp.default_sort_key):
        base = linear_in(u, v)
        parts = [linear_in(a, v) for a in arguments]
        if base is None or None in parts:
            continue
        lines = []
        for c, d in parts:
            ratio = c / base[0]
            rest = sp.expand(d - ratio * base[1])
            lines.append((ratio, -rest / ratio))
        return u, v, base, lines
    return None


def _same(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.expand(a - b) == 0


def _simplest(expr: sp.Expr) -> sp.Expr:
    candidates = [expr, sp.expand(expr), sp.factor_terms(sp.expand(expr))]
    return min(candidates, key=lambda e: (sp.count_ops(e), sp.default_sort_key(e)))


def _shared_parts(arguments: list) -> list:
    """v + w for each variable v of the arguments, each linear in it, and w the terms they
    all hold once divided by their slope: Huber's delta + r and delta - r share r = s - y
    (where no argument is r alone)."""
    found = []
    common = set.intersection(*(a.free_symbols for a in arguments))
    for v in sorted((c for c in common if c.is_real and not c.is_integer),
                    key=sp.default_sort_key):
        parts = [linear_in(a, v) for a in arguments]
        if None not in parts:
            shared = set.intersection(*(set(sp.Add.make_args(sp.expand(d / c)))
                                        for c, d in parts))
            found += [v + sp.Add(*shared)] if shared else []
    return found


def one_variable_cases(expr: sp.Expr, steps: list, path: tuple):
    """Several steps of one variable u (Huber's r < -delta, |r| <= delta, r > delta) as
    [(formula, path, condition)] over intervals of u in increasing order, each path the
    steps' values there (for clamping), instead of a tree of np.where; None when the
    steps are not all of one variable or cannot be ordered. The value at each kink is
    that of its steps there, exactly."""
    found = _one_variable(steps)
    if found is None:
        return None
    u, v, (scale, shift), lines = found
    sorted_points = ordered([t for _, t in lines])
    if sorted_points is None:
        return None
    points, ranks = sorted_points
    placed = {step: (rank, bool(ratio > 0))
              for step, (ratio, _), rank in zip(steps, lines, ranks, strict=True)}

    def piece(position):
        values = step_values(placed, position)
        return _simplest(expr.xreplace(values)), path + tuple((s, bool(values[s]))
                                                              for s in steps)

    def at(value, point):   # a piece's formula where u = point
        return sp.expand(value.subs(v, (point - shift) / scale))

    cases, (current, current_path) = [], piece((0, -1))
    for n, point in enumerate(points):
        here, here_path = piece((n, 0))
        above, above_path = piece((n, 1))
        # the kink joins the side whose formula it takes (the declared branch), else a
        # side that takes its value there, else it is a case of its own
        joins_below = _same(here, current) or (not _same(here, above)
                                               and at(here, point) == at(current, point))
        if not joins_below and not _same(here, above) and at(here, point) != at(above, point):
            cases += [(current, current_path, sp.Lt(u, point)),
                      (here, here_path, sp.Le(u, point))]
        elif not _same(above, current):
            relation = sp.Le if joins_below else sp.Lt
            cases.append((current, current_path, relation(u, point)))
        else:
            continue
        current, current_path = above, above_path
    cases.append((current, current_path, sp.true))
    return cases
