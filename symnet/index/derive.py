"""A tensor layer's VJPs, entry by entry, in terms of its named statistics.

For an input X[m, e]: dL/dX[m, e] = Sum over the output indices o of G[o] dY[o]/dX[m, e].
The derivative of Y is taken through the names (forward mode over the statistics: the
partial of Y at each statistic's entry times that statistic's own derivative), so the
result speaks of mu[d] and var[d] as the declaration does. Kronecker deltas are summed
by symnet's own rules (`collapse`): sympy's Sum.doit fails for a sum over the batch axis
(gosper_sum -> hypersimp: TypeError) and leaves Piecewise ranges where it works. A sum
that is a statistic's definition is written as the statistic again (`fold`): the
derivative of var holds Sum(X[k, d] - mu[d], k), which is N mu[d] - N mu[d] = 0.

A statistic the output is declared invariant to (softmax's max shift) is first proved so:
with it a free tensor and the others written out, dY/d shift[p] is brought to 0 for every
size (or the declaration is refused, naming it); then it is held constant, so that a max,
which has no derivative where entries tie, is never differentiated.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symnet.algebra import canonical_dummies
from symnet.declare.tensor import IndexLayer, fresh_dummies, index
from symnet.errors import DerivationError
from symnet.index.deltas import collapse, sum_one
from symnet.notation import ShowsAsLatex
from symnet.timeout import within

#: how long the proof that the output does not depend on a statistic may take
INVARIANCE_SECONDS = 10.0


@dataclass(frozen=True)
class IndexDerivation(ShowsAsLatex):
    declaration: IndexLayer
    #: input base -> dL/d input at the input's declared indices, in the statistics' names
    vjps: dict
    #: input base -> the same, everything written out in the inputs (the raw VJP)
    raw: dict
    #: the statistics' entries the output was proved not to depend on (held constant)
    invariant: tuple = ()


# --- statistics back by name -------------------------------------------------------------


def _patterns(statistics: dict) -> list:
    """For each statistic defined as c * Sum(body, k): (its entry with wild indices,
    c, body with wild indices, k, the extent of k)."""
    found = []
    for entry, definition in statistics.items():
        sums = [t for t in sp.Add.make_args(sp.expand(definition, mul=True))]
        if len(sums) != 1:
            continue
        coefficient, rest = sums[0].as_independent(sp.Sum, as_Add=False)
        if not isinstance(rest, sp.Sum) or len(rest.limits) != 1:
            continue
        wild = {i: sp.Wild(f"w_{i}") for i in entry.indices}
        variable, lower, upper = rest.limits[0]
        found.append((entry.xreplace(wild), coefficient,
                      sp.expand(rest.function).xreplace(wild), variable,
                      sp.expand(upper - lower + 1)))
    return found


def fold(expr: sp.Expr, statistics: dict) -> sp.Expr:
    """Each sum that is a statistic's defining sum written as the statistic:
    Sum(X[k, e], (k, 0, N - 1)) -> N mu[e] for mu[d] = Sum(X[n, d], n) / N."""
    patterns = _patterns(statistics)

    def named(s: sp.Sum):
        if len(s.limits) != 1:
            return s
        variable, lower, upper = s.limits[0]
        for entry, coefficient, body, own, extent in patterns:
            if sp.expand(upper - lower + 1 - extent) != 0:
                continue
            found = sp.expand(s.function).xreplace({variable: own}).match(body)
            if found is not None and all(w in found for w in body.atoms(sp.Wild)):
                return entry.xreplace(found) / coefficient
        return s

    return expr.replace(lambda e: isinstance(e, sp.Sum), named)


# --- derivatives through the names -------------------------------------------------------


class Through:
    """Derivatives of expressions over the inputs and the statistics' entries, taken
    through the statistics (each statistic's derivative worked out once)."""

    def __init__(self, layer: IndexLayer, wrt: sp.Indexed):
        self.layer, self.wrt = layer, wrt
        self.ranges = dict(layer.ranges)
        self.known = {}

    def of(self, expr: sp.Expr) -> sp.Expr:
        expr = fresh_dummies(expr)
        bound = {v for s in expr.atoms(sp.Sum) for v, *_ in s.limits}
        statistics = {s.base for s in self.layer.statistics}
        entries = sorted((e for e in expr.atoms(sp.Indexed) if e.base in statistics),
                         key=sp.default_sort_key)
        # an entry that holds a summation variable (R[n, h] in Sum(R[n, h] W2[h, c], h))
        # is a different number for each term: not one symbol, but a sum over its entries
        summed = sorted({e.base for e in entries if set(e.indices) & bound},
                        key=sp.default_sort_key)
        held = {e: sp.Dummy(str(e), real=True) for e in entries
                if not set(e.indices) & bound}
        plain = expr.xreplace(held)
        try:
            total = sp.diff(plain, self.wrt)
            for entry, dummy in held.items():
                partial = sp.diff(plain, dummy)
                if partial != 0:
                    total += partial * self.statistic(entry)
            for base in summed:
                total += self.through_every_entry(plain, base)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise DerivationError(self.layer.name, f"sympy cannot differentiate "
                                  f"{expr} with respect to {self.wrt}: {exc}") from exc
        back = {dummy: entry for entry, dummy in held.items()}
        return collapse(total.xreplace(back), self.ranges)

    def through_every_entry(self, plain: sp.Expr, base) -> sp.Expr:
        """Sum over the statistic's entries s[p] of d plain / d s[p] times d s[p] / d wrt
        (sympy's derivative of an entry by an entry is a product of Kronecker deltas,
        which the sums over p collapse)."""
        declared = next(s for s in self.layer.statistics if s.base == base)
        taken = {str(v) for v in plain.free_symbols} | {str(v) for v in self.ranges}
        at = fresh_indices(declared, taken)
        entry = base[at]
        partial = sp.diff(plain, entry)
        if partial == 0:
            return sp.Integer(0)
        self.ranges.update({p: self.layer.ranges[i]
                            for i, p in zip(declared.indices, at, strict=True)})
        term = partial * self.statistic(entry)
        for p in reversed(at):
            term = sum_one(term, (p, 0, self.ranges[p] - 1), self.ranges)
        return term

    def statistic(self, entry: sp.Indexed) -> sp.Expr:
        """d entry / d wrt, the statistic's definition differentiated at entry's indices;
        0 for one the output is proved invariant to (derive_index_layer proves it first)."""
        if entry.base in self.layer.invariant:
            return sp.Integer(0)
        if entry not in self.known:
            declared = next(s for s in self.layer.statistics if s.base == entry.base)
            definition = self.layer.statistics[declared].xreplace(
                dict(zip(declared.indices, entry.indices, strict=True)))
            self.known[entry] = fold(self.of(definition), self.layer.statistics)
        return self.known[entry]


def output_indices(layer: IndexLayer, taken) -> tuple:
    """Fresh names for the output's indices, for the sum over them."""
    return fresh_indices(layer.output, taken)


def fresh_indices(entry: sp.Indexed, taken) -> tuple:
    """Fresh names for an entry's indices (n -> no), none of them in `taken`."""
    taken = {str(s) for s in taken}
    fresh = []
    for i in entry.indices:
        name = f"{i}o"
        while name in taken:
            name += "_"
        taken.add(name)
        fresh.append(index(name))
    return tuple(fresh)


def vjp(layer: IndexLayer, entry: sp.Indexed, through_names: bool = True,
        tidy: bool = True) -> sp.Expr:
    """dL/d entry = Sum over the output indices of G[o] dY[o]/d entry; `tidy=False`
    leaves the terms as the deltas left them (a matrix layer's way back to matrix form
    needs no gathering, which costs most of the time)."""
    taken = set(entry.indices) | {s for s in layer.ranges}
    outer = output_indices(layer, taken)
    at = dict(zip(layer.output.indices, outer, strict=True))
    forward = layer.forward if through_names else layer.expanded(layer.forward)
    through = Through(layer, entry)
    through.ranges.update({o: layer.ranges[i] for i, o in at.items()})
    local = through.of(forward.xreplace(at))
    upstream = layer.upstream[outer]
    total = sp.Mul(upstream, local)
    for o in reversed(outer):
        total = sum_one(total, (o, 0, through.ranges[o] - 1), through.ranges)
    total = collapse(total, through.ranges)
    if through_names:
        total = in_named_terms(fold(total, layer.statistics), layer, through.ranges)
    return canonical_dummies(tidy_vjp(total) if tidy else total)


# --- in the names a person uses ----------------------------------------------------------


def _named_entries(layer: IndexLayer) -> list:
    """Statistics with no sum of their own (sigma[d] = sqrt(var[d] + eps)), latest first:
    each occurrence of such a definition is written as its name."""
    return [(entry, definition) for entry, definition in reversed(layer.statistics.items())
            if not definition.has(sp.Sum)]


def _by_name(expr: sp.Expr, entry: sp.Indexed, definition: sp.Expr) -> sp.Expr:
    """expr with `definition` (at any indices) written as `entry` there: sqrt(var[e] + eps)
    -> sigma[e], (var[e] + eps)**(-3/2) -> sigma[e]**(-3)."""
    for found in sorted({e for e in expr.atoms(sp.Indexed)}, key=sp.default_sort_key):
        if len(found.indices) < len(entry.indices):
            continue
        for at in _placements(entry, found):
            expr = expr.subs(definition.xreplace(at), entry.xreplace(at))
    return expr


def _placements(entry: sp.Indexed, found: sp.Indexed):
    """Ways to put entry's indices onto indices that occur in `found`."""
    if len(entry.indices) == len(found.indices):
        yield dict(zip(entry.indices, found.indices, strict=True))
    for position in found.indices:
        if len(entry.indices) == 1:
            yield {entry.indices[0]: position}


def _input_in_terms_of(layer: IndexLayer, entry: sp.Indexed, definition: sp.Expr):
    """(input base, its entry as a function of `entry`) when the definition is linear in
    one input's entry at entry's own indices (xhat = (X - mu) / sigma: X = sigma xhat +
    mu); else None."""
    for declared in layer.inputs:
        if declared.indices != entry.indices:
            continue
        slope = sp.diff(definition, declared)
        if slope == 0 or slope.has(declared.base) or slope.has(sp.KroneckerDelta):
            continue
        offset = sp.expand(definition - slope * declared)
        if offset.has(declared.base):
            continue
        return declared, (entry - offset) / slope
    return None


def in_named_terms(expr: sp.Expr, layer: IndexLayer, ranges: dict) -> sp.Expr:
    """The VJP with the statistics' names wherever they make it shorter: a definition
    without a sum replaced by its name (sigma), an input's entry written through an
    entry-by-entry statistic of it (X = sigma xhat + mu: the column sums of G .* X and of
    G become one of G .* xhat)."""
    best = expr
    for entry, definition in _named_entries(layer):
        shorter = _by_name(best, entry, definition)
        inverse = _input_in_terms_of(layer, entry, definition)
        if inverse is not None:
            declared, value = inverse

            def through(e, declared=declared, value=value):
                return value.xreplace(dict(zip(declared.indices, e.indices, strict=True)))

            rewritten = shorter.replace(
                lambda e, base=declared.base: isinstance(e, sp.Indexed) and e.base == base,
                through)
            rewritten = _by_name(tidy_vjp(collapse(rewritten, ranges)), entry, definition)
            if sp.count_ops(rewritten) < sp.count_ops(shorter):
                shorter = rewritten
        if sp.count_ops(shorter) <= sp.count_ops(best):
            best = shorter
    through_output = in_terms_of_output(best, layer, ranges)
    if through_output is not None and sp.count_ops(through_output) < sp.count_ops(best):
        best = through_output
    return best


def in_terms_of_output(expr: sp.Expr, layer: IndexLayer, ranges: dict):
    """expr with the forward's core written through the output, where the forward is a
    core (holding the inputs) times factors free of them: Y = exp(X - m)/Z puts Y Z for
    each exp(X[n, j] - m[n]), so that the backward reads the cached output (softmax:
    Y (G - rowsum(G .* Y))). None when the forward has no such core."""
    inputs = set(layer.bases)
    factors = sp.Mul.make_args(layer.forward)
    core = [f for f in factors if any(e.base in inputs for e in f.atoms(sp.Indexed))]
    if len(core) != 1 or isinstance(core[0], sp.Indexed):
        return None
    rest = sp.Mul(*(f for f in factors if f is not core[0]))
    wild = {i: sp.Wild(f"w_{i}") for i in layer.output.indices}
    pattern = core[0].xreplace(wild)
    value = (layer.output / rest).xreplace(wild)

    matches = {}
    for sub in sp.preorder_traversal(expr):
        found = sub.match(pattern) if not sub.is_Atom else None
        if found is not None and all(w in found for w in wild.values()):
            matches[sub] = value.xreplace(found)
    if not matches:
        return None
    return tidy_vjp(collapse(expr.xreplace(matches), ranges))


def tidy_vjp(expr: sp.Expr) -> sp.Expr:
    """Terms gathered by the sums they hold (column sums of G, of G .* X) and common factors
    pulled out: the form a person writes."""
    sums = sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)
    gathered = sp.collect(sp.expand(expr, power_base=False, power_exp=False,
                                    multinomial=False), sums)
    return sp.factor_terms(gathered)


