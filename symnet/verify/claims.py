"""Verdicts on claims: proved, refuted (with a counterexample) or probed; the claims of
activations and losses.

A claim ``lhs == rhs`` is first probed at high-precision random points (mpmath through
sympy's evalf, 50 digits; symbolic sizes such as C drawn small, scores at several
scales and both signs, points near a kink redrawn). A point where the two sides differ
refutes it, printed with both values. Otherwise symnet tries to prove the difference
zero symbolically, under a time bound; if that fails the verdict is *probed*, never a
silent pass.

Comparisons hold almost everywhere: away from kinks. The value at a kink is a declared
convention (`Kink`) and gets its own exact check.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from symnet.algebra import (
    canonical_dummies,
    collapse_indexed,
    kinks_to_piecewise,
    piecewise_to_steps,
    signs_to_piecewise,
    split_at_steps,
    split_sums,
    steps_almost_everywhere,
)
from symnet.declare.scalar import Activation, Identity, Jacobian
from symnet.derive import derive, derive_gradient
from symnet.errors import DeclarationError, SymnetError
from symnet.primitives import TABLE, naive_form
from symnet.symbols import out as OUT
from symnet.target_kinds import CLASS_INDEX, ONE_HOT, SIGN
from symnet.timeout import within
from symnet.verify.at_point import (
    DOMAIN_ADVICE,
    Evaluator,
    Literals,
    NearKink,
    NotANumber,
    OutsideDomain,
    outside_domain_text,
)

PROBES = 50
DIGITS = 50
TOLERANCE = mpmath.mpf(10) ** -30
PROOF_SECONDS = 10.0
SCALES = (0.1, 1.0, 4.0)
KINK_MARGIN = 1e-6
#: a parameter is probed at its default times a factor drawn from this range
PARAMETER_FACTORS = (0.5, 1.5)

PROVED, REFUTED, PROBED = "proved", "refuted", "probed"


class VerificationError(SymnetError):
    """A claim could not be evaluated at enough points to be probed, or has no real value
    at a point of its declared domain."""


def about_claim(claim: str, compute):
    """compute(), with a verification error naming the claim it is about."""
    try:
        return compute()
    except VerificationError as exc:
        raise VerificationError(f"claim {claim!r}: {exc}") from None


def about_declaration(name: str, compute, *args):
    """compute(*args), with a verification error naming the declaration (and so the file
    line it was declared at) it is about."""
    try:
        return compute(*args)
    except VerificationError as exc:
        raise DeclarationError(name, str(exc)) from None


@dataclass(frozen=True)
class Verdict:
    claim: str
    status: str
    detail: str
    counterexample: dict = field(default_factory=dict)
    #: the sizes the verdict holds for, where the claim has sizes of its own (a tensor
    #: layer's: "symbolic", every N and D, or the explicit sizes it was checked at)
    sizes: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != REFUTED

    def as_dict(self) -> dict:
        found = {"claim": self.claim, "status": self.status, "detail": self.detail,
                 "counterexample": self.counterexample or None}
        return found if self.sizes is None else {**found, "sizes": self.sizes}

    def __str__(self) -> str:
        text = f"{self.status:8s} {self.claim}  [{self.detail}]"
        if self.counterexample:
            point = ", ".join(f"{k} = {v}" for k, v in self.counterexample["point"].items())
            text += (f"\n         counterexample at {point}:\n"
                     f"           derived / left side  = {self.counterexample['lhs']}\n"
                     f"           claimed / right side = {self.counterexample['rhs']}")
        return text


# --- probing -----------------------------------------------------------------------------


def _is_size(symbol: sp.Symbol) -> bool:
    return bool(symbol.is_integer and symbol.is_positive)


def _is_index(symbol: sp.Symbol) -> bool:
    return bool(symbol.is_integer and not symbol.is_positive)


@dataclass
class ProbeSpace:
    """How to draw a random point for the symbols of a declaration's claims."""

    defaults: dict = field(default_factory=dict)
    one_hot: sp.IndexedBase | None = None
    class_index: sp.Symbol | None = None
    signs: tuple = ()
    #: symbolic sizes (C, N, D) are drawn in 2..largest_size
    largest_size: int = 4

    #: atom -> how its value is drawn; a probe draws the same atoms at every point, and
    #: sympy's assumption queries cost more than the drawing
    kinds: dict = field(default_factory=dict, repr=False, compare=False)

    def positions(self, ordered: list, rng: random.Random):
        """(sizes, indices): a value for each size and index symbol of `ordered` (free
        symbols sorted by name, so that a seed always gives the same point)."""
        sizes = {s: rng.randint(2, self.largest_size) for s in ordered if _is_size(s)}
        top = min(sizes.values(), default=3)
        indices = {s: rng.randrange(top) for s in ordered if _is_index(s)}
        if self.class_index is not None:
            indices.setdefault(self.class_index, rng.randrange(top))
        return sizes, indices

    def _kind(self, atom):
        if isinstance(atom, sp.Indexed) and atom.base == self.one_hot:
            return ONE_HOT, None
        if atom in self.defaults:
            return "default", sp.Float(self.defaults[atom], DIGITS)
        if atom in self.signs:
            return SIGN, None
        if atom.is_nonnegative:
            return "nonnegative", None
        return ("nonpositive" if atom.is_nonpositive else "real"), None

    def value(self, atom, rng: random.Random, indices: dict):
        if atom not in self.kinds:
            self.kinds[atom] = self._kind(atom)
        position = atom.indices[0] if isinstance(atom, sp.Indexed) else None
        return self._drawn(self.kinds[atom], position, rng, indices)

    def entry_value(self, base, index: tuple, rng: random.Random, indices: dict):
        """value(base[index]), without building the entry once its kind is known."""
        if (base, index) not in self.kinds:
            self.kinds[base, index] = self._kind(base[index])
        return self._drawn(self.kinds[base, index], index[0], rng, indices)

    def _drawn(self, kind, position, rng: random.Random, indices: dict):
        kind, default = kind
        if kind == ONE_HOT:
            return int(position == indices.get(self.class_index, 0))
        if kind == "default":
            # near the default, never at it: a hand derivation that wrote delta's default 1
            # for delta must not pass; near, so that a parameter keeps the range its
            # default implies (a leaky slope stays below 1)
            return mpmath.mpf(default) * mpmath.mpf(rng.uniform(*PARAMETER_FACTORS)) \
                if default != 0 else mpmath.mpf(rng.uniform(-0.5, 0.5))
        if kind == SIGN:
            return rng.choice((-1, 1))
        magnitude = mpmath.mpf(rng.choice(SCALES) * rng.uniform(0.05, 1.0))
        if kind == "nonnegative":
            return magnitude
        if kind == "nonpositive":
            return -magnitude
        return magnitude if rng.random() < 0.5 else -magnitude


