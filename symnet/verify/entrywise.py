"""Verdicts on two explicit matrices, entry by entry: refuted, proved or probed.

Probes come first: random entries (50 digits, both signs, several scales, redrawn near a
kink) refute a wrong claim in milliseconds. Then each entry's difference is brought to
zero, under one time bound per claim: steps lose their value at the kink (the comparison
holds away from kinks), every function application (exp, max, a step) becomes an opaque
atom keyed by its canonical argument, and what is left is a sum of products of atoms that
`expand_mul` cancels. That is the cheap normal form for layers stacked on layers, where a
full `expand` of nested exponentials takes seconds per entry.
"""

from __future__ import annotations

import random
import time

import sympy as sp

from symnet.algebra import kinks_to_piecewise, piecewise_to_steps, steps_almost_everywhere
from symnet.matrix.explicit import free_symbols
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
from symnet.verify.claims import (
    DIGITS,
    KINK_MARGIN,
    PROBED,
    PROVED,
    REFUTED,
    TOLERANCE,
    ProbeSpace,
    Verdict,
    VerificationError,
    about_claim,
)

PROBES = 12
PROOF_SECONDS = 8.0


# --- probing --------------------------------------------------------------------------------


def _differs(left, right, tolerance=TOLERANCE) -> bool:
    return bool(abs(left - right) > tolerance * max(1, abs(left), abs(right)))


def _shown(value) -> str:
    return str(sp.N(sp.Float(value, DIGITS), 6))


def _point(values: dict) -> dict:
    """Probe values grouped back into matrices, for a readable counterexample."""
    grouped: dict = {}
    for symbol, value in sorted(values.items(), key=lambda kv: str(kv[0])):
        name, _, index = str(symbol).partition("[")
        grouped.setdefault(name, []).append(f"[{index}: {_shown(value)}" if index
                                            else _shown(value))
    return {name: ", ".join(items) for name, items in grouped.items()}


def _space(symbols, domains: dict) -> ProbeSpace:
    """Entries drawn as their symbols say (real), or from `domains`: matrix name -> the
    kind of value ("nonnegative", "nonpositive") its entries are drawn as."""
    space = ProbeSpace()
    for symbol in symbols:
        kind = domains.get(str(symbol).partition("[")[0])
        if kind is not None:
            space.kinds[symbol] = (kind, None)
    return space


def probe_entries(lhs, rhs, seed: int = 0, count: int = PROBES, tolerance=TOLERANCE,
                  domains=None):
    """None when `count` random points agree on every entry (to `tolerance`, relative),
    else a counterexample. `domains` (see `_space`) restricts some matrices' entries."""
    known: dict = {}
    symbols = sorted(set().union(*(free_symbols(e, known) for e in [*lhs, *rhs])), key=str)
    rng, space = random.Random(seed), _space(symbols, domains or {})
    agreed = 0
    for _ in range(count * 20):
        values = {s: space.value(s, rng, {}) for s in symbols}
        evaluate = Evaluator(values, None, KINK_MARGIN, DIGITS, shared=True)
        try:
            pairs = [(evaluate(a), evaluate(b)) for a, b in zip(lhs, rhs, strict=True)]
        except OutsideDomain as exc:
            raise VerificationError(f"no real value: {outside_domain_text(exc, values)}; "
                                    f"{DOMAIN_ADVICE}") from None
        except (NearKink, NotANumber):
            continue
        for position, (left, right) in enumerate(pairs):
            if _differs(left, right, tolerance):
                row, col = divmod(position, lhs.cols)
                point = {"entry": f"[{row}, {col}]", **_point(values)}
                return {"point": point, "lhs": sp.N(sp.Float(left, DIGITS), 12),
                        "rhs": sp.N(sp.Float(right, DIGITS), 12)}
        agreed += 1
        if agreed == count:
            return None
    raise VerificationError(f"only {agreed} of {count} random points could be evaluated")


# --- proving --------------------------------------------------------------------------------


def _steps_only(expr: sp.Expr) -> sp.Expr:
    """Branches as steps, each step's value at its kink forgotten, max() left as it is:
    a comparison away from kinks (the value at a kink is a declared convention, checked
    on its own)."""
    return steps_almost_everywhere(piecewise_to_steps(expr))


def _with_kinks_as_steps(expr: sp.Expr) -> sp.Expr:
    """As `_steps_only`, with max() and abs() also written as steps."""
    return _steps_only(kinks_to_piecewise(expr))


class SharedNormalForm:
    """`_steps_only` (or `_with_kinks_as_steps`) of every entry of a claim, bottom-up with
    each distinct subexpression rewritten once: the entries share most of theirs, and
    sympy's replace walks each entry's whole tree, once per rewrite. Only a node that
    one of the rewrites changes (a branch, a step, a power of a step, with
    `kinks` max, min and abs) is handed to them, its arguments already rewritten."""

    def __init__(self, kinks: bool):
        self.normal = _with_kinks_as_steps if kinks else _steps_only
        self.kinds = (sp.Piecewise, sp.Heaviside) + ((sp.Max, sp.Min, sp.Abs) if kinks else ())
        self.done: dict = {}

    def __call__(self, e):
        if not e.args:
            return e
        if e not in self.done:
            args = [self(a) for a in e.args]
            if any(new is not old for new, old in zip(args, e.args, strict=True)):
                e_new = e.func(*args)
            else:
                e_new = e
            if isinstance(e_new, self.kinds) or (
                    e_new.is_Pow and isinstance(e_new.base, sp.Heaviside)):
                e_new = self.normal(e_new)
            self.done[e] = e_new
        return self.done[e]


