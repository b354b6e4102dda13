"""Stable primitives: sympy Functions that a declaration uses instead of naive formulas.

``LogSumExp(s, C)`` is log(sum_j exp(s_j)) and ``Softmax(s, C, i)`` is
exp(s_i) / sum_j exp(s_j), over a score vector s of length C; ``Softplus(u)`` is
log(1 + exp(u)) and ``Logistic(u)`` is 1 / (1 + exp(-u)) (the sigmoid) of one real
argument. Written this way, a declaration says *which* quantity it computes; code
generation lowers each to its stable form (shift by the max, ``np.logaddexp``, exp of
-|u| only) instead of exponentiating raw logits.

No derivative is written by hand here: each primitive differentiates its own naive
formula and rewrites the result back in terms of the primitives, so
d logsumexp / d s_k comes out as softmax(s)_k, d softmax_i / d s_j as
softmax_i (delta_ij - softmax_j), d softplus(u) / du as logistic(u) and
d logistic(u) / du as logistic(u) (1 - logistic(u)). `symnet.verify.check_primitives`
proves each primitive equal to its naive form.

Example (a user's own file)::

    import sympy as sp
    from symnet import Activation, Loss, Gradient
    from symnet.primitives import Logistic, Softplus
    from symnet.symbols import C, i, k, s, x, y

    softplus = Activation("softplus", Softplus(x), inputs=x,
                          hand=[Gradient(Logistic(x), label="softplus' = sigmoid")])
    bce = Loss("bce", sp.Sum(Softplus(s[i]) - y[i] * s[i], (i, 0, C - 1)), scores=s,
               size=C, target=y, target_kind="real",
               hand=[Gradient(Logistic(s[k]) - y[k], label="sigmoid(s) - y")])
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from symnet.algebra import absorb_sign, collapse_indexed


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


class ScalarPrimitive(sp.Function):
    """A function of one real argument u, defined by its naive formula `formula(u)`."""

    nargs = 1

    @staticmethod
    def formula(u: sp.Expr) -> sp.Expr:
        raise NotImplementedError

    def naive(self) -> sp.Expr:
        return self.formula(self.args[0])

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self.naive()._eval_evalf(prec)

    def fdiff(self, argindex=1):
        u, derivative = _derivative_of(type(self))
        return derivative.xreplace({u: self.args[0]})


@cache
def _derivative_of(primitive: type[ScalarPrimitive]) -> tuple[sp.Dummy, sp.Expr]:
    """(u, d formula(u)/du in primitive terms), derived once per primitive: sympy asks for
    it at every application it differentiates, and the factor and cancel that bring it to
    primitive terms take about 30 ms each time."""
    u = sp.Dummy("u", real=True)
    return u, in_logistic_terms(sp.diff(primitive.formula(u), u), u)


class Softplus(ScalarPrimitive):
    """log(1 + exp(u)); lowered as np.logaddexp(0, u), finite for any u."""

    @staticmethod
    def formula(u: sp.Expr) -> sp.Expr:
        return sp.log(1 + sp.exp(u))

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _sympystr(self, printer) -> str:
        return f"softplus({printer._print(self.args[0])})"

    def _numpycode(self, printer) -> str:   # sympy's lambdify: the stable form too
        return f"{printer._module_format('numpy.logaddexp')}(0, {printer._print(self.args[0])})"

    def _latex(self, printer, exp=None) -> str:
        tex = rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


class Logistic(ScalarPrimitive):
    """The logistic sigmoid 1 / (1 + exp(-u)); lowered from exp(-|u|) <= 1 only."""

    @staticmethod
    def formula(u: sp.Expr) -> sp.Expr:
        return 1 / (1 + sp.exp(-u))

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _sympystr(self, printer) -> str:
        return f"sigmoid({printer._print(self.args[0])})"

    def _numpycode(self, printer) -> str:   # exp(-softplus(-u)): never overflows
        minus = printer._print(-self.args[0])
        return (f"{printer._module_format('numpy.exp')}"
                f"(-{printer._module_format('numpy.logaddexp')}(0, {minus}))")

    def _latex(self, printer, exp=None) -> str:
        tex = rf"\sigma\left({printer._print(self.args[0])}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


def in_logistic_terms(expr: sp.Expr, u: sp.Expr) -> sp.Expr:
    """Rewrite exp(u) and exp(-u) through q = logistic(u) (exp(u) = q / (1 - q)); give
    the expression back unchanged if an exp of u remains."""
    q = sp.Dummy("q", positive=True)
    ratio = {u: q / (1 - q), -u: (1 - q) / q}
    rewritten = sp.expand_power_exp(expr).replace(
        lambda e: isinstance(e, sp.exp) and e.args[0] in ratio, lambda e: ratio[e.args[0]])
    if rewritten.has(sp.exp):
        return expr
    return absorb_sign(sp.factor(sp.cancel(rewritten))).xreplace({q: Logistic(u)})


def log_softmax(s: sp.IndexedBase, C: sp.Expr, i: sp.Expr) -> sp.Expr:
    """log softmax(s)_i = s_i - logsumexp(s), in stable terms."""
    return s[i] - LogSumExp(s, C)


def naive_form(expr: sp.Expr) -> sp.Expr:
    """Replace every primitive by the textbook formula it stands for."""
    return expr.replace(lambda e: isinstance(e, (_VectorPrimitive, ScalarPrimitive)),
                        lambda e: e.naive())


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
