"""Stable primitives: sympy Functions that a declaration uses instead of naive formulas.

``LogSumExp(s, C)`` is log(sum_j exp(s_j)) and ``Softmax(s, C, i)`` is
exp(s_i) / sum_j exp(s_j), over a score vector s of length C. Written this way, a loss
says *which* quantity it computes; code generation lowers each to its stable form
(shift by the max) instead of exponentiating raw logits.

No derivative is written by hand here: each primitive differentiates its own naive
formula and rewrites the result back in terms of the primitives, so
d logsumexp / d s_k comes out as softmax(s)_k and d softmax_i / d s_j as
softmax_i (delta_ij - softmax_j). `symnet.verify.check_primitives` proves each
primitive equal to its naive form.
"""

from __future__ import annotations

import sympy as sp

from symnet.algebra import collapse_indexed


def _is_vector(s) -> bool:
    return isinstance(s, sp.IndexedBase)


class _VectorPrimitive(sp.Function):
    """A function of a whole score vector s (an IndexedBase) of length C."""

    is_real = True

    @property
    def vector(self) -> sp.IndexedBase:
        return self.args[0]

    @property
    def length(self) -> sp.Expr:
        return self.args[1]

    def naive(self) -> sp.Expr:
        raise NotImplementedError

    def _eval_derivative(self, v):
        if not (isinstance(v, sp.Indexed) and v.base == self.vector):
            return sp.Integer(0)
        indices = set(v.indices) | {a for a in self.args[2:] if isinstance(a, sp.Symbol)}
        derivative = collapse_indexed(sp.diff(self.naive(), v), indices)
        return in_softmax_terms(derivative, self.vector, self.length)


class LogSumExp(_VectorPrimitive):
    """log(sum_{j=0}^{C-1} exp(s_j)); lowered as max(s) + log(sum exp(s - max(s)))."""

    nargs = 2

    @classmethod
    def eval(cls, s, C):
        if not _is_vector(s):
            raise TypeError(f"LogSumExp needs a score vector (an IndexedBase), got {s!r}")

    def naive(self) -> sp.Expr:
        s, C = self.args
        j = sp.Dummy("j", integer=True)
        return sp.log(sp.Sum(sp.exp(s[j]), (j, 0, C - 1)))

    def _sympystr(self, printer) -> str:
        return f"logsumexp({printer._print(self.vector)})"

    def _latex(self, printer) -> str:
        return rf"\operatorname{{logsumexp}}\left({printer._print(self.vector)}\right)"


class Softmax(_VectorPrimitive):
    """exp(s_i) / sum_j exp(s_j), the i-th probability; lowered with the max shifted out."""

    nargs = 3
    is_positive = True

    @classmethod
    def eval(cls, s, C, i):
        if not _is_vector(s):
            raise TypeError(f"Softmax needs a score vector (an IndexedBase), got {s!r}")

    @property
    def position(self) -> sp.Expr:
        return self.args[2]

    def naive(self) -> sp.Expr:
        s, C, i = self.args
        j = sp.Dummy("j", integer=True)
        return sp.exp(s[i]) / sp.Sum(sp.exp(s[j]), (j, 0, C - 1))

    def _sympystr(self, printer) -> str:
        return f"softmax({printer._print(self.vector)})[{printer._print(self.position)}]"

    def _latex(self, printer) -> str:
        return (rf"\operatorname{{softmax}}\left({printer._print(self.vector)}\right)"
                rf"_{{{printer._print(self.position)}}}")


def log_softmax(s: sp.IndexedBase, C: sp.Expr, i: sp.Expr) -> sp.Expr:
    """log softmax(s)_i = s_i - logsumexp(s), in stable terms."""
    return s[i] - LogSumExp(s, C)


def naive_form(expr: sp.Expr) -> sp.Expr:
    """Replace every primitive by the textbook formula it stands for."""
    return expr.replace(lambda e: isinstance(e, _VectorPrimitive), lambda e: e.naive())


def _is_partition_sum(e, s, C) -> bool:
    if not (isinstance(e, sp.Sum) and len(e.limits) == 1):
        return False
    j, lower, upper = e.limits[0]
    return lower == 0 and upper == C - 1 and e.function == sp.exp(s[j])


def in_softmax_terms(expr: sp.Expr, s: sp.IndexedBase, C: sp.Expr) -> sp.Expr:
    """Rewrite exp(s_a) / sum_j exp(s_j) as softmax(s)_a and log(sum_j exp(s_j)) as
    logsumexp(s); give the expression back unchanged if the partition sum does not
    cancel."""
    Z = sp.Dummy("Z", positive=True)
    rewritten = expr.replace(lambda e: _is_partition_sum(e, s, C), lambda e: Z)
    if Z not in rewritten.free_symbols:
        return expr
    rewritten = sp.expand_log(rewritten, force=True).subs(sp.log(Z), LogSumExp(s, C))
    rewritten = sp.powsimp(sp.expand_power_exp(rewritten), combine="base")

    def to_softmax(e):
        return (Softmax(s, C, e.args[0].indices[0]) * Z)

    rewritten = sp.expand_power_exp(rewritten).replace(
        lambda e: isinstance(e, sp.exp) and isinstance(e.args[0], sp.Indexed)
        and e.args[0].base == s, to_softmax)
    rewritten = rewritten.replace(
        lambda e: isinstance(e, sp.exp) and e.args[0].is_Mul and len(e.args[0].args) == 2
        and e.args[0].args[0].is_Integer and isinstance(e.args[0].args[1], sp.Indexed)
        and e.args[0].args[1].base == s,
        lambda e: (Softmax(s, C, e.args[0].args[1].indices[0]) * Z) ** e.args[0].args[0])
    rewritten = sp.expand(sp.cancel(rewritten))
    if Z in rewritten.free_symbols:
        return expr
    return rewritten