class Atoms:
    """Function applications as opaque symbols, one per canonical argument list."""

    def __init__(self):
        self.symbols: dict = {}
        self.done: dict = {}
        self.reparametrised: dict = {}

    def __call__(self, e):
        if e.is_Atom:
            return e
        if e not in self.done:
            self.done[e] = self._atomize(e)
        return self.done[e]

    def _atomize(self, e):
        args = [self(a) for a in e.args]
        if e.is_Add or e.is_Mul or (e.is_Pow and e.exp.is_Integer):
            return e.func(*args)
        key = (e.func, tuple(sp.expand_mul(a) for a in args))
        if key not in self.symbols:
            self.symbols[key] = sp.Dummy(f"atom{len(self.symbols)}")
        return self.symbols[key]

    def logistic(self, e):
        """atoms(e) with each exponential's atom a written as 1/t - 1 for a fresh t: a
        change of variables (t = 1/(1 + a)) under which a sigmoid 1/(1 + a) is t and its
        derivative a/(1 + a)^2 is t (1 - t), so sigmoid layers expand to polynomials."""
        atomized = self(e)
        for (func, _), symbol in self.symbols.items():
            if func is sp.exp and symbol not in self.reparametrised:
                self.reparametrised[symbol] = 1 / sp.Dummy("t") - 1
        return atomized.xreplace(self.reparametrised)


def _entry_zero(difference, atoms: Atoms, deadline: float) -> bool:
    attempts = (lambda e: sp.expand_mul(atoms(e)), lambda e: sp.expand_mul(atoms.logistic(e)),
                lambda e: sp.cancel(atoms(e)), sp.expand)
    for attempt in attempts:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if within(left, lambda a=attempt: a(difference) == 0, False):
            return True
    return False


def prove_entries(lhs, rhs, seconds: float = PROOF_SECONDS) -> bool:
    """Every entry's difference is zero away from kinks, shown within `seconds`."""
    deadline, atoms = time.monotonic() + seconds, Atoms()
    normals = (SharedNormalForm(kinks=False), SharedNormalForm(kinks=True))
    for left, right in zip(lhs, rhs, strict=True):
        if left == right:
            continue
        if not any(_entry_zero(difference, atoms, deadline)
                   for difference in _differences(left, right, normals)):
            return False
    return True


def _differences(left, right, normals):
    """left - right in the normal forms to try, cheapest first; a form sympy cannot build
    (a branch condition on a piecewise value, nested max()) is passed over."""
    for normal in normals:
        try:
            yield normal(left) - normal(right)
        except ValueError:
            continue


# --- verdicts --------------------------------------------------------------------------------


def sizes_text(sizes: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sizes.items())


def _as_matrix(side):
    return sp.ImmutableMatrix(side) if getattr(side, "is_Matrix", False) else sp.Matrix([side])


def refutation(claim: str, lhs, rhs, sizes: dict, against: str = "",
               domains=None) -> Verdict | None:
    """A refuted verdict on two explicit matrices (or scalars) that differ at random
    entries (or in shape), else None; `domains` as for `probe_entries`."""
    lhs, rhs = _as_matrix(lhs), _as_matrix(rhs)
    if lhs.shape != rhs.shape:
        return Verdict(claim, REFUTED, f"the shapes differ: {lhs.shape} and {rhs.shape}")
    literals = Literals.of(*lhs, *rhs)
    counterexample = about_claim(claim, lambda: probe_entries(
        lhs, rhs, tolerance=literals.tolerance(TOLERANCE), domains=domains))
    if counterexample:
        return Verdict(claim, REFUTED, f"differs at random entries ({DIGITS} digits), entry "
                       f"by entry at {sizes_text(sizes)}{against}{literals.note()}",
                       counterexample)
    return None


def check_entries(claim: str, lhs, rhs, sizes: dict, against: str = "",
                  domains=None) -> Verdict:
    """A verdict on two explicit matrices (or scalars); `domains` as for `probe_entries`."""
    refuted = refutation(claim, lhs, rhs, sizes, against, domains)
    if refuted is not None:
        return refuted
    where = f"entry by entry at {sizes_text(sizes)}{against}"
    lhs, rhs = _as_matrix(lhs), _as_matrix(rhs)
    literals = Literals.of(*lhs, *rhs)
    if prove_entries(lhs, rhs):
        return Verdict(claim, PROVED, f"symbolic, {where}, away from kinks{literals.note()}")
    if literals.floats:
        return Verdict(claim, PROBED, f"{literals.probed(PROBES)}, {where}")
    return Verdict(claim, PROBED, f"simplify could not decide; {PROBES} random points at "
                                  f"{DIGITS} digits agree, {where}")
