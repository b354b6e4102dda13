"""Rewrites that bring derivatives to the closed form a person writes.

Two families:

* kinks: `Max`, `Min`, `Abs` and `Piecewise` become sums of explicit step functions
  ``Heaviside(u, H0)`` with H0 in {0, 1}, so a tie is resolved by the branch that holds
  there and sympy's ``Heaviside(0) = 1/2`` never appears;
* index notation: sums over Kronecker deltas collapse, factors that do not depend on
  the summation index leave the sum, range conditions on free indices (which are always
  in range for a vector's entry) are dropped, and declared constraints such as
  ``Sum(y[i], (i, 0, C - 1)) = 1`` are applied whatever the dummy index is called.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cmp_to_key, lru_cache

import sympy as sp
from sympy.core.relational import Relational

# --- kinks -------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _primitive(u: sp.Expr) -> sp.Expr:
    """u without a positive constant factor: the step of 9x/10 is the step of x.
    Remembered: the entries of an explicit matrix share their steps, and factoring a
    long argument costs more than everything else done to the step."""
    coeff, rest = sp.factor_terms(u).as_content_primitive()
    return rest if coeff.is_positive else u


def _reversed(u: sp.Expr) -> bool:
    """Whether -u is the orientation a person writes: a margin keeps its constant
    positive (1 - y s > 0), otherwise the leading term is positive (a - b > 0)."""
    constant = u.as_coeff_Add()[0]
    if constant != 0:
        return bool(constant.is_negative)
    return u.could_extract_minus_sign()


def _step(u: sp.Expr, at_zero: int) -> sp.Expr:
    """1 where u > 0, 0 where u < 0 and `at_zero` at u == 0; sign-normalised."""
    u = _primitive(u)
    if _reversed(u):
        return 1 - sp.Heaviside(-u, 1 - at_zero)
    return sp.Heaviside(u, at_zero)


def indicator(condition) -> sp.Expr:
    """The 0/1 expression of a condition built from relationals, And, Or and Not."""
    if condition is sp.true:
        return sp.Integer(1)
    if condition is sp.false:
        return sp.Integer(0)
    if isinstance(condition, (sp.StrictGreaterThan, sp.GreaterThan)):
        return _step(condition.lhs - condition.rhs, int(isinstance(condition, sp.GreaterThan)))
    if isinstance(condition, (sp.StrictLessThan, sp.LessThan)):
        return _step(condition.rhs - condition.lhs, int(isinstance(condition, sp.LessThan)))
    if isinstance(condition, (sp.Eq, sp.Ne)) and condition.lhs.is_integer \
            and condition.rhs.is_integer:
        delta = sp.KroneckerDelta(condition.lhs, condition.rhs)
        return delta if isinstance(condition, sp.Eq) else 1 - delta
    if isinstance(condition, sp.And):
        return sp.Mul(*[indicator(c) for c in condition.args])
    if isinstance(condition, sp.Not):
        return 1 - indicator(condition.args[0])
    if isinstance(condition, sp.Or):
        return 1 - sp.Mul(*[1 - indicator(c) for c in condition.args])
    if isinstance(condition, sp.ITE):   # nested Max/Min (a clip) rewrite to if-then-else
        test, then, otherwise = (indicator(c) for c in condition.args)
        return test * then + (1 - test) * otherwise
    raise ValueError(f"cannot turn the condition {condition} into a step function")


def piecewise_to_steps(expr: sp.Expr) -> sp.Expr:
    """Rewrite every Piecewise as branches weighted by explicit step functions."""

    def convert(pw: sp.Expr) -> sp.Expr:
        if not isinstance(pw, sp.Piecewise):
            return pw
        (value, condition), rest = pw.args[0], pw.args[1:]
        if condition is sp.true or not rest:
            return value
        on = indicator(condition)
        return value * on + (1 - on) * convert(sp.Piecewise(*rest))

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), convert)


def kinks_to_piecewise(expr: sp.Expr) -> sp.Expr:
    """Max, Min and Abs as Piecewise, so that differentiation picks one branch at a tie."""
    return expr.replace(lambda e: isinstance(e, (sp.Max, sp.Min, sp.Abs)),
                        lambda e: e.rewrite(sp.Piecewise))


def signs_to_piecewise(expr: sp.Expr) -> sp.Expr:
    """sign(u) as 1 where u > 0, -1 where u < 0 and 0 at u = 0: a kink like any other, for
    comparing a hand derivation that writes sign (d|w|/dw) with the derived steps."""
    return expr.replace(lambda e: isinstance(e, sp.sign) and e.args[0].is_real,
                        lambda e: sp.Piecewise((1, e.args[0] > 0), (-1, e.args[0] < 0),
                                               (0, True)))


def clean_steps(expr: sp.Expr) -> sp.Expr:
    """H(u)^n = H(u) for a 0/1 step, and a constant step evaluates."""
    return expr.replace(
        lambda e: e.is_Pow and isinstance(e.base, sp.Heaviside) and e.exp.is_positive
        and e.exp.is_integer,
        lambda e: e.base,
    )


def steps_almost_everywhere(expr: sp.Expr) -> sp.Expr:
    """Forget the value at the kink: H(u, h) -> H(u, 0), H(-u, h) -> 1 - H(u, 0).

    Used only to compare two formulas away from kinks; the value *at* a kink is a
    declared convention and is checked on its own.
    """

    def normal(h: sp.Heaviside) -> sp.Expr:
        u = _primitive(h.args[0])
        if _reversed(u):
            return 1 - sp.Heaviside(-u, 0)
        return sp.Heaviside(u, 0)

    return clean_steps(expr.replace(lambda e: isinstance(e, sp.Heaviside), normal))


@dataclass(frozen=True)
class Cases:
    """An expression with steps in one variable, written out on each open interval between
    the steps' breakpoints: pieces[n] is its value above breakpoints[:n] and below
    breakpoints[n:]."""

    variable: sp.Expr
    breakpoints: tuple
    pieces: tuple


def linear_parts(expr: sp.Expr, variable: sp.Expr):
    """(slope, offset) with expr = slope * variable + offset, the slope non-zero and
    neither of them holding the variable; None when expr is not of that form. The
    variable is held as a plain symbol while differentiating: sympy would read another
    entry s[j] of the vector as s[k] when j = k (a slope of KroneckerDelta(j, k)), where
    each entry is a variable of its own."""
    x = sp.Dummy("x", real=True)
    held = expr.xreplace({variable: x})
    if x not in held.free_symbols:
        return None
    slope = sp.diff(held, x)
    if slope == 0 or x in slope.free_symbols:
        return None
    offset = sp.expand(held - slope * x)
    if x in offset.free_symbols:
        return None
    return slope, offset


def compare(a: sp.Expr, b: sp.Expr) -> int | None:
    """-1, 0 or 1 as a < b, a == b or a > b for every value the assumptions allow
    (delta > 0 puts -delta below delta); None when they do not tell."""
    gap = sp.expand(a - b)
    if gap.is_zero:
        return 0
    if gap.is_positive:
        return 1
    if gap.is_negative:
        return -1
    return None


class _Unordered(Exception):
    pass


def _decided(a: sp.Expr, b: sp.Expr) -> int:
    order = compare(a, b)
    if order is None:
        raise _Unordered
    return order


def ordered(values) -> tuple[tuple, tuple] | None:
    """(the distinct values in increasing order, the rank of each of `values` among
    them), or None when the assumptions do not order them."""
    distinct = []
    for value in values:
        if all(compare(value, known) != 0 for known in distinct):
            distinct.append(value)
    try:
        points = sorted(distinct, key=cmp_to_key(_decided))
    except _Unordered:
        return None
    ranks = tuple(next(n for n, point in enumerate(points) if compare(value, point) == 0)
                  for value in values)
    return tuple(points), ranks


def step_values(placed: dict, position: tuple[int, int]) -> dict:
    """Each step's value at `position` = (n, side) on the axis of its variable: at the
    breakpoint of rank n (side 0), just above it (+1) or just below it (-1); just below
    rank len(breakpoints) is above them all. `placed` maps each step to (the rank of its
    breakpoint, whether it rises there); at its own breakpoint a step takes its declared
    value H0, which comparisons away from kinks never ask for."""
    n, side = position
    values = {}
    for step, (rank, rising) in placed.items():
        above = (n - rank) * 2 + side     # the sign of variable - the step's breakpoint
        values[step] = step.args[1] if above == 0 \
            else sp.Integer(int((above > 0) == rising))
    return values


def _breakpoint(u: sp.Expr, variable: sp.Expr):
    """(b, rising) when u = a (variable - b) with a of known sign (rising: a > 0), else None."""
    parts = linear_parts(u, variable)
    if parts is None:
        return None
    slope, offset = parts
    if not (slope.is_positive or slope.is_negative):
        return None
    return sp.expand(-offset / slope), bool(slope.is_positive)


def _split_on(expr: sp.Expr, steps, variable: sp.Expr) -> Cases | None:
    found = {}
    for step in steps:
        if variable not in step.args[0].free_symbols | step.args[0].atoms(sp.Indexed):
            continue   # constant in `variable`: it stays in every piece
        found[step] = _breakpoint(step.args[0], variable)
        if found[step] is None:
            return None
    sorted_points = ordered([point for point, _ in found.values()])
    if sorted_points is None:
        return None
    points, ranks = sorted_points
    placed = {step: (rank, rising)
              for (step, (_, rising)), rank in zip(found.items(), ranks, strict=True)}
    # the open interval below the breakpoint of rank n, for n up to their number
    pieces = tuple(expr.xreplace(step_values(placed, (n, -1)))
                   for n in range(len(points) + 1))
    return Cases(variable, points, pieces)


def split_at_steps(expr: sp.Expr) -> Cases | None:
    """`expr` by cases on one variable, when the argument of each step H(u, 0) that holds
    it is linear in it with a slope of known sign and the assumptions order the
    breakpoints (delta > 0 puts -delta below delta); None otherwise. Away from the
    breakpoints each step is a constant, so each piece holds no step in the variable;
    the value at a breakpoint is not represented (comparisons hold away from kinks)."""
    steps = expr.atoms(sp.Heaviside)
    if not steps:
        return None
    counts: dict = {}
    for step in steps:
        u = step.args[0]
        for candidate in u.atoms(sp.Indexed) | {a for a in u.free_symbols if a.is_Symbol}:
            if candidate.is_real and not candidate.is_integer:
                counts[candidate] = counts.get(candidate, 0) + 1
    for variable in sorted(counts, key=lambda v: (-counts[v], str(v))):
        cases = _split_on(expr, steps, variable)
        if cases is not None:
            return cases
    return None


# --- index notation ----------------------------------------------------------------------


def _sum_variables(s: sp.Sum) -> set:
    return {limit[0] for limit in s.limits}


def split_sums(expr: sp.Expr) -> sp.Expr:
    """Sum(a + b) -> Sum(a) + Sum(b); Sum(c * f(i)) -> c * Sum(f(i)) for c free of i."""

    def split(s: sp.Sum) -> sp.Expr:
        body = sp.expand(s.function)
        variables = _sum_variables(s)
        terms = []
        for term in sp.Add.make_args(body):
            inner, outer = [], []
            for factor in sp.Mul.make_args(term):
                (inner if factor.free_symbols & variables else outer).append(factor)
            if not inner:
                terms.append(sp.Mul(*outer) * _count(s))
            else:
                terms.append(sp.Mul(*outer) * sp.Sum(sp.Mul(*inner), *s.limits))
        return sp.Add(*terms)

    return expr.replace(lambda e: isinstance(e, sp.Sum), split)


def _count(s: sp.Sum) -> sp.Expr:
    n = sp.Integer(1)
    for _, lower, upper in s.limits:
        n *= upper - lower + 1
    return n


def _holds_in_range(relation: Relational, indices) -> bool:
    """Whether a bound on a free index holds because the index is a valid position:
    0 <= index <= S - 1 for a size S (a positive integer symbol) in the bound."""
    sizes = [s for s in relation.free_symbols if s.is_integer and s.is_positive]
    for index in indices:
        if index not in relation.free_symbols:
            continue
        gap = sp.Dummy("gap", integer=True, nonnegative=True)
        positions = [gap] + [size - 1 - gap for size in sizes]
        if any(relation.subs(index, p) is sp.true for p in positions):
            return True
    return False


def drop_range_conditions(expr: sp.Expr, indices) -> sp.Expr:
    """Resolve Piecewise whose conditions only say that free indices are in range."""

    def condition_holds(condition) -> bool:
        if condition is sp.true:
            return True
        parts = condition.args if isinstance(condition, sp.And) else (condition,)
        return all(isinstance(p, Relational) and _holds_in_range(p, indices) for p in parts)

    def resolve(pw: sp.Piecewise) -> sp.Expr:
        for value, condition in pw.args:
            if condition_holds(condition):
                return value
        return pw

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), resolve)


def apply_constraints(expr: sp.Expr, constraints) -> sp.Expr:
    """Replace each constrained sum by its value, whatever its dummy index is called."""
    for constraint in constraints:
        lhs, rhs = constraint.lhs, constraint.rhs
        if not isinstance(lhs, sp.Sum):
            expr = expr.subs(lhs, rhs)
            continue

        def matches(e, lhs=lhs) -> bool:
            if not isinstance(e, sp.Sum) or len(e.limits) != len(lhs.limits):
                return False
            renamed = lhs
            for (old, *_), (new, *_) in zip(lhs.limits, e.limits, strict=True):
                renamed = renamed.xreplace({old: new})
            return renamed == e

        expr = expr.replace(matches, lambda e, rhs=rhs: rhs)
    return expr


SUMMATION_NAMES = ("j", "m", "n", "l", "q", "r", "u", "v")


#: the most orders of one chain of nested sums tried for the canonical one (4! = 24)
MOST_ORDERS = 24


def canonical_dummies(expr: sp.Expr) -> sp.Expr:
    """Rename summation variables by nesting depth, so equal sums compare equal; the
    names are letters the expression does not already use. Nested sums over the same
    range whose bounds do not depend on each other may be taken in any order
    (sum_a sum_b = sum_b sum_a): of those orders, the one whose renamed form sorts first is
    taken, so that a sum written in the other order compares equal too."""
    taken = {str(s) for s in expr.free_symbols}
    names = [n for n in SUMMATION_NAMES if n not in taken]
    names += [f"n{depth}" for depth in range(len(SUMMATION_NAMES))]

    def renamed(levels, body, order, depth: int) -> sp.Expr:
        """The chain of sums with the variable order[k] at position k, named by depth."""
        fresh = [sp.Symbol(names[depth + k], integer=True) for k in range(len(order))]
        body = body.xreplace(dict(zip(order, fresh, strict=True)))
        body = rename(body, depth + len(order))
        positions = iter(zip(fresh, [limit[1:] for level in levels for limit in level],
                             strict=True))
        for level in reversed(levels):
            limits = [next(positions) for _ in level]
            body = (body, limits)
        return _rebuilt(body)

    def _rebuilt(nested) -> sp.Expr:
        body, limits = nested
        inner = body if not isinstance(body, tuple) else _rebuilt(body)
        return sp.Sum(inner, *[(var, lower, upper) for var, (lower, upper) in limits])

    def rename(e: sp.Expr, depth: int) -> sp.Expr:
        if not e.args:
            return e
        if isinstance(e, sp.Sum):
            levels, body = _sum_chain(e)
            return min((renamed(levels, body, order, depth) for order in _orders(levels)),
                       key=sp.default_sort_key)
        return e.func(*[rename(arg, depth) for arg in e.args])

    return rename(expr, 0)


def _sum_chain(e: sp.Sum) -> tuple[list, sp.Expr]:
    """The limits of each sum nested directly in `e` (outermost first), and the innermost
    summand."""
    levels, body = [], e
    while isinstance(body, sp.Sum):
        levels.append(body.limits)
        body = body.function
    return levels, body


def _orders(levels) -> list[tuple]:
    """The orders of the chain's variables that swap sums over the same range only, or the
    written order alone where a bound depends on another variable or there are too many."""
    limits = [limit for level in levels for limit in level]
    written = tuple(var for var, *_ in limits)
    bound = set(written)
    if any((lower.free_symbols | upper.free_symbols) & bound for _, lower, upper in limits):
        return [written]
    orders = [
        order for order in itertools.permutations(written)
        if all(limits[written.index(var)][1:] == limit[1:]
               for var, limit in zip(order, limits, strict=True))]
    return orders if len(orders) <= MOST_ORDERS else [written]


def collapse_indexed(expr: sp.Expr, indices, constraints=()) -> sp.Expr:
    """Bring an index-form expression to closed form: deltas summed, constants pulled
    out of sums, range conditions on the free `indices` dropped, constraints applied."""
    for _ in range(3):
        before = expr
        expr = split_sums(expr)
        expr = expr.replace(lambda e: isinstance(e, sp.Sum) and e.has(sp.KroneckerDelta),
                            lambda e: e.doit())
        expr = drop_range_conditions(expr, indices)
        expr = apply_constraints(split_sums(expr), constraints)
        if expr == before:
            break
    return canonical_dummies(expr)


def absorb_sign(expr: sp.Expr) -> sp.Expr:
    """-a*(b - c) -> a*(c - b): the form a person writes (sigma*(1 - sigma)); the factor
    turned round is one with a negative constant (-3*x*(5*x - 2) -> 3*x*(2 - 5*x)) if
    there is one, a sum or an odd power of one."""
    if not expr.is_Mul:
        return expr
    coeff, rest = expr.as_coeff_Mul()
    if not (coeff.is_Rational and coeff.is_negative):
        return expr
    factors = list(sp.Mul.make_args(rest))
    odd = [n for n, f in enumerate(factors)
           if f.is_Add or (f.is_Pow and f.base.is_Add and f.exp.is_odd and f.exp.is_positive)]
    if not odd:
        return expr
    n = min(odd, key=lambda n: not factors[n].as_base_exp()[0].as_coeff_Add()[0].is_negative)
    base, power = factors[n].as_base_exp()
    factors[n] = sp.expand(-base) ** power
    return sp.Mul(-coeff, *factors)
