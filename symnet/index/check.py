"""Verdicts on a tensor layer, for every size (registered with `symnet.verify.check`).

Each claim is first probed at random sizes (2..5) and random entries, 50 digits: a wrong
VJP is refuted there with a counterexample in milliseconds. Then it is proved with the
sizes symbolic: both sides written out in the inputs (the statistics expanded), each sum
over a sum split and the factors free of its index moved out, Sum(1, (k, 0, N - 1)) = N,
bound indices renamed canonically, each remaining sum (an atomic one such as
Sum(X[j, d], j)) held as one symbol, and the difference simplified to 0. A verdict says
"sizes": "symbolic" when that proof holds for every N, D; where it times out the verdict
is probed and names the sizes it was probed at ("N=2 D=5; N=3 D=3; ...").

A network of tensor stages (symnet.index.chain) gets each stage's verdicts, the loss's, then
one per network input "by the chain rule", proved when every VJP it chains is proved.

The claims: each derived VJP (through the statistics' names) against the VJP of the
written-out forward, that the output does not depend on each statistic declared invariant
(a max shift; written out, such a statistic stays a free tensor, drawn at random by the
probes), and each hand derivation against the derived VJP. A sum that holds its factors
elsewhere or takes its variables in another order (sum_j sum_m against sum_m sum_j) is
compared in `prenex` form, every product of sums one sum over all their variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from symnet.algebra import canonical_dummies
from symnet.declare.tensor import IndexLayer, fresh_dummies
from symnet.index.derive import (
    atoms_held,
    collapse,
    derive_index_layer,
    invariance_derivative,
)
from symnet.matrix.explicit import concrete
from symnet.timeout import within
from symnet.verify.claims import (
    DIGITS,
    PROBED,
    PROBES,
    PROVED,
    REFUTED,
    ProbeSpace,
    Verdict,
    about_claim,
    about_declaration,
    check,
    probe,
)

PROOF_SECONDS = 10.0
SYMBOLIC = "symbolic"
LARGEST_SIZE = 5


@dataclass
class SizedProbeSpace(ProbeSpace):
    """A probe space for a tensor layer: sizes drawn in 2..5, each drawn set kept, so that
    a probed verdict can name the sizes it holds for."""

    largest_size: int = LARGEST_SIZE
    drawn: set = field(default_factory=set, repr=False, compare=False)

    def positions(self, ordered: list, rng):
        sizes, indices = super().positions(ordered, rng)
        self.drawn.add(tuple(sorted((str(s), v) for s, v in sizes.items())))
        return sizes, indices

    def sizes_text(self) -> str:
        """The explicit sizes probed, such as "probed at N=2 D=5; N=4 D=3"."""
        shown = sorted(" ".join(f"{s}={v}" for s, v in point) for point in self.drawn)
        return "probed at " + "; ".join(shown)


def written_out(layer: IndexLayer, expr: sp.Expr) -> sp.Expr:
    """expr with every statistic expanded and the output Y written as the forward."""
    at = layer.output.base
    expr = expr.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == at,
        lambda e: layer.forward.xreplace(dict(zip(layer.output.indices, e.indices,
                                                  strict=True))))
    return layer.expanded(expr)


def reduced(layer: IndexLayer, difference: sp.Expr) -> sp.Expr:
    """The difference with its sums split, constants out, and bound indices canonical."""
    ranges = dict(layer.ranges)
    return canonical_dummies(collapse(fresh_dummies(difference), ranges))


def prenex(expr: sp.Expr) -> sp.Expr:
    """expr with each product of sums and factors written as one sum over all their
    variables (a * sum_m b = sum_m a*b: the summation variables are distinct), each such
    sum's summand multiplied out and split, bound indices canonical. Two sums that differ
    only in where their factors stand or in the order of their variables compare equal:
    sum_j X[j] sum_m Q[j, m] = sum_m sum_j X[j] Q[j, m]."""

    def merged(e: sp.Expr) -> sp.Expr:
        if not e.args or isinstance(e, sp.Indexed):
            return e
        args = [merged(a) for a in e.args]
        if isinstance(e, sp.Sum):
            return _split_sum(args[0], e.limits)
        if not e.is_Mul:
            return e.func(*args)
        return sp.Add(*[_one_sum(term) for term in sp.Add.make_args(sp.expand(sp.Mul(*args)))])

    return canonical_dummies(merged(sp.expand(expr)))


def _one_sum(term: sp.Expr) -> sp.Expr:
    """A product of factors and sums as one sum over all the sums' variables."""
    limits, factors = [], []
    for factor in sp.Mul.make_args(term):
        limits += factor.limits if isinstance(factor, sp.Sum) else ()
        factors.append(factor.function if isinstance(factor, sp.Sum) else factor)
    return _split_sum(sp.Mul(*factors), limits) if limits else term


def _split_sum(body: sp.Expr, limits) -> sp.Expr:
    """sum over `limits` of `body`, one sum per term of the multiplied-out body, its number
    outside."""
    if isinstance(body, sp.Sum):
        body, limits = body.function, (*body.limits, *limits)
    terms = (term.as_coeff_Mul() for term in sp.Add.make_args(sp.expand(body)))
    return sp.Add(*[number * sp.Sum(term, *limits) for number, term in terms])


def zero_for_every_size(layer: IndexLayer, lhs: sp.Expr, rhs: sp.Expr) -> bool:
    difference = written_out(layer, lhs) - written_out(layer, rhs)

    def attempt() -> bool:
        rest = reduced(layer, difference)
        if sp.expand(rest) == 0 or sp.simplify(atoms_held(rest)) == 0:
            return True
        return sp.expand(prenex(rest)) == 0

    return within(PROOF_SECONDS, attempt, False)