def probe(lhs: sp.Expr, rhs: sp.Expr, space: ProbeSpace, seed: int = 0, count: int = PROBES,
          tolerance=TOLERANCE):
    """None if `count` random points agree (to `tolerance`, relative), else the first
    counterexample found."""
    rng = random.Random(seed)
    free = sorted(_plain_symbols(lhs) | _plain_symbols(rhs), key=str)
    positional = sorted((s for s in lhs.free_symbols | rhs.free_symbols
                         if _is_size(s) or _is_index(s)), key=str)
    labels = {base.label for base in lhs.atoms(sp.IndexedBase) | rhs.atoms(sp.IndexedBase)}
    agreed, attempts, failure = 0, 0, None
    while agreed < count and attempts < count * 20:
        attempts += 1
        sizes, indices = space.positions(positional, rng)
        symbols = {**sizes, **indices}
        for symbol in free:
            if symbol not in symbols and symbol not in labels:
                symbols[symbol] = space.value(symbol, rng, indices)

        def draw(base, index, indices=indices):
            return space.entry_value(base, index, rng, indices)

        evaluate = Evaluator(symbols, draw, KINK_MARGIN, DIGITS)
        try:
            left, right = evaluate(lhs), evaluate(rhs)
        except OutsideDomain as exc:
            values = {**symbols, **{base[index]: v for (base, index), v in
                                    evaluate.entries.items()}}
            raise VerificationError(f"no real value: {outside_domain_text(exc, values)}; "
                                    f"{DOMAIN_ADVICE}") from None
        except (NearKink, NotANumber) as exc:
            failure = exc
            continue
        if _differs(left, right, tolerance):
            point = {**symbols, **{base[index]: v for (base, index), v in
                                   sorted(evaluate.entries.items(), key=str)}}
            shown = {str(k): v if isinstance(v, int) else sp.N(sp.Float(v, DIGITS), 6)
                     for k, v in point.items()}
            return {"point": shown, "lhs": sp.N(sp.Float(left, DIGITS), 12),
                    "rhs": sp.N(sp.Float(right, DIGITS), 12)}
        agreed += 1
    if agreed < count:
        raise VerificationError(f"only {agreed} of {count} random points could be evaluated "
                                f"(last problem: {type(failure).__name__} {failure})")
    return None


