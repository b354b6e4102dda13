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

`TABLE` (at the end) holds one row per primitive (`symnet.stable_rows.StableRow`): its
naive formula, its stable form and the identity between them, its numpy spelling and the
comment generated code carries; the classes here, code generation, the verifier and the
graph's gates read it, so a primitive is known in one place.

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
from sympy.codegen.cfunctions import expm1

from symnet.algebra import absorb_sign, collapse_indexed
from symnet.stable_rows import StableRow, lambdified
from symnet.symbols import C, i, s


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

    #: the name of its row in TABLE, which holds its naive formula
    row: str

    def naive(self) -> sp.Expr:
        return TABLE[self.row].naive(*self.args)

    def _eval_derivative(self, v):
        if not (isinstance(v, sp.Indexed) and v.base == self.vector):
            return sp.Integer(0)
        indices = set(v.indices) | {a for a in self.args[2:] if isinstance(a, sp.Symbol)}
        derivative = collapse_indexed(sp.diff(self.naive(), v), indices)
        return in_softmax_terms(derivative, self.vector, self.length)


class LogSumExp(_VectorPrimitive):
    """log(sum_{j=0}^{C-1} exp(s_j)); lowered as max(s) + log(sum exp(s - max(s)))."""

    nargs = 2
    row = "logsumexp"

    @classmethod
    def eval(cls, s, C):
        if not _is_vector(s):
            raise TypeError(f"LogSumExp needs a score vector (an IndexedBase), got {s!r}")

    def _sympystr(self, printer) -> str:
        return f"logsumexp({printer._print(self.vector)})"

    def _latex(self, printer) -> str:
        return rf"\operatorname{{logsumexp}}\left({printer._print(self.vector)}\right)"


class Softmax(_VectorPrimitive):
    """exp(s_i) / sum_j exp(s_j), the i-th probability; lowered with the max shifted out."""

    nargs = 3
    row = "softmax"
    is_positive = True

    @classmethod
    def eval(cls, s, C, i):
        if not _is_vector(s):
            raise TypeError(f"Softmax needs a score vector (an IndexedBase), got {s!r}")

    @property
    def position(self) -> sp.Expr:
        return self.args[2]

    def _sympystr(self, printer) -> str:
        return f"softmax({printer._print(self.vector)})[{printer._print(self.position)}]"

    def _latex(self, printer) -> str:
        return (rf"\operatorname{{softmax}}\left({printer._print(self.vector)}\right)"
                rf"_{{{printer._print(self.position)}}}")


class ScalarPrimitive(sp.Function):
    """A function of one real argument u, defined by its naive formula `formula(u)`, which
    its row of TABLE holds."""

    nargs = 1
    row: str

    @classmethod
    def formula(cls, u: sp.Expr) -> sp.Expr:
        return TABLE[cls.row].naive(u)

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

    row = "softplus"

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _sympystr(self, printer) -> str:
        return f"softplus({printer._print(self.args[0])})"

    def _numpycode(self, printer) -> str:   # sympy's lambdify: the stable form too
        return lambdified(TABLE[self.row], printer, self.args)

    def _latex(self, printer, exp=None) -> str:
        tex = rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


class Logistic(ScalarPrimitive):
    """The logistic sigmoid 1 / (1 + exp(-u)); lowered from exp(-|u|) <= 1 only."""

    row = "sigmoid"

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _sympystr(self, printer) -> str:
        return f"sigmoid({printer._print(self.args[0])})"

    def _numpycode(self, printer) -> str:   # exp(-softplus(-u)): never overflows
        return lambdified(TABLE[self.row], printer, self.args)

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
    return TABLE["log_softmax"].stable(s, C, i)


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


# --- the table of stable primitives ----------------------------------------------------------
# One row per primitive (symnet.stable_rows): its naive formula, its stable form and the
# identity between them, its spelling per target and the comment generated code carries.
# The sympy classes above read their naive formula here; `symnet check` proves the identity
# of each row with a class; code generation prints the spelling and the comment; the
# graph's gates take their formula from here. The vector rows' numpy spelling is the whole
# computation on an (N, C) array; generated code computes the same in statements that share
# the row max (symnet.codegen.batch).

U = sp.Symbol("u", real=True)
T = sp.Symbol("t", nonnegative=True)
#: any real shift of the scores: the identity holds for every one, the code takes the max
SHIFT = sp.Symbol("shift", real=True)
_m = sp.Symbol("m", integer=True)

_MAX = "np.max({0}, axis=-1, keepdims=True)"
_SHIFTED_EXP = f"np.exp({{0}} - {_MAX})"
_SHIFTED_WHY = "each row's max, shifted out so that exp never overflows"
_BOUNDED_EXP = "np.exp(-np.abs({0}))"


def _partition(s, C, shift=0):
    """sum_j exp(s_j - shift), over a fresh index."""
    j = sp.Dummy("j", integer=True) if shift == 0 else _m
    return sp.Sum(sp.exp(s[j] - shift), (j, 0, C - 1))


def _naive_logistic(u):
    return 1 / (1 + sp.exp(-u))


def _bounded_logistic(u):
    bounded = sp.exp(-sp.Abs(u))
    return sp.Piecewise((1, u >= 0), (bounded, True)) / (1 + bounded)