# --- statistics the output does not depend on ---------------------------------------------


def atoms_held(expr: sp.Expr) -> sp.Expr:
    """Each sum (outermost first) as one real symbol: what is left is a rational function
    of the inputs' entries and the atomic sums, which simplify decides quickly."""
    held = {}

    def hold(s):
        if s not in held:
            held[s] = sp.Dummy(f"S{len(held)}", real=True)
        return held[s]

    return expr.replace(lambda e: isinstance(e, sp.Sum), hold)


def invariance_derivative(layer: IndexLayer, base) -> sp.Expr:
    """dY/d stat[p] at fresh indices p, the statistic a free tensor (c[n] in place of its
    definition) and every other statistic written out; sums collapsed, bound indices
    canonical."""
    declared = next(s for s in layer.statistics if s.base == base)
    forward = layer.expanded(layer.forward)     # the invariant statistics stay free
    taken = {str(v) for v in forward.free_symbols} | {str(v) for v in layer.ranges}
    at = fresh_indices(declared, taken)
    ranges = {**layer.ranges, **{p: layer.ranges[i]
                                 for i, p in zip(declared.indices, at, strict=True)}}
    derivative = fresh_dummies(sp.diff(forward, base[at]))
    return canonical_dummies(collapse(derivative, ranges))


