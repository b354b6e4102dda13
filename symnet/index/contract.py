"""A contraction of three or more arrays as a chain of two-array ones, each intermediate
named and computed once (lower.py).

`Sum_{d, e} X1[n, d] W[i, d, e] X2[n, e]` in one np.einsum searches its order at every
call and shares nothing with the backward. Here the order is chosen once, at generation:
repeatedly the pair of factors whose product is smallest (the sizes of the first input,
the data, taken as large: 1024, the others as small: 16), summed over the indices no other
factor and no output uses. Each pair is an intermediate (X1[n, d] W[i, d, e] summed over
d: `W_X1[n, i, e]`), a BLAS product where it sums indices of both and batches none
(arrays.py: the arrays reshaped to matrices, then @), named by what it multiplies, so
that the backward reuses the forward's (kept in the cache) and its VJPs share theirs:
bilinear's dX2 reads the forward's X1 W, dX1 and dW share dY (x) X2.
"""

from __future__ import annotations

import itertools
import math

import sympy as sp

from symnet.index import arrays

#: the sizes the order is chosen for: the first input's (the data) large, the others small
LARGE, SMALL = 1024, 16


class Planner:
    """The intermediates of a layer's contractions, shared between all that ask."""

    def __init__(self, layout: arrays.Layout, taken: set):
        self.layout, self.taken = layout, taken
        first = layout.layer.inputs[0]
        large = {layout.layer.ranges[i] for i in first.indices}
        self.size = {i: LARGE if extent in large else SMALL
                     for i, extent in layout.layer.ranges.items()}
        #: canonical pair -> (its intermediate's entry, in canonical indices; definition)
        self.known: dict = {}
        #: the intermediates made since the last `take`, in order: (entry, definition)
        self.made: list = []

    def rewrite(self, expr: sp.Expr) -> sp.Expr:
        """expr with each contraction of three or more arrays as a chain of pairs."""
        return expr.replace(lambda e: isinstance(e, sp.Sum) and self._chainable(e),
                            self._chain)

    def take(self) -> list:
        """The intermediates made since the last call, each after those it reads."""
        made, self.made = self.made, []
        return made

    def _chainable(self, s: sp.Sum) -> bool:
        flat = arrays.flattened(s)
        if flat is None or not self.layout.is_contraction(s):
            return False
        return sum(isinstance(f, sp.Indexed) for f in sp.Mul.make_args(flat.function)) >= 3

    def _chain(self, s: sp.Sum) -> sp.Expr:
        flat = arrays.flattened(s)
        body = sp.Mul.make_args(flat.function)
        factors = [f for f in body if isinstance(f, sp.Indexed)]
        constant = sp.Mul(*(f for f in body if not isinstance(f, sp.Indexed)))
        summed = {limit[0]: limit for limit in flat.limits}
        kept = _indices(factors) - set(summed)
        while len(factors) > 2:
            a, b = min(itertools.combinations(factors, 2),
                       key=lambda pair: self._cost(pair, factors, kept))
            here = _indices([a, b]) - _indices([f for f in factors if f not in (a, b)]) - kept
            factors = [f for f in factors if f not in (a, b)]
            factors.append(self._pair(a, b, here, {i: summed.pop(i) for i in here}))
        rest = [summed[i] for i in sorted(summed, key=str)]
        product = sp.Mul(*factors)
        return constant * (sp.Sum(product, *rest) if rest else product)

    def _cost(self, pair, factors, kept) -> tuple:
        others = _indices([f for f in factors if f not in pair]) | kept
        result = _indices(pair) & others
        names = tuple(sorted(str(f.base) for f in pair))
        return math.prod(self._size(i, factors) for i in result), names

    def _size(self, index, factors) -> int:
        """The size the order is chosen for, of the layout axis the index runs along (a
        summed index such as m has no range of its own)."""
        axis = self.layout._axis_of(sp.Mul(*factors), index)
        return self.size[self.layout.order[axis]] if axis is not None else LARGE

    def _pair(self, a: sp.Indexed, b: sp.Indexed, here: set, limits: dict) -> sp.Indexed:
        """The intermediate a b summed over `here`, made once per canonical pair."""
        a, b = sorted((a, b), key=lambda f: str(f.base))
        order = list(dict.fromkeys((*a.indices, *b.indices)))
        canonical = {i: sp.Symbol(f"_{k}", integer=True) for k, i in enumerate(order)}
        key = (a.xreplace(canonical), b.xreplace(canonical),
               frozenset(canonical[i] for i in here))
        back = {c: i for i, c in canonical.items()}
        if key not in self.known:
            self.known[key] = self._named(a, b, order, here, limits, canonical)
        entry, _ = self.known[key]
        return entry.xreplace(back)

    def _named(self, a, b, order, here, limits, canonical):
        name = _unique(f"{self.layout.names[a.base]}_{self.layout.names[b.base]}",
                       self.taken)
        base = sp.IndexedBase(name, real=True)
        # in the layout's order of axes (n, i, e): the result's natural order, contiguous
        free = sorted((i for i in order if i not in here),
                      key=lambda i: self.layout._axis_of(a * b, i))
        entry = base[tuple(free)]
        definition = sp.Sum(a * b, *(limits[i] for i in order if i in here)) if here \
            else a * b
        axes = [self.layout._axis_of(a * b, i) for i in free]
        self.layout.axes_of[base] = tuple(axes)
        self.layout.names[base] = name
        self.layout.intermediates.add(base)
        self.made.append((entry, definition))
        return entry.xreplace(canonical), definition


def statements(layout: arrays.Layout, made: list) -> list[str]:
    """Each intermediate as one two-array np.einsum (or a matrix product), in the order of
    its own indices."""
    from symnet.codegen.layout import statement

    lines = []
    for entry, definition in made:
        factors = list(sp.Mul.make_args(definition.function if isinstance(definition, sp.Sum)
                                        else definition))
        summed = list(definition.variables) if isinstance(definition, sp.Sum) else []
        product = layout.matmul(factors, summed, list(entry.indices))
        if product is None:
            letters = arrays._letters(factors)
            spec = ",".join("".join(letters[i] for i in f.indices) for f in factors) \
                + "->" + "".join(letters[i] for i in entry.indices)
            extents = {letter: layout.extent(i, sp.Mul(*factors)) for i, letter in letters.items()}
            product = arrays.contraction(
                spec, [arrays.Array(layout.names[f.base]) for f in factors], extents,
                layout.large_letters(letters, sp.Mul(*factors)))
        lines += statement(str(entry.base), arrays.code_text(product))
    return lines


def _indices(factors) -> set:
    return {i for f in factors for i in f.indices}


def _unique(stem: str, taken: set) -> str:
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}_{k}", k + 1
    taken.add(name)
    return name
