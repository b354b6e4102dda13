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

`compose_stages` also gives each stage as a tensor layer of its own, in the network's
entries, its upstream named after its output (dA for A, G for the last): a `Network`
derives, proves and generates those one by one and chains them (symnet.index.chain), which
keeps each VJP short and each stage in its own layout; the composed form is its page.

`network_stages` does the same for a matrix `Network` with a tensor layer among its stages:
its matrices become entries (each size one index, N -> n; a 1 x M row b -> b[m]) and each
stage's output, unless named, is the layer's initial and number (B2 for a batchnorm at
stage 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from symnet.declare.layer import Layer, activation_layer
from symnet.declare.scalar import Activation
from symnet.declare.tensor import IndexDeclarationError, IndexLayer, fresh_dummies, index
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
        #: each stage as a tensor layer of its own, in the network's entries and indices
        self.placed = []

    def fail(self, problem: str):
        raise IndexDeclarationError(self.name, problem)

    def place(self, number: int, layer: IndexLayer, current: sp.Indexed, step: IndexStage):
        """(the stage's forward, its statistics) in the network's tensors and indices."""
        label = f"stage {number} ({layer.name})"
        names = {str(entry.base): entry for entry in layer.arguments}
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
        invariant = [tensors[base] for base in layer.invariant]
        self.invariant += invariant
        for symbol, value in layer.params.items():
            if self.params.setdefault(symbol, value) != value:
                self.fail(f"{label}: parameter {symbol} has the default {value} here and "
                          f"{self.params[symbol]} in an earlier stage")
        forward = moved(layer.forward)

        def bound(entries):   # the layer's own entries, in its order, as the network's
            return tuple(step.bindings.get(str(e.base), current) for e in entries
                         if step.bindings.get(str(e.base)) != 0)

        inputs, constants = bound(layer.inputs), bound(layer.constants)
        used = {i for e in (step.out, *inputs, *constants, *statistics) for i in e.indices}
        self.placed.append(IndexLayer(
            f"{layer.name}{number}", step.out, forward, inputs=inputs,
            ranges={i: r for i, r in self.ranges.items() if i in used},
            statistics=statistics, params=layer.params,
            constants=constants, invariant=invariant, doc=layer.doc))
        return forward, statistics

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
    return compose_stages(name, input, stages, ranges, hand, doc)[0]


def chained(placed: list) -> tuple:
    """The stages as layers of their own, each upstream dL/d(its output) named after the
    output (dA for A), the last one's G: each stage's backward hands its input's VJP to
    the stage before, the chain rule at the stage boundaries."""
    named = [replace(layer, upstream=sp.IndexedBase(f"d{layer.output.base}", real=True))
             for layer in placed[:-1]]
    return (*named, placed[-1])


def compose_stages(name: str, input: sp.Indexed, stages, ranges: dict, hand=(),
                   doc: str = "") -> tuple:
    """(the stages composed into one IndexLayer, the stages as layers of their own: see
    `chained`)."""
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
                          invariant=composer.invariant), chained(composer.placed)
    except DeclarationError as exc:
        raise IndexDeclarationError(name, exc.problem) from None


# --- a matrix Network's stages, one of them a tensor layer ----------------------------------


