"""An expression's value at a point, in high precision, sums and all: what the probes of
symnet.verify.claims and symnet.verify.entrywise compare.

Expanding a sum over a symbolic length with sympy's `doit` and then substituting
numbers is slow (every Max compares symbolic terms); this interpreter walks the
expression once with mpmath numbers instead. Entries of vectors (``s[2]``) are drawn
on first use, so a point is only as large as the expression needs.

It also notices when a kink (a step, max, min, abs, or piecewise condition) is within
`margin` of its switching point, since a probe must not sit on a kink.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp
from sympy.core.relational import Relational
from sympy.logic.boolalg import ITE

from symnet.primitives import naive_form

#: digits of a float literal (0.3, math.sqrt(3)) a comparison does not trust: the
#: literal is one rounding, and each operation on it may round again
LITERAL_SLACK = 3


class NearKink(Exception):
    """The point lies (almost) on a kink; draw another."""


class NotANumber(Exception):
    """The expression is undefined at the point (a pole, log of a negative)."""


class OutsideDomain(NotANumber):
    """A function of the expression has no real value at the point (the square root of a
    negative, log of 0, a pole): the point lies outside that function's domain."""

    def __init__(self, expr):
        self.expr = expr
        super().__init__(str(expr))


_FUNCTIONS = {
    sp.exp: mpmath.exp, sp.log: mpmath.log, sp.tanh: mpmath.tanh, sp.sinh: mpmath.sinh,
    sp.cosh: mpmath.cosh, sp.sin: mpmath.sin, sp.cos: mpmath.cos, sp.atan: mpmath.atan,
    sp.erf: mpmath.erf, sp.sqrt: mpmath.sqrt,
}


@lru_cache(maxsize=256)
def _naive(expr: sp.Expr) -> sp.Expr:
    """naive_form, once per expression: a probe evaluates the same two sides at many
    points, and the rewrite costs more than the evaluation."""
    return naive_form(expr)


class Evaluator:
    """The value of an expression at one point (`symbols`; `draw(base, index)` gives an
    entry of a vector the first time it is read), in `digits` digits; a condition closer
    to its switch than `margin` raises NearKink.

    `shared`: remember each subexpression's value at the point, looked up by identity
    (sympy's == walks the whole tree): the entries of an explicit matrix share most of
    their subexpressions as the same objects. Such entries hold no stable primitive, so
    the rewrite to naive formulas is skipped too."""

    def __init__(self, symbols: dict, draw: Callable, margin: float, digits: int = 50,
                 shared: bool = False):
        self.symbols = dict(symbols)
        self.draw = draw
        self.entries: dict = {}
        self.margin = margin
        self.digits = digits
        self.known: dict | None = {} if shared else None

    def __call__(self, expr: sp.Expr):
        with mpmath.workdps(self.digits):
            value = self._eval(expr if self.known is not None else _naive(expr), {})
            if not isinstance(value, (mpmath.mpf, int)) or not mpmath.isfinite(value):
                raise NotANumber(str(expr))
            return mpmath.mpf(value)

    def _kink_gap(self, gap) -> None:
        if abs(gap) < self.margin:
            raise NearKink

    def _eval(self, e, bound: dict):
        if self.known is None or bound:
            return self._value(e, bound)
        if id(e) not in self.known:         # the node is kept too, so that its id stays its
            self.known[id(e)] = (e, self._value(e, bound))
        return self.known[id(e)][1]

    def _value(self, e, bound: dict):  # noqa: C901 - one case per kind of node
        if e in bound:
            return bound[e]
        if e.is_Number:
            return int(e) if e.is_Integer else mpmath.mpf(sp.Float(e, self.digits))
        if e.is_NumberSymbol:
            return mpmath.mpf(sp.Float(e, self.digits))
        if isinstance(e, sp.Symbol):
            if e not in self.symbols:
                raise KeyError(f"no value for the symbol {e}")
            return self.symbols[e]
        if isinstance(e, sp.Indexed):
            key = (e.base, tuple(int(self._eval(i, bound)) for i in e.indices))
            if key not in self.entries:
                self.entries[key] = self.draw(*key)
            return self.entries[key]
        if isinstance(e, (sp.Sum, sp.Product)):
            return self._reduce(e, e.function, list(e.limits), bound)
        if e.is_Add:
            return mpmath.fsum(self._eval(a, bound) for a in e.args)
        if e.is_Mul:
            return mpmath.fprod(self._eval(a, bound) for a in e.args)
        if e.is_Pow:
            base, power = self._eval(e.base, bound), self._eval(e.exp, bound)
            if base == 0 and power < 0:
                raise OutsideDomain(e)
            result = mpmath.power(base, power)
            if isinstance(result, mpmath.mpc):
                raise OutsideDomain(e)
            return result
        if isinstance(e, sp.KroneckerDelta):
            i, j = (self._eval(a, bound) for a in e.args)
            return int(i == j)
        if isinstance(e, sp.Heaviside):
            u = self._eval(e.args[0], bound)
            self._kink_gap(u)
            if u == 0 and len(e.args) > 1:   # exactly on the kink: the declared value there
                return self._eval(e.args[1], bound)
            return 1 if u > 0 else 0
        if isinstance(e, (sp.Max, sp.Min)):
            values = sorted(self._eval(a, bound) for a in e.args)
            for low, high in zip(values, values[1:], strict=False):
                self._kink_gap(high - low)
            return values[-1] if isinstance(e, sp.Max) else values[0]
        if isinstance(e, sp.Abs):
            u = self._eval(e.args[0], bound)
            self._kink_gap(u)
            return abs(u)
        if isinstance(e, sp.Piecewise):
            for value, condition in e.args:
                if self._truth(condition, bound):
                    return self._eval(value, bound)
            raise OutsideDomain(e)
        if isinstance(e, sp.Function):
            return self._function(e, bound)
        raise NotANumber(f"cannot evaluate {e}")

    def _reduce(self, node, body, limits, bound):
        """A Sum or Product over its limits, innermost limit first."""
        if not limits:
            return self._eval(body, bound)
        (var, lower, upper), rest = limits[0], limits[1:]
        lo, hi = int(self._eval(lower, bound)), int(self._eval(upper, bound))
        terms = [self._reduce(node, body, rest, {**bound, var: n}) for n in range(lo, hi + 1)]
        return mpmath.fsum(terms) if isinstance(node, sp.Sum) else mpmath.fprod(terms)

    def _truth(self, condition, bound) -> bool:
        if condition is sp.true or condition is sp.false:
            return bool(condition)
        if isinstance(condition, ITE):      # sympy's condition on a piecewise value
            test, then, otherwise = condition.args
            return self._truth(then if self._truth(test, bound) else otherwise, bound)
        if isinstance(condition, sp.And):
            return all(self._truth(c, bound) for c in condition.args)
        if isinstance(condition, sp.Or):
            return any(self._truth(c, bound) for c in condition.args)
        if isinstance(condition, sp.Not):
            return not self._truth(condition.args[0], bound)
        if isinstance(condition, Relational):
            gap = self._eval(condition.lhs, bound) - self._eval(condition.rhs, bound)
            if not isinstance(condition, (sp.Eq, sp.Ne)):
                self._kink_gap(gap)
            return bool(condition.func(sp.Float(gap, self.digits), 0))
        raise NotANumber(f"cannot decide {condition}")

    def _function(self, e, bound):
        args = [self._eval(a, bound) for a in e.args]
        fast = _FUNCTIONS.get(e.func)
        try:
            value = fast(*args) if fast else sp.N(e.func(*[sp.Float(a, self.digits)
                                                        for a in args]), self.digits)
        except (ValueError, ZeroDivisionError) as exc:
            raise OutsideDomain(e) from exc
        if isinstance(value, mpmath.mpc) or (isinstance(value, sp.Basic)
                                             and not value.is_real) \
                or (isinstance(value, mpmath.mpf) and not mpmath.isfinite(value)):
            raise OutsideDomain(e)
        return mpmath.mpf(value) if not isinstance(value, sp.Basic) else mpmath.mpf(
            sp.Float(value, self.digits))