def _differs(lhs, rhs, tolerance=TOLERANCE) -> bool:
    scale = max(1, abs(lhs), abs(rhs))
    return bool(abs(lhs - rhs) > tolerance * scale)


def _plain_symbols(expr: sp.Expr) -> set:
    return {s for s in expr.free_symbols if isinstance(s, sp.Symbol)}


# --- proving -----------------------------------------------------------------------------


def _canonical(expr: sp.Expr) -> sp.Expr:
    return steps_almost_everywhere(piecewise_to_steps(kinks_to_piecewise(
        signs_to_piecewise(expr))))


CASE_DEPTH = 3


def _cheap_zero(expr: sp.Expr) -> bool:
    """Zero by expansion alone: what most differences need, before any simplify."""
    return within(PROOF_SECONDS, lambda: sp.expand(expr) == 0, False)


def _exp_minus_one(expr: sp.Expr) -> sp.Expr:
    """exp(expr) - 1 for a real `expr` (else `expr`): exp is one-to-one on the reals, and a
    difference of logarithms (log cosh against its stable form) simplifies once exp
    multiplies their arguments."""
    if expr.is_real is not True:
        return expr
    return sp.simplify(sp.exp(expr).rewrite(sp.exp)) - 1


def _is_zero(expr: sp.Expr) -> bool:
    attempts = (
        lambda e: sp.expand(e),
        lambda e: sp.simplify(e),
        lambda e: sp.simplify(e.rewrite(sp.exp)),
        lambda e: sp.simplify(canonical_dummies(sp.expand_log(
            split_sums(sp.expand_power_exp(e)), force=False))),
        _exp_minus_one,
    )
    for attempt in attempts:
        if within(PROOF_SECONDS, lambda a=attempt: a(expr) == 0, False):
            return True
    return False


def _zero_by_cases(expr: sp.Expr, depth: int = CASE_DEPTH) -> str | None:
    """How `expr` is zero on every open interval between its steps' breakpoints (see
    `split_at_steps`), each piece by expansion or a plain simplify, or None. A piece
    that still holds steps, in another variable, is split again."""
    if depth == 0:
        return None
    cases = split_at_steps(expr)
    if cases is None:
        return None
    for piece in cases.pieces:
        if _cheap_zero(piece):
            continue
        if piece.has(sp.Heaviside) and _zero_by_cases(piece, depth - 1) is not None:
            continue
        if not within(PROOF_SECONDS, lambda p=piece: sp.simplify(p) == 0, False):
            return None
    return _cases_text(cases)


def _cases_text(cases) -> str:
    """'s[k] - y[k] at -delta < 0 < delta': the breakpoints' shared terms moved to the
    variable's side, so the cases read as a person writes them."""
    shared = set(sp.Add.make_args(cases.breakpoints[0]))
    for point in cases.breakpoints[1:]:
        shared &= set(sp.Add.make_args(point))
    offset = sp.Add(*shared)
    points = " < ".join(str(point - offset) for point in cases.breakpoints)
    return f"by cases on {cases.variable - offset} at {points}"


@dataclass(frozen=True)
class _Form:
    """The difference in one of the forms a proof tries."""

    expr: sp.Expr
    #: the primitives written out as the textbook formulas (exp and log) they stand for
    naive: bool