def check_index_claim(layer: IndexLayer, claim: str, lhs: sp.Expr, rhs: sp.Expr) -> Verdict:
    space = SizedProbeSpace(defaults=dict(layer.params))
    # an activation's placeholders (relu, relu') as the formulas its declaration derives:
    # the probes evaluate numbers, and a placeholder has none
    left, right = (concrete(written_out(layer, side)) for side in (lhs, rhs))
    counterexample = about_claim(claim, lambda: probe(left, right, space))
    if counterexample:
        return Verdict(claim, REFUTED, f"differs at a random point ({DIGITS} digits)",
                       counterexample, _sizes_at(layer, counterexample["point"]))
    if zero_for_every_size(layer, lhs, rhs):
        return Verdict(claim, PROVED, "symbolic, for every size: sums split, constants out, "
                                      "bound indices canonical, simplified to 0", {}, SYMBOLIC)
    return Verdict(claim, PROBED, f"the symbolic proof did not finish in {PROOF_SECONDS:g} s; "
                                  f"{PROBES} random points at {DIGITS} digits agree", {},
                   space.sizes_text())


def _sizes_at(layer: IndexLayer, point: dict) -> str:
    """The sizes of a counterexample, such as "refuted at N=3 D=5"."""
    names = sorted({str(s) for s in layer.ranges.values()} & set(point))
    return "refuted at " + " ".join(f"{name}={point[name]}" for name in names)


def check_index_layer(layer: IndexLayer) -> list[Verdict]:
    derivation = derive_index_layer(layer)
    verdicts = []
    for entry in layer.inputs:
        base = entry.base
        verdicts.append(check_index_claim(
            layer, f"dL/d{entry} = {derivation.vjps[base]}, against the written-out forward",
            derivation.vjps[base], derivation.raw[base]))
    for entry in derivation.invariant:     # proved by the derivation; probed here too
        verdicts.append(check_index_claim(
            layer, f"{layer.output} does not depend on {entry}: d{layer.output.base}/"
                   f"d{entry.base} = 0, so it is held constant",
            invariance_derivative(layer, entry.base), sp.Integer(0)))
    for record in layer.hand:
        label = record.label or f"dL/d{record.wrt}"
        verdicts.append(check_index_claim(layer, label, derivation.vjps[record.wrt],
                                          record.expected))
    return verdicts


# --- a network of tensor stages: each stage, then the chain rule --------------------------


def _stage_verdicts(network) -> tuple[list, dict, dict]:
    """(every stage's verdicts, labelled; (stage number, input base) -> the verdict on its
    VJP; stage number -> the verdicts on what its VJPs rest on besides, such as that the
    output does not depend on a max shift)."""
    verdicts, on_vjp, besides = [], {}, {}
    for number, layer in enumerate(network.staged, start=1):
        own = [replace(v, claim=f"stage {number} ({layer.name}): {v.claim}")
               for v in check(layer)]
        verdicts += own
        for entry, verdict in zip(layer.inputs, own, strict=False):
            on_vjp[number, entry.base] = verdict
        besides[number] = own[len(layer.inputs):]
    return verdicts, on_vjp, besides


def chain_verdict(claim: str, parts: list) -> Verdict:
    """A VJP chained from `parts` (the verdicts on each VJP it chains): proved when every
    part is, for the sizes all of them hold for."""
    refuted = [v for v in parts if v.status == REFUTED]
    if refuted:
        return Verdict(claim, REFUTED, f"it chains a refuted VJP: {refuted[0].claim}", {},
                       refuted[0].sizes)
    sizes = sorted({v.sizes for v in parts if v.sizes is not None})
    held = SYMBOLIC if sizes in ([], [SYMBOLIC]) else "; ".join(s for s in sizes
                                                                 if s != SYMBOLIC)
    if all(v.status == PROVED for v in parts):
        return Verdict(claim, PROVED, "the chain rule applied by symnet at the stage "
                                      "boundaries to VJPs each proved above", {}, held)
    return Verdict(claim, PROBED, "the chain rule applied by symnet to VJPs of which some "
                                  "are only probed (above)", {}, held)


def check_staged(network) -> list[Verdict]:
    """The stages' verdicts, the loss's, then each network input's VJP by the chain rule."""
    verdicts, on_vjp, besides = _stage_verdicts(network)
    scoring = []
    if network.loss is not None:
        scoring = [replace(v, claim=f"loss ({network.loss.name}): {v.claim}")
                   for v in check(network.loss)]
        verdicts += scoring
    staged = network.staged
    last = len(staged)
    for number, layer in enumerate(staged, start=1):
        for entry in layer.inputs:
            if number > 1 and entry.base == staged[number - 2].output.base:
                continue    # a link of the chain, not a network input
            parts = [on_vjp[number, entry.base], *besides[number], *scoring]
            for later in range(number + 1, last + 1):
                parts += [on_vjp[later, staged[later - 2].output.base], *besides[later]]
            through = f"stages {last}..{number}" if number < last else f"stage {number}"
            upstream = f"dL/d{staged[-1].output}" + (f" by the loss {network.loss.name}"
                                                      if network.loss is not None else "")
            verdicts.append(chain_verdict(
                f"dL/d{entry} by the chain rule through {through} from {upstream}", parts))
    return verdicts


@check.register(IndexLayer)
def _(layer) -> list[Verdict]:
    return about_declaration(layer.name, check_index_layer, layer)