_ROWS = (
    StableRow(
        "logsumexp", (s, C), naive=lambda s, C: sp.log(_partition(s, C)),
        stable=lambda s, C: SHIFT + sp.log(_partition(s, C, SHIFT)),
        claim="logsumexp(s) = shift + log sum_j e^(s_j - shift)",
        spelling={"numpy": f"np.max({{0}}, axis=-1) + np.log({_SHIFTED_EXP}.sum(axis=-1))"},
        why=_SHIFTED_WHY, function=LogSumExp),
    StableRow(
        "softmax", (s, C, i), naive=lambda s, C, i: sp.exp(s[i]) / _partition(s, C),
        stable=lambda s, C, i: sp.exp(s[i] - SHIFT) / _partition(s, C, SHIFT),
        claim="softmax(s)_i = e^(s_i - shift) / sum_j e^(s_j - shift)",
        spelling={"numpy": f"{_SHIFTED_EXP} / {_SHIFTED_EXP}.sum(axis=-1, keepdims=True)"},
        why=_SHIFTED_WHY, function=Softmax),
    StableRow(
        "log_softmax", (s, C, i),
        naive=lambda s, C, i: sp.log(sp.exp(s[i]) / _partition(s, C)),
        stable=lambda s, C, i: s[i] - LogSumExp(s, C),
        claim="log softmax(s)_i = s_i - logsumexp(s)",
        spelling={"numpy": f"{{0}} - {_MAX} - np.log({_SHIFTED_EXP}.sum(axis=-1, "
                           f"keepdims=True))"},
        why=_SHIFTED_WHY),
    StableRow(
        "sigmoid", (U,), naive=_naive_logistic, stable=lambda u: sp.exp(-Softplus(-u)),
        claim="sigmoid(u) = e^(-softplus(-u))",
        spelling={"numpy": "np.exp(-np.logaddexp(0, {0:neg}))"},
        why="the logistic function 1/(1 + exp(-z)) as exp(-logaddexp(0, -z)): no exp of it "
            "overflows", function=Logistic),
    StableRow(
        "softplus", (U,), naive=lambda u: sp.log(1 + sp.exp(u)),
        stable=lambda u: sp.Max(u, 0) + sp.log(1 + sp.exp(-sp.Abs(u))),
        claim="softplus(u) = max(u, 0) + log(1 + e^(-|u|))  (np.logaddexp(0, u))",
        spelling={"numpy": "np.logaddexp(0, {0})"},
        why="log(1 + exp(u)) without the exp of a positive number: finite for any u",
        function=Softplus, by_sides=True),
    # the sigmoid as modules compute it: exp(-|z|) once, shared by sigmoid(z) and sigmoid(-z)
    StableRow(
        "sigmoid_of_bounded_exp", (U,), naive=_naive_logistic, stable=_bounded_logistic,
        claim="sigmoid(u) = (1 if u >= 0 else e^(-|u|)) / (1 + e^(-|u|))",
        spelling={"numpy": f"np.where({{0}} >= 0, 1, {_BOUNDED_EXP}) / (1 + {_BOUNDED_EXP})"},
        why="exp(-|z|) <= 1, and the logistic function 1/(1 + exp(-z)) built from it never "
            "overflows", function=Logistic, by_sides=True),
    # log(cosh(u)), which lowering rewrites wherever it appears: cosh overflows past |u| = 710
    StableRow(
        "log_cosh", (U,), naive=lambda u: sp.log(sp.cosh(u)),
        stable=lambda u: sp.Abs(u) + Softplus(-2 * sp.Abs(u)) - sp.log(2),
        claim="log(cosh(u)) = |u| + softplus(-2|u|) - log(2)",
        spelling={"numpy": "np.abs({0}) + np.logaddexp(0, -2*np.abs({0})) - 0.6931471805599453"},
        why=None, by_sides=True),
    # log cosh's derivative, sinh(u)/cosh(u), which lowering rewrites wherever the two meet in
    # a product: each overflows float64 past |u| = 710, their ratio is at most 1
    StableRow(
        "tanh", (U,), naive=lambda u: sp.sinh(u) / sp.cosh(u), stable=sp.tanh,
        claim="sinh(u)/cosh(u) = tanh(u)", spelling={"numpy": "np.tanh({0})"}, why=None),
    # forms only lowering writes: exp(u) - 1 near 0 (on ELU's branch clamped to u <= 0), and
    # the factor log t of a term t log t, which is then 0 at t = 0 (scipy's xlogy)
    StableRow(
        "expm1", (U,), naive=lambda u: sp.exp(u) - 1, stable=expm1,
        claim="expm1(u) = e^u - 1", spelling={"numpy": "np.expm1({0})"}, why=None,
        domain=sp.Interval(-sp.oo, 0)),
    StableRow(
        "log_or_zero", (T,), naive=lambda t: sp.Piecewise((0, sp.Eq(t, 0)), (sp.log(t), True)),
        stable=lambda t: sp.log(sp.Piecewise((1, sp.Eq(t, 0)), (t, True))),
        claim="log_or_zero(t) = log(t if t != 0 else 1)",
        spelling={"numpy": "np.log(np.where({0} == 0, 1, {0}))"},
        why="t*log(t) is 0 where t = 0, its limit (0 log 0 = 0): the log is taken of 1 there, "
            "not of 0", by_sides=True, domain=sp.Interval(0, sp.oo)),
)

#: every stable primitive by name, in the order `symnet check` proves them
TABLE: dict[str, StableRow] = {row.name: row for row in _ROWS}
