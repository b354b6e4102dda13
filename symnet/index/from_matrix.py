"""A matrix layer's forward in index notation: one derivation path for layers (issue 15).

A `Layer` is written batch first in matrix notation (``X*W + broadcast(b, N)``); here it
becomes the entry-by-entry declaration the index path derives (`IndexLayer`):

    X*W + ones(N, 1)*b   ->   Y[n, m] = Sum(X[n, d] W[d, m], (d, 0, D - 1)) + b[m]

Each matrix is a tensor over named indices with the matrix's symbolic sizes as ranges
(N -> n, D -> d; a second axis of one size gets d2); an axis of size 1 is dropped, so a
bias row b (1 x M) is b[m] and a broadcast over the batch is the plain entry b[m].
Products become sums over a fresh index, transposes swap the indices, Hadamard products
and powers are products and powers of entries, an activation applied entry by entry is
the activation of the entry. What cannot be written so (a 1 x 1 matrix, a trace, an
inverse) is one `TranslationError` naming the layer and the node.

`to_matrix.py` brings the derived VJPs back to matrix form.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.declare.elementwise import Elementwise
from symnet.declare.layer import Layer, output_symbol
from symnet.declare.tensor import IndexLayer, index
from symnet.errors import DeclarationError
from symnet.matrix.text import text


class TranslationError(DeclarationError):
    """A matrix layer (or a matrix claim about it) has no index form."""


@dataclass(frozen=True)
class Translated:
    """A matrix layer in index notation, and what it takes to come back."""

    layer: IndexLayer
    #: tensor (IndexedBase) -> the matrix it stands for (inputs, upstream, output)
    matrices: dict
    #: matrix -> its tensor's declared entry (X -> X[n, d]; b -> b[m])
    entries: dict
    #: index -> its number of values (declared indices and the sums' fresh ones)
    ranges: dict


class Namer:
    """Index names for the sizes of one layer: n for N, d and d2 for two axes of D, k_1,
    k_2 for the sums' own indices; never a name a matrix or size already has."""

    def __init__(self, taken):
        self.taken = {str(t) for t in taken}
        self.by_size: dict = {}
        self.ranges: dict = {}
        self._sums = itertools.count(1)

    def _new(self, base: str, extent) -> sp.Symbol:
        name, number = base, 2
        while name in self.taken:
            name, number = f"{base}{number}", number + 1
        self.taken.add(name)
        symbol = index(name)
        self.ranges[symbol] = extent
        return symbol

    def axis(self, extent, position: int) -> sp.Symbol:
        """The position-th index over `extent` (0: n, 1: n2, ...)."""
        known = self.by_size.setdefault(extent, [])
        while len(known) <= position:
            base = str(extent).lower() if isinstance(extent, sp.Symbol) else f"i{extent}"
            known.append(self._new(base, extent))
        return known[position]

    def summed(self, extent) -> sp.Symbol:
        while True:
            name = f"k_{next(self._sums)}"
            if name not in self.taken:
                self.taken.add(name)
                symbol = index(name)
                self.ranges[symbol] = extent
                return symbol


def _kept(matrix) -> list[int]:
    """The axes of a matrix that an index form keeps: those of size other than 1."""
    return [axis for axis, extent in enumerate(matrix.shape) if extent != 1]