def _forms(difference: sp.Expr, constraints):
    """The difference in the forms to try, each built only when the one before has not
    sufficed: as it is and with primitives naive, each collapsed, then expanded and
    collapsed again."""
    indices = {s for s in difference.free_symbols if isinstance(s, sp.Symbol) and _is_index(s)}
    for naive, form in ((False, difference), (True, naive_form(difference))):
        collapsed = collapse_indexed(form, indices, constraints)
        yield _Form(collapsed, naive)
        yield _Form(collapse_indexed(sp.expand(collapsed), indices, constraints), naive)


def _proof(lhs: sp.Expr, rhs: sp.Expr, constraints=()) -> tuple[str, bool] | None:
    """(how, whether the constraints were used) when lhs - rhs is zero away from kinks,
    else None; how is 'symbolic' or 'symbolic by cases on ...'. Each attempt runs on
    every form, first without the constraints and then with them, before the next,
    costlier attempt runs on any: expansion, then cases, then simplify."""
    difference = _canonical(lhs) - _canonical(rhs)
    settings = [()] + ([tuple(constraints)] if constraints else [])
    built = {setting: [] for setting in settings}
    for setting in settings:
        for form in _forms(difference, setting):
            built[setting].append(form)
            if _cheap_zero(form.expr):
                return "symbolic", bool(setting)
    for setting in settings:
        for form in built[setting]:
            cases = _zero_by_cases(form.expr)
            if cases is not None:
                return f"symbolic {cases}", bool(setting)
    for setting in settings:
        # simplify decides the naive forms (exp and log only) faster than the forms that
        # keep softplus and sigmoid, so it meets them first (in the order built otherwise:
        # the sort is stable)
        for form in sorted(built[setting], key=lambda f: not f.naive):
            if _is_zero(form.expr):
                return "symbolic", bool(setting)
    return None


def prove(lhs: sp.Expr, rhs: sp.Expr, constraints=()) -> bool:
    return _proof(lhs, rhs, constraints) is not None


def check_claim(claim: str, lhs: sp.Expr, rhs: sp.Expr, space: ProbeSpace,
                constraints=()) -> Verdict:
    """Refute by probing, else prove symbolically, else report the probes. A claim with
    float literals is compared to their precision (`Literals`)."""
    literals = Literals.of(lhs, rhs)
    note = literals.note()
    counterexample = about_claim(claim, lambda: probe(
        lhs, rhs, space, tolerance=literals.tolerance(TOLERANCE)))
    if counterexample:
        return Verdict(claim, REFUTED, f"differs at a random point ({DIGITS} digits){note}",
                       counterexample)
    proof = _proof(lhs, rhs, constraints)
    if proof is not None:
        how, constrained = proof
        used = ", ".join(f"{c.lhs} = {c.rhs}" for c in constraints)
        return Verdict(claim, PROVED, (f"{how}, away from kinks, using {used}" if constrained
                                       else f"{how}, away from kinks") + note)
    if literals.floats:
        return Verdict(claim, PROBED, literals.probed(PROBES))
    return Verdict(claim, PROBED, f"simplify could not decide; {PROBES} random points at "
                                  f"{DIGITS} digits agree")


# --- declarations ------------------------------------------------------------------------


def probe_space(decl) -> ProbeSpace:
    if isinstance(decl, Activation):
        return ProbeSpace(defaults=dict(decl.params))
    space = ProbeSpace(defaults=dict(decl.params))
    if decl.target_kind == ONE_HOT:
        space.one_hot = decl.target
        space.class_index = sp.Symbol(f"{decl.target}_hot", integer=True, nonnegative=True)
    elif decl.target_kind == CLASS_INDEX:
        space.class_index = decl.target
    elif decl.target_kind == SIGN:
        space.signs = (decl.target,)
    return space