def is_zero_for_every_size(expr: sp.Expr) -> bool:
    """Whether expr (sums collapsed, bound indices canonical) simplifies to 0 with each sum
    held as one symbol, within INVARIANCE_SECONDS."""
    def attempt() -> bool:
        return sp.expand(expr) == 0 or sp.simplify(atoms_held(expr)) == 0

    return within(INVARIANCE_SECONDS, attempt, False)


def proved_invariant(layer: IndexLayer) -> tuple:
    """The declared invariant statistics' entries, each proved: dY/d stat = 0 for every
    size; a DerivationError naming the first that is not."""
    proved = []
    for base in layer.invariant:
        entry = next(s for s in layer.statistics if s.base == base)
        try:
            derivative = invariance_derivative(layer, base)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise DerivationError(layer.name, f"cannot differentiate the output with respect "
                                  f"to the invariant statistic {entry}: {exc}") from exc
        if not is_zero_for_every_size(derivative):
            raise DerivationError(layer.name, f"the output is declared invariant to the "
                                  f"statistic {entry}, but dY/d{base} does not simplify to 0 "
                                  f"(the output depends on {base}): drop it from invariant=")
        proved.append(entry)
    return tuple(proved)


def derive_index_layer(layer: IndexLayer) -> IndexDerivation:
    invariant = proved_invariant(layer)
    vjps, raw = {}, {}
    for entry in layer.inputs:
        vjps[entry.base] = vjp(layer, entry)
        raw[entry.base] = vjp(layer, entry, through_names=False)
    return IndexDerivation(layer, vjps, raw, invariant)
