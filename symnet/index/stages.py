"""A network in index notation: layers of any kind as stages (issue 15).

A matrix `Network` composes matrix layers; a network with a tensor layer among its stages
(batch norm after an affine map) is composed here, in index notation, into one
`IndexLayer` that the index path derives and proves for every size like any other::

    bn_net = index_network("bn_net", X[n, d], [
        stage(affine, W=W1[d, h], b=b1[h], out=A[n, h]),
        stage(batchnorm, gamma=g1[h], beta=be1[h], out=B[n, h]),
        stage(relu, out=R[n, h]),
        stage(affine, W=W2[h, c], b=b2[c], out=S[n, c])], ranges={n: N, d: D, h: H, c: C})

A stage is a matrix layer (translated by `from_matrix`), an activation (as its layer) or
a tensor layer; its one unbound input takes the previous stage's output, the others are
bound to the network's entries (0 drops one: no bias), and `out` names its output entry,
which fixes the sizes. Each stage's output but the last is a statistic of the network
(A, B, R above), and so are the stages' own statistics, renamed after the stage's output
(B_mu, B_var, ...), so that the page and the derivation speak of them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symnet.declare.layer import Layer, activation_layer
from symnet.declare.scalar import Activation
from symnet.declare.tensor import IndexDeclarationError, IndexLayer, fresh_dummies
from symnet.errors import DeclarationError
from symnet.index.from_matrix import TranslationError, translate


@dataclass(frozen=True)
class IndexStage:
    """One stage: a layer, its inputs bound to the network's entries, its output entry."""

    layer: object
    out: sp.Indexed
    bindings: dict = field(default_factory=dict)


def stage(layer, out, **bindings) -> IndexStage:
    """``stage(affine, W=W1[d, h], b=0, out=A[n, h])``."""
    return IndexStage(layer, out, bindings)


def as_index_layer(name: str, layer) -> IndexLayer:
    """A stage's layer in index notation."""
    if isinstance(layer, Activation):
        layer = activation_layer(layer)
    if isinstance(layer, Layer):
        try:
            return translate(layer).layer
        except TranslationError as exc:
            raise IndexDeclarationError(name, f"stage {layer.name}: {exc.problem}") from None
    if isinstance(layer, IndexLayer):
        return layer
    raise IndexDeclarationError(name, f"a stage is a Layer, an Activation or an IndexLayer, "
                                      f"got {layer!r}")


class Composer:
    """The stages, one after the other, as the entries of one IndexLayer."""

    def __init__(self, name: str, ranges: dict):
        self.name, self.ranges = name, ranges
        self.inputs, self.statistics, self.params = [], {}, {}
        self.invariant = []     # a stage's output invariant to a statistic: so is the network's

    def fail(self, problem: str):
        raise IndexDeclarationError(self.name, problem)

    def place(self, number: int, layer: IndexLayer, current: sp.Indexed, step: IndexStage):
        """(the stage's forward, its statistics) in the network's tensors and indices."""
        label = f"stage {number} ({layer.name})"
        names = {str(entry.base): entry for entry in layer.inputs}
        if unknown := set(step.bindings) - set(names):
            self.fail(f"{label} has no input {', '.join(sorted(unknown))} to bind (its "
                      f"inputs: {', '.join(names)})")
        free = [entry for n, entry in names.items() if n not in step.bindings]
        if len(free) != 1:
            self.fail(f"{label} must leave exactly one input unbound to take the previous "
                      f"output; unbound: {', '.join(map(str, free)) or 'none'}")
        pairs = [(free[0], current), (layer.output, step.out)]
        pairs += [(names[n], e) for n, e in step.bindings.items() if e != 0]
        at, tensors = self.indices(label, pairs), {mine.base: theirs.base for mine, theirs in
                                                   pairs}
        sizes = self.sizes(label, layer, at)
        dropped = {names[n].base for n, e in step.bindings.items() if e == 0}
        for entry in layer.statistics:
            tensors[entry.base] = sp.IndexedBase(f"{step.out.base}_{entry.base}", real=True)

        def moved(expr):
            expr = expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base in dropped,
                                lambda e: sp.Integer(0))
            expr = expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base in tensors,
                                lambda e: tensors[e.base][e.indices])
            return fresh_dummies(expr).xreplace({**at, **sizes})

        statistics = {moved(entry): moved(definition)
                      for entry, definition in layer.statistics.items()}
        self.inputs += [e for n, e in step.bindings.items() if e != 0]
        self.invariant += [tensors[base] for base in layer.invariant]
        for symbol, value in layer.params.items():
            if self.params.setdefault(symbol, value) != value:
                self.fail(f"{label}: parameter {symbol} has the default {value} here and "
                          f"{self.params[symbol]} in an earlier stage")
        return moved(layer.forward), statistics

    def sizes(self, label: str, layer: IndexLayer, at: dict) -> dict:
        """The stage's sizes -> the network's (affine's M is H in its first stage), read
        from the ranges of the indices `at` maps; the sizes of its sums follow."""
        found = {}
        for mine, theirs in at.items():
            extent, network = layer.ranges[mine], self.ranges.get(theirs)
            if network is None:
                self.fail(f"{label}: index {theirs} has no range; add {theirs}: SIZE to "
                          f"ranges")
            if isinstance(extent, sp.Symbol):
                if found.setdefault(extent, network) != network:
                    self.fail(f"{label}: the layer's size {extent} is {found[extent]} in "
                              f"one entry and {network} in another")
            elif extent != network:
                self.fail(f"{label}: the layer's index {mine} has {extent} values, the "
                          f"network's {theirs} has {network}")
        return found

    def indices(self, label: str, pairs) -> dict:
        """The stage's indices -> the network's, from (stage entry, network entry) pairs;
        the sizes come with them (the network's ranges)."""
        at = {}
        for mine, theirs in pairs:
            if len(mine.indices) != len(theirs.indices):
                self.fail(f"{label}: {theirs} has rank {len(theirs.indices)} but the layer's "
                          f"{mine} has rank {len(mine.indices)}")
            for i, j in zip(mine.indices, theirs.indices, strict=True):
                if at.setdefault(i, j) != j:
                    self.fail(f"{label}: the layer's index {i} is {at[i]} in one entry and {j} "
                              f"in {theirs}")
        return at


def index_network(name: str, input: sp.Indexed, stages, ranges: dict, hand=(),
                  doc: str = "") -> IndexLayer:
    """The stages composed into one IndexLayer from `input` to the last stage's output."""
    composer = Composer(name, ranges)
    current = input
    stages = list(stages)
    if not stages:
        composer.fail("a network needs at least one stage")
    forward = None
    for number, step in enumerate(stages, start=1):
        if not isinstance(step, IndexStage):
            composer.fail(f"stage {number} must be made by stage(layer, out=..., ...)")
        layer = as_index_layer(name, step.layer)
        forward, statistics = composer.place(number, layer, current, step)
        composer.statistics.update(statistics)
        if number < len(stages):
            composer.statistics[step.out] = forward
        current = step.out
    try:
        return IndexLayer(name, current, forward, inputs=(input, *composer.inputs),
                          ranges=ranges, statistics=composer.statistics,
                          params=composer.params, hand=hand, doc=doc,
                          invariant=composer.invariant)
    except DeclarationError as exc:
        raise IndexDeclarationError(name, exc.problem) from None