class Translator:
    """Matrix expressions of one layer as entries over its indices."""

    def __init__(self, name: str, matrices, namer: Namer):
        self.name, self.namer = name, namer
        self.tensors, self.entries = {}, {}
        for matrix in matrices:
            self.declare(matrix)

    def fail(self, node, why: str):
        raise TranslationError(self.name, f"{text(node)} has no index form: {why}")

    def declare(self, matrix: sp.MatrixSymbol) -> sp.Indexed:
        kept = _kept(matrix)
        if not kept:
            self.fail(matrix, "a 1 x 1 matrix is a scalar, not a tensor over indices")
        counts: dict = {}
        indices = []
        for axis in kept:
            extent = matrix.shape[axis]
            indices.append(self.namer.axis(extent, counts.get(extent, 0)))
            counts[extent] = counts.get(extent, 0) + 1
        base = sp.IndexedBase(str(matrix), real=True)
        self.tensors[matrix] = base
        self.entries[matrix] = base[tuple(indices)]
        return self.entries[matrix]

    def entry(self, node, i, j) -> sp.Expr:
        """node[i, j] as an expression of entries (i, j indices, or 0 on an axis of 1)."""
        if isinstance(node, sp.MatrixSymbol):
            if node not in self.tensors:
                self.fail(node, "it is not a matrix of the layer")
            at = (i, j)
            return self.tensors[node][tuple(at[axis] for axis in _kept(node))]
        if isinstance(node, sp.OneMatrix):
            return sp.Integer(1)
        if isinstance(node, sp.ZeroMatrix):
            return sp.Integer(0)
        if isinstance(node, sp.MatAdd):
            return sp.Add(*(self.entry(a, i, j) for a in node.args))
        if isinstance(node, sp.MatMul):
            return self.product(node, i, j)
        if isinstance(node, sp.Transpose):
            return self.entry(node.arg, j, i)
        if isinstance(node, sp.HadamardProduct):
            return sp.Mul(*(self.entry(a, i, j) for a in node.args))
        if isinstance(node, sp.HadamardPower):
            return self.entry(node.base, i, j) ** node.exp
        if isinstance(node, ElementwiseApplyFunction):
            return node.function(self.entry(node.expr, i, j))
        if isinstance(node, Elementwise):
            return node.function(*(self.entry(m, i, j) for m in node.matrices))
        if not getattr(node, "is_Matrix", False):
            return node
        return self.fail(node, f"symnet writes no {type(node).__name__} entry by entry")

    def product(self, node: sp.MatMul, i, j) -> sp.Expr:
        scalars = [a for a in node.args if not getattr(a, "is_Matrix", False)]
        matrices = [a for a in node.args if getattr(a, "is_Matrix", False)]
        return sp.Mul(*scalars) * self.chain(matrices, i, j)

    def chain(self, matrices: list, i, j) -> sp.Expr:
        """(A B C)[i, j] = Sum_k A[i, k] (B C)[k, j], an inner size of 1 summing nothing."""
        first, rest = matrices[0], matrices[1:]
        if not rest:
            return self.entry(first, i, j)
        extent = first.shape[1]
        if extent == 1:
            return self.entry(first, i, 0) * self.chain(rest, 0, j)
        k = self.namer.summed(extent)
        return sp.Sum(self.entry(first, i, k) * self.chain(rest, k, j), (k, 0, extent - 1))

    def at(self, node, entry: sp.Indexed) -> sp.Expr:
        """node at the indices of a declared entry (the entry of a matrix of node's shape)."""
        return self.entry(node, *self.positions(node.shape, entry.indices))

    @staticmethod
    def positions(shape, indices) -> tuple:
        """(i, j) for a matrix of `shape` whose kept axes carry `indices`."""
        found, rest = [], list(indices)
        for extent in shape:
            found.append(sp.Integer(0) if extent == 1 else rest.pop(0))
        return tuple(found)


def translator(layer: Layer) -> Translator:
    """The translator of a layer: its inputs, upstream and output declared as tensors."""
    output = output_symbol(layer)
    sizes = {s for m in (*layer.inputs, layer.upstream) for d in m.shape
             for s in sp.sympify(d).free_symbols}
    namer = Namer([*layer.inputs, layer.upstream, output, *sizes])
    return Translator(layer.name, [*layer.inputs, layer.upstream, output], namer)


def translate(layer: Layer) -> Translated:
    """The layer's forward as an IndexLayer over its matrices' sizes."""
    words = translator(layer)
    output = output_symbol(layer)
    out_entry = words.entries[output]
    forward = words.at(layer.forward, out_entry)
    declared = {words.entries[m].indices for m in layer.inputs}
    ranges = {i: words.namer.ranges[i] for indices in (*declared, out_entry.indices)
              for i in indices}
    try:
        indexed = IndexLayer(layer.name, out_entry, forward,
                             inputs=tuple(words.entries[m] for m in layer.inputs),
                             ranges=ranges, upstream=words.tensors[layer.upstream])
    except DeclarationError as exc:
        raise TranslationError(layer.name, f"its index form does not hold together: "
                                           f"{exc.problem}") from None
    matrices = {base: matrix for matrix, base in words.tensors.items()}
    return Translated(indexed, matrices, dict(words.entries), dict(words.namer.ranges))