def outside_domain_text(exc: OutsideDomain, values: dict) -> str:
    """'sqrt(x) at x = -0.534': the function without a real value and its symbols' values."""
    shown = ", ".join(f"{s} = {mpmath.nstr(values[s], 6)}"
                      for s in sorted(exc.expr.free_symbols, key=str) if s in values)
    return f"{exc.expr} at {shown}" if shown else str(exc.expr)


#: what a user does about a claim without a real value at a probe point
DOMAIN_ADVICE = ("probes draw each symbol from its declared domain (a matrix's entries from "
                 "the domain of the activation that takes it); declare the domain this needs, "
                 "e.g. sympy.Symbol('x', positive=True)")


# --- float literals ----------------------------------------------------------------------


def _float_text(literal: sp.Float) -> str:
    """0.3, 1.73205080756888, 1.0: as a person writes the literal, sign dropped."""
    text = f"{float(abs(literal)):.15g}"
    return text if any(c in text for c in ".einf") else f"{text}.0"


@dataclass(frozen=True)
class Literals:
    """The float literals of a claim (0.3, math.sqrt(3) = 1.7320508075688772) and the
    precision they carry: two sides that agree to it cannot be told apart, so they are
    compared to `digits` digits, not 50. Rationalising them instead does not help: a hand
    derivation's 0.3 * math.sqrt(3) is folded by Python into one float before sympy sees
    it, and its rational differs from 3/10 times sqrt(3)'s near the 16th digit (relatively
    4e-17 for the floats' exact values, 2e-15 by sympy's nsimplify)."""

    floats: tuple = ()

    @classmethod
    def of(cls, *exprs) -> Literals:
        found, seen, stack = set(), set(), [sp.sympify(e) for e in exprs]
        while stack:                # each shared subexpression once (explicit matrices)
            e = stack.pop()
            if e in seen:
                continue
            seen.add(e)
            if isinstance(e, sp.Float):
                found.add(e)
            stack.extend(e.args)
        return cls(tuple(sorted(found)))

    @property
    def digits(self) -> int:
        """Digits the comparison trusts: the least precise literal's, less the slack."""
        least = min(f._prec for f in self.floats)
        return max(1, mpmath.libmp.prec_to_dps(least) - LITERAL_SLACK)

    def tolerance(self, exact):
        """The relative tolerance of a comparison: `exact` without float literals, never
        below it (a literal of 50 digits is compared as exact claims are)."""
        return exact if not self.floats else max(exact, mpmath.mpf(10) ** -self.digits)

    @property
    def shown(self) -> str:
        """'0.07, 0.1': the literals as written, the first three."""
        values = sorted({_float_text(f) for f in self.floats}, key=float)
        return ", ".join(values[:3]) + (", ..." if len(values) > 3 else "")

    def note(self) -> str:
        """'' without float literals, else how the verdict compared them."""
        if not self.floats:
            return ""
        return f"; float literals ({self.shown}) compared to their own precision, " \
               f"{self.digits} digits"

    def probed(self, probes: int) -> str:
        """Why a claim with float literals that simplify could not decide is probed."""
        return (f"simplify could not decide; {probes} random points agree to {self.digits} "
                f"digits, all that the float literals ({self.shown}) carry")