def _check_activation(decl: Activation) -> list[Verdict]:
    derivation = derive(decl)
    space = probe_space(decl)
    verdicts = []
    for variable, rewritten in derivation.in_output.items():
        if rewritten is not None:
            verdicts.append(check_claim(
                f"d{decl.name}/d{variable} = {rewritten} with out = {decl.name}({variable})",
                rewritten.subs(OUT, decl.forward), derivation.derivatives[variable], space))
    for kink in decl.kinks:
        verdicts.extend(_check_kink(decl, derivation, kink))
    for record in decl.hand:
        if isinstance(record, Identity):
            verdicts.append(check_claim(record.label or "identity", record.lhs, record.rhs,
                                        space))
            continue
        wrt = decl.wrt_of(record)
        verdicts.append(check_claim(record.label or f"d{decl.name}/d{wrt}",
                                    derivation.derivatives[wrt],
                                    record.expected.subs(OUT, decl.forward), space))
    return verdicts


def _check_kink(decl: Activation, derivation, kink) -> list[Verdict]:
    where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
    verdicts = []
    for variable, expected in kink.derivative.items():
        derived = sp.simplify(derivation.derivatives[variable].subs(kink.at))
        claim = f"kink convention d{decl.name}/d{variable} = {expected} at {where}"
        if _same_value(derived, expected):
            verdicts.append(Verdict(claim, PROVED, "exact value at the kink"
                                    + Literals.of(derived, expected).note()))
        else:
            point = {str(k): v for k, v in kink.at.items()}
            verdicts.append(Verdict(claim, REFUTED, "the derived backward takes another value",
                                    {"point": point, "lhs": derived, "rhs": expected}))
    return verdicts


def _same_value(derived, expected) -> bool:
    """derived == expected exactly, or to the precision of their float literals."""
    difference = sp.simplify(derived - expected)
    if difference == 0:
        return True
    literals, expected = Literals.of(derived, expected), sp.sympify(expected)
    if not (literals.floats and difference.is_number):
        return False
    scale = max(1, abs(sp.N(expected, DIGITS))) if expected.is_number else 1
    return bool(abs(sp.N(difference, DIGITS)) <= literals.tolerance(TOLERANCE) * scale)


def _check_loss(decl) -> list[Verdict]:
    derivation = derive(decl)
    space = probe_space(decl)
    verdicts = []
    jacobians = dict((id(record), derived) for record, derived in derivation.jacobians)
    for record in decl.hand:
        if isinstance(record, Identity):
            lhs, rhs = record.lhs, record.rhs
        elif isinstance(record, Jacobian):
            lhs, rhs = jacobians[id(record)], record.expected
        else:
            lhs = derivation.gradient if record.of is None and record.wrt is None \
                else derive_gradient(decl, record.of, record.wrt)
            rhs = record.expected
        verdicts.append(check_claim(record.label or type(record).__name__, lhs, rhs, space,
                                    decl.constraints))
    return verdicts


@functools.singledispatch
def check(decl) -> list[Verdict]:
    """Every verdict of a declaration: its hand derivations, kinks and rewrites. Each
    level registers its own (a loss here by default, an activation below, layers and
    networks in symnet.verify.matrix)."""
    return about_declaration(decl.name, _check_loss, decl)


@check.register
def _(decl: Activation) -> list[Verdict]:
    return about_declaration(decl.name, _check_activation, decl)


def check_primitives() -> list[Verdict]:
    """Each row of the table of stable primitives (symnet.primitives.TABLE) equals its
    stable form, whatever the shift of a vector's scores: a primitive a declaration may write
    (Softplus, LogSumExp, ...) as itself, a rewrite the lowering applies (tanh, log cosh,
    expm1, ...) from its naive formula."""
    space = ProbeSpace()
    return [verdict for row in TABLE.values() for verdict in row_verdicts(row, space)]


def row_verdicts(row, space: ProbeSpace, applied=None) -> list[Verdict]:
    """The identity of one row of the table: `applied` (the row's class of its arguments,
    else its naive formula) equals its stable form. A form with max, |u| or cases is proved
    on each side of u = 0 (u = p and u = -p for a positive p), where it is smooth."""
    if applied is None:
        applied = row.function(*row.arguments) if row.function else row.naive(*row.arguments)
    stable = row.stable(*row.arguments)
    if not row.by_sides:
        return [check_claim(row.claim, applied, stable, space)]
    u, p = row.arguments[0], sp.Symbol("p", positive=True)
    return [check_claim(f"{row.claim}, for {side}", applied.subs(u, sign * p),
                        stable.subs(u, sign * p), space) for side, sign in row.sides()]