class MatrixEntries:
    """A network's matrices as tensor entries: each size has one index (N -> n), an axis
    of 1 has none (a bias row b, 1 x M, is b[m])."""

    def __init__(self, name: str):
        self.name, self.indices, self.ranges = name, {}, {}
        #: the names of the network's matrices
        self.taken = set()

    def index_of(self, extent, matrix) -> sp.Symbol:
        if not isinstance(extent, sp.Symbol):
            raise IndexDeclarationError(self.name, f"a network with a tensor-layer stage needs "
                                                   f"symbolic sizes, but {matrix} is "
                                                   f"{' x '.join(map(str, matrix.shape))}")
        if extent not in self.indices:
            taken = {str(i) for i in self.indices.values()}
            name = str(extent).lower()
            while name in taken:
                name += "_"
            self.indices[extent] = index(name)
            self.ranges[self.indices[extent]] = extent
        return self.indices[extent]

    def unused(self, name: str) -> str:
        """name, or name_ where a matrix of the network has it."""
        while name in self.taken:
            name += "_"
        return name

    def entry(self, matrix) -> sp.Indexed:
        """matrix as an entry (an Indexed passes as it is)."""
        if isinstance(matrix, sp.Indexed):
            return matrix
        if not isinstance(matrix, sp.MatrixSymbol):
            raise IndexDeclarationError(self.name, f"a stage's input is bound to a "
                                                   f"MatrixSymbol or 0, got {matrix!r}")
        self.taken.add(matrix.name)
        kept = [self.index_of(extent, matrix) for extent in matrix.shape if extent != 1]
        if not kept:
            raise IndexDeclarationError(self.name, f"{matrix} is 1 x 1: a scalar has no "
                                                   f"index form")
        return sp.IndexedBase(matrix.name, real=True)[tuple(kept)]


def _output_of(name: str, number: int, layer: IndexLayer, pairs, out, entries) -> sp.Indexed:
    """The stage's output entry in the network's indices, read off its inputs' bindings;
    `out` (a MatrixSymbol or None) names it."""
    label = f"stage {number} ({layer.name})"
    at = {}
    for mine, theirs in pairs:
        if len(mine.indices) == len(theirs.indices):
            at.update(zip(mine.indices, theirs.indices, strict=True))
    missing = [i for i in layer.output.indices if i not in at]
    if missing:
        raise IndexDeclarationError(name, f"{label}: its output index "
                                          f"{', '.join(map(str, missing))} is carried by none "
                                          f"of its inputs")
    indices = tuple(at[i] for i in layer.output.indices)
    if out is None:     # B2 for a batchnorm at stage 2 (batchnorm2 would print as a norm)
        return sp.IndexedBase(entries.unused(f"{layer.name[0].upper()}{number}"),
                              real=True)[indices]
    named = entries.entry(out)
    if named.indices != indices:
        shape = " x ".join(str(entries.ranges[i]) for i in indices)
        raise IndexDeclarationError(name, f"{label}: its output is {shape}, but out={out} is "
                                          f"{' x '.join(map(str, out.shape))}")
    return named


def network_stages(name: str, input, stages) -> tuple:
    """A `Network`'s stages (symnet.declare.network.Stage: a layer, its bindings to
    matrices, `output`) composed by `compose_stages` over the indices of the network's
    sizes: (one IndexLayer, the stages as layers of their own); the last stage's output is
    Y unless named."""
    entries = MatrixEntries(name)
    entries.taken |= {str(getattr(m, "name", m)) for step in stages
                      for m in (*step.bindings.values(), step.output) if m is not None}
    current = entries.entry(input)
    steps = []
    for number, step in enumerate(stages, start=1):
        layer = as_index_layer(name, step.layer)
        bindings = {str(getattr(mine, "base", mine)): (0 if theirs == 0 else
                                                       entries.entry(theirs))
                    for mine, theirs in step.bindings.items()}
        names = {str(entry.base): entry for entry in layer.inputs}
        free = [entry for n, entry in names.items() if n not in bindings]
        if len(free) != 1:
            raise IndexDeclarationError(name, f"stage {number} ({layer.name}) must leave "
                                              f"exactly one input unbound to take the previous "
                                              f"output; unbound: "
                                              f"{', '.join(map(str, free)) or 'none'}")
        pairs = [(names[n], e) for n, e in bindings.items() if e != 0 and n in names]
        pairs.append((free[0], current))
        out = _output_of(name, number, layer, pairs, step.output, entries)
        if number == len(stages) and step.output is None:
            out = sp.IndexedBase(entries.unused("Y"), real=True)[out.indices]
        steps.append(IndexStage(layer, out, bindings))
        current = out
    return compose_stages(name, entries.entry(input), steps, ranges=entries.ranges)
