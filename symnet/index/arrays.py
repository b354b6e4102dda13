"""Index expressions -> array expressions, for a tensor layer's module (lower.py).

Every array lives in one layout: the output's indices, then the inputs' other indices,
each at its own axis. An input's entry X[n, d] is the array X with None at the layout
axes it lacks (transposed first where its axes run in another order); a statistic or a
temporary is held at its place in the layout, right-aligned as numpy broadcasts (Z[n] as
an (N, 1) column, mu[d] as a (D,) row: a leading length-1 axis changes no broadcast, and
each operation between a (1, D) and a (D,) array costs about 0.5 us more than between two
of one shape, which at 64 x 100 was a tenth of batch norm's gap to the hand version). A sum
over the batch axis of one (N, D) array is the BLAS product ones @ A with a vector of N ones
(faster than A.sum(axis=0)), a sum of the product of two arrays on the same axes (or a
square) one two-operand np.einsum (no product array), any other sum over an index the sum
over that index's axis, keepdims=True (`.mean` where it is divided by its count). A sum of a product
of entries none of which spans all its axes (a contraction) is a BLAS matrix product where
it is one (X[n, d] W[d, m]: X @ W) and otherwise one np.einsum (X1[n, d] W[i, d, e]
X2[n, e]), so that no array larger than its operands is built.
"""

from __future__ import annotations

import sympy as sp

from symnet.codegen.array_ops import MatProd, Transposed
from symnet.codegen.errors import CodegenError
from symnet.codegen.printer import TARGET_PRINTER, NumpyPrinter
from symnet.declare.tensor import IndexLayer, MaxOver
from symnet.index.products import TensorDot, is_blas, matrix_product, tensordot_text

UPSTREAM = "dY"
#: the vector of N ones whose product with an (N, D) array is its column sums, (D,)
ONES = "ones"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


class Array(sp.Symbol):
    """An array as the code names it (X, X[:, None], a statistic, a temporary)."""


class AxisSum(sp.Function):
    """The sum of an array over one axis, keepdims=True; `mean` when divided by the count."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class AxisMean(AxisSum):
    pass


class AxisMax(sp.Function):
    """The max of an array over one axis, keepdims=True (a max statistic's lowering)."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class Einsum(sp.Function):
    """np.einsum(spec, *operands), spec the first argument (a Symbol holding the text)."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class KeepDims(sp.Function):
    """An array with a length-1 axis put back where a reduction took it: KeepDims(A, 0, 2)
    is A[None, :] (axis 0 of 2), np.einsum's result in a sum's keepdims shape."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class OnesRow(sp.Function):
    """A vector of N ones in the dtype of an array, a row to matmul: OnesRow(N, X). The
    column sums of an (N, D) array A are the BLAS product OnesRow(N, X) @ A, of shape (D,),
    faster than A.sum(axis=0)."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class IndexPrinter(NumpyPrinter):
    def _print_Einsum(self, expr):
        spec, *operands = expr.args
        shown = [self._print(o) for o in operands]
        if len(operands) == 2 and is_blas(spec.name):
            return tensordot_text(spec.name, *shown)
        # two operands: one loop, nothing to order (a path search would only cost time)
        optimize = ", optimize=True" if len(operands) > 2 else ""
        return f"np.einsum('{spec.name}', {', '.join(shown)}{optimize})"

    def _print_Pow(self, expr, rational=False):
        # 1/Z alone (Y *= 1/Z): np.reciprocal(Z) is one ufunc call without the Python int
        # 1 to convert, 0.7 against 1.1 us at 64 x 1; Y /= Z instead is 3.5% slower at
        # 256 x 1024 float64 (a division per entry, not per row)
        if expr.exp == -1 and isinstance(expr.base, Array):
            return f"np.reciprocal({self._print(expr.base)})"
        return super()._print_Pow(expr, rational=rational)

    def _print_TensorDot(self, expr):
        spec, sizes, left, right = expr.args
        letters = "".join(dict.fromkeys(spec.name.split("->")[0].replace(",", "")))
        extents = {c: self._print(e) for c, e in zip(letters, sizes.args, strict=True)}
        return matrix_product(spec.name, extents, self._print(left), self._print(right))

    def _print_OnesRow(self, expr):
        size, like = expr.args
        return f"np.ones({self._print(size)}, dtype={self._print(like)}.dtype)"


def exact_shape(expr: sp.Expr) -> bool:
    """Whether an array expression's shape is its axes' extents, no length-1 axis among them
    (ones @ A, a bare np.einsum, times constants): a VJP that is one needs no reshape to its
    input's shape where its axes are the input's."""
    _, rest = expr.as_coeff_Mul()
    if isinstance(rest, MatProd):
        return rest.args[0] == Array(ONES)
    return isinstance(rest, Einsum)


def array_method(name: str) -> str:
    """An array method ("copy", "transpose") as the target being generated spells it."""
    chosen = TARGET_PRINTER.get()
    return (IndexPrinter if chosen is None else chosen[0]).array_methods[name]


def code_text(expr: sp.Expr) -> str:
    """The source of an array expression, in the target being generated (numpy unless
    symnet.codegen.targets set TARGET_PRINTER: its printer spells these nodes too)."""
    chosen = TARGET_PRINTER.get()
    printer_class, settings = (IndexPrinter, {}) if chosen is None else chosen
    # a mask (relu' as B > 0) takes the dtype of the upstream, which every backward has:
    # an input named X need not exist (a network's relu stage reads B2)
    printer = printer_class({"names": {}, "dtype_of": UPSTREAM,
                             "fully_qualified_modules": True, **settings})
    return printer.doprint(expr)


# --- the layout ----------------------------------------------------------------------------


class Layout:
    """Where each index and each array sits; turns index expressions into array ones."""

    def __init__(self, layer: IndexLayer):
        self.layer = layer
        order = list(layer.output.indices)
        for entry in (*layer.arguments, *layer.statistics):
            order += [i for i in entry.indices if i not in order]
        self.order = tuple(order)
        self.axis = {i: n for n, i in enumerate(self.order)}
        declared = layer.declared()
        #: base -> the layout axes of its declared axes
        self.axes_of = {base: tuple(self.axis[i] for i in entry.indices)
                        for base, entry in declared.items()}
        #: arrays held at their place in the layout (statistics); the others are native
        self.placed = {entry.base for entry in layer.statistics}
        self.names = {base: str(base) for base in declared}
        self.names[layer.upstream] = UPSTREAM
        self.temporaries = {}   # Sum -> Array
        #: the bases of the named pairs of a contraction (contract.py), native arrays
        self.intermediates = set()

    def entry(self, e: sp.Indexed, bound: dict) -> sp.Expr:
        """An entry as its array placed in the layout; `bound` maps summation indices to
        the axis they run over (checked against the entry's own axes)."""
        axes = self.axes_of[e.base]
        for i, axis in zip(e.indices, axes, strict=True):
            where = bound.get(i, self.axis.get(i))
            if where != axis:
                raise _Misplaced(e)
        name = self.names[e.base]
        if e.base in self.placed:
            return Array(name)
        if list(axes) != sorted(axes):     # W[k, d] in a layout where d comes first
            order = sorted(range(len(axes)), key=lambda n: axes[n])
            name = f"{name}.{array_method('transpose')}({', '.join(map(str, order))})"
            axes = sorted(axes)
        if list(axes) == list(range(axes[0], axes[-1] + 1)):
            return Array(name)
        slots = [":" if n in axes else "None" for n in range(axes[0], axes[-1] + 1)]
        return Array(f"{name}[{', '.join(slots)}]")

    def array(self, expr: sp.Expr, bound: dict | None = None) -> sp.Expr:
        bound = bound or {}
        if isinstance(expr, sp.Indexed):
            return self.entry(expr, bound)
        if isinstance(expr, sp.Sum):
            return self.reduction(expr, bound)
        if isinstance(expr, MaxOver):
            return self.maximum(expr, bound)
        if isinstance(expr, sp.KroneckerDelta):
            raise CodegenError(self.layer.name, f"a Kronecker delta {expr} was left in a VJP")
        if not expr.args:
            return expr
        if expr.is_Mul:
            return self._mul(expr, bound)
        return expr.func(*[self.array(a, bound) for a in expr.args])

    def _mul(self, expr: sp.Mul, bound: dict) -> sp.Expr:
        """A sum divided by its count as a mean: Sum(f(k), k) / N -> f.mean(axis)."""
        factors = list(expr.args)
        for s in [f for f in factors if isinstance(f, sp.Sum) and len(f.limits) == 1]:
            variable, lower, upper = s.limits[0]
            count = (upper - lower + 1) ** -1
            if count in factors:
                factors.remove(count)
                factors.remove(s)
                return sp.Mul(self.reduction(s, bound, AxisMean),
                              *[self.array(f, bound) for f in factors])
        return sp.Mul(*[self.array(f, bound) for f in factors])

    def reduction(self, s: sp.Sum, bound: dict, kind=AxisSum) -> sp.Expr:
        """A sum over each of its indices' axes (keepdims), or one np.einsum for a
        contraction or where an index's axis is taken."""
        variables = [limit[0] for limit in s.limits]
        axes = [self._axis_of(s.function, v) for v in variables]
        free = {self.axis.get(i, bound.get(i)) for i in _indices(s.function) - set(variables)}
        pairwise = self.pairwise(s, bound)
        if pairwise is not None:
            return pairwise if kind is AxisSum else pairwise / (s.limits[0][2] + 1)
        if None not in axes and len(set(axes)) == len(axes) and not set(axes) & free \
                and not self.is_contraction(s):
            try:
                body = self.array(s.function, {**bound, **dict(zip(variables, axes,
                                                                    strict=True))})
                for axis in axes[:-1]:
                    body = AxisSum(body, sp.Integer(axis))
                return kind(body, sp.Integer(axes[-1]))
            except _Misplaced:
                pass
        einsum = self.einsum(s, bound)
        return einsum if kind is AxisSum else einsum / (s.limits[0][2] + 1)

    def maximum(self, m: MaxOver, bound: dict) -> sp.Expr:
        """A max over one index as the max over its axis, keepdims=True."""
        variable = m.limits[0][0]
        axis = self._axis_of(m.function, variable)
        if axis is None:
            raise CodegenError(self.layer.name, f"cannot lower {m}: its index runs over "
                               f"no one axis")
        body = self.array(m.function, {**bound, variable: axis})
        return AxisMax(body, sp.Integer(axis))

    def pairwise(self, s: sp.Sum, bound: dict):
        """A sum over one index of one 2-d array along the batch axis as the BLAS product
        ones @ A (its column sums), or of the product of two arrays on the same axes (or a
        square) as one two-operand np.einsum, which builds no product array; right-aligned:
        the kept axes alone where the leading one is summed ((D,)), else in the sum's keepdims
        shape ((N, 1)). None where neither fits."""
        if len(s.limits) != 1:
            return None
        variable = s.limits[0][0]
        constant, entries = sp.S.One, []
        for f in sp.Mul.make_args(s.function):
            if isinstance(f, sp.Indexed):
                entries.append(f)
            elif f.is_Pow and f.exp == 2 and isinstance(f.base, sp.Indexed):
                entries += [f.base, f.base]
            elif not f.has(sp.Indexed) and variable not in f.free_symbols:
                constant *= f
            else:
                return None
        axis = self._axis_of(s.function, variable)
        own = {self.axes_of[e.base] for e in entries}
        if axis is None or len(own) != 1 or len(entries) > 2:
            return None
        (own,) = own
        if list(own) != list(range(own[0], own[0] + len(own))):
            return None
        try:
            operands = [self.entry(e, {**bound, variable: axis}) for e in entries]
        except _Misplaced:
            return None
        if len(entries) == 1:
            if axis != 0 or len(own) != 2:
                return None
            return constant * MatProd(Array(ONES), operands[0])
        letters = "".join(self._letter(a) for a in own)
        kept = "".join(self._letter(a) for a in own if a != axis)
        spec = sp.Symbol(f"{letters},{letters}->{kept}")
        if axis == own[0]:     # the leading axis summed: right-aligned as it is, (D,)
            return constant * Einsum(spec, *operands)
        return constant * KeepDims(Einsum(spec, *operands), sp.Integer(own.index(axis)),
                                   sp.Integer(len(own)))

    def _letter(self, axis: int) -> str:
        """An axis's einsum letter: its index's own name where all of them are one letter."""
        names = [str(i) for i in self.order]
        if all(len(n) == 1 and n in LETTERS for n in names) and len(set(names)) == len(names):
            return names[axis]
        return LETTERS[axis]

    def is_contraction(self, s: sp.Sum) -> bool:
        """Whether the sum's body multiplies entries over different axes (X1[n, d] W[k, d, e])
        so that no one of them spans them all: summed by broadcasting, it would build an
        array larger than any of them. (A product with a statistic, held in the layout, is
        summed by broadcasting: correct, if not the least memory.)"""
        flat = flattened(s)
        if flat is None:
            return False
        axes = [set(self.axes_of[f.base]) for f in sp.Mul.make_args(flat.function)
                if isinstance(f, sp.Indexed)]
        union = set().union(*axes) if axes else set()
        # a product with a named pair of a chain (contract.py) is one too: its last link
        chained = len(axes) > 1 and any(f.base in self.intermediates
                                        for f in flat.atoms(sp.Indexed))
        return bool(axes) and (max(len(a) for a in axes) < len(union) or chained) \
            and not any(f.base in self.placed for f in flat.atoms(sp.Indexed))

    def large_letters(self, letters: dict, body: sp.Expr) -> set:
        """The letters whose indices run over the data's sizes (the first input's)."""
        large = {self.layer.ranges[i] for i in self.layer.inputs[0].indices}
        return {c for i, c in letters.items() if self.extent(i, body) in large}

    def extent(self, index, body: sp.Expr) -> sp.Expr:
        """The size an index runs over: its range, or (a summed index such as m, which has
        none of its own) that of the layout axis it runs along in body."""
        if index in self.layer.ranges:
            return self.layer.ranges[index]
        return self.layer.ranges[self.order[self._axis_of(body, index)]]

    def _axis_of(self, body: sp.Expr, variable) -> int | None:
        found = {self.axes_of[e.base][e.indices.index(variable)]
                 for e in body.atoms(sp.Indexed) if variable in e.indices}
        return found.pop() if len(found) == 1 else None

    def einsum(self, s: sp.Sum, bound: dict, order=None) -> sp.Expr:
        """A sum of a product of entries as one np.einsum (output: its free indices at
        their layout axes, None at the axes between; or in `order`, an input's own)."""
        flat = flattened(s)
        if flat is None or any(e.base in self.placed for e in flat.atoms(sp.Indexed)):
            raise CodegenError(self.layer.name, f"cannot lower {s}: only a sum of a product of "
                               f"the inputs' entries becomes np.einsum")
        summed = [limit[0] for limit in flat.limits]
        body = flat.function
        factors = [f for f in sp.Mul.make_args(body) if isinstance(f, sp.Indexed)]
        constant = sp.Mul(*(f for f in sp.Mul.make_args(body) if not isinstance(f, sp.Indexed)))
        letters = _letters(factors)
        free = sorted(_indices(body) - set(summed), key=lambda i: self.axis[i])
        spec = ",".join("".join(letters[i] for i in f.indices) for f in factors) + "->" \
            + "".join(letters[i] for i in free)
        if order is not None:
            free = list(order)
            spec = spec.split("->")[0] + "->" + "".join(letters[i] for i in free)
        product = self.matmul(factors, summed, free)
        operands = [Array(self.names[f.base]) for f in factors]
        extents = {letter: self.extent(i, body) for i, letter in letters.items()}
        result = constant * (product if product is not None
                             else contraction(spec, operands, extents,
                                              self.large_letters(letters, body)))
        axes = [self.axis[i] for i in free]
        if order is None and axes and axes != list(range(axes[0], axes[-1] + 1)):
            slots = [":" if n in axes else "None" for n in range(axes[0], axes[-1] + 1)]
            return Array(f"{code_text(result)}[{', '.join(slots)}]")
        return result


    def matmul(self, factors: list, summed: list, free: list):
        """A[i, s] B[s, j] summed over s as the BLAS product A @ B (each side transposed
        where its indices run the other way), else None."""
        if len(factors) != 2 or len(summed) != 1 or len(free) != 2 \
                or any(len(f.indices) != 2 for f in factors):
            return None
        (s,), (first, second) = summed, free
        left = next((f for f in factors if first in f.indices and s in f.indices), None)
        right = next((f for f in factors if f is not left), None)
        if left is None or right is None or set(right.indices) != {s, second}:
            return None
        a, b = Array(self.names[left.base]), Array(self.names[right.base])
        a = Transposed(a) if left.indices == (s, first) else a
        b = Transposed(b) if right.indices == (second, s) else b
        return MatProd(a, b)


def contraction(spec: str, operands: list, extents: dict, large: set = frozenset()) -> sp.Expr:
    """The two-operand contraction `spec` as numpy's written-out BLAS product (TensorDot)
    where it is one, else np.einsum; `extents`: the size each letter runs over, `large`: the
    letters of the data's sizes (the first input's)."""
    if TARGET_PRINTER.get() is None and len(operands) == 2 and is_blas(spec):
        (left, right), result = spec.split("->")[0].split(","), spec.split("->")[1]
        kept_a, kept_b = [c for c in left if c in result], [c for c in right if c in result]
        if list(result) not in (kept_a + kept_b, kept_b + kept_a) \
                and set(kept_a) & large and not set(kept_b) & large:
            # the product's rows the small axes, its columns the data's: dW = (dY (x) X2)'
            # @ X1, (K*E, D), took 81 against 101 ms as X1' @ (dY (x) X2), (D, K*E), at
            # 1024 x 4096 float64 (the hand version's way; even in float32)
            spec, operands = f"{right},{left}->{result}", operands[::-1]
            left, right = right, left
        if set(left) & set(result) and set(right) & set(result):
            letters = "".join(dict.fromkeys(left + right))
            return TensorDot(sp.Symbol(spec), sp.Tuple(*(extents[c] for c in letters)),
                             *operands)
    return Einsum(sp.Symbol(spec), *operands)


def _letters(factors) -> dict:
    """Each index's einsum letter: its own name where that is one letter (n, d, e)."""
    order = list(dict.fromkeys(i for f in factors for i in f.indices))
    own = [str(i) for i in order]
    if all(len(name) == 1 and name in LETTERS for name in own) and len(set(own)) == len(own):
        return dict(zip(order, own, strict=True))
    return {i: LETTERS[n] for n, i in enumerate(order)}


def flattened(s: sp.Sum):
    """A nest of sums of a product as one sum over all their indices, every factor inside
    (Sum_k G[n, k] Sum_e W[k, d, e] X2[n, e] -> Sum_{k, e} G W X2); None when a body is not
    a product of entries, sums and constants."""
    limits, factors = [], []
    pending = [s]
    while pending:
        term = pending.pop()
        if isinstance(term, sp.Sum):
            limits += list(term.limits)
            pending.append(term.function)
            continue
        for factor in sp.Mul.make_args(term):
            if isinstance(factor, sp.Sum):
                pending.append(factor)
            elif isinstance(factor, sp.Indexed) or not _indices(factor) and not factor.has(
                    sp.Indexed):
                factors.append(factor)
            else:
                return None
    return sp.Sum(sp.Mul(*factors), *limits)


class _Misplaced(Exception):
    """An index used on another axis than its array declares: needs an einsum."""


def _indices(expr: sp.Expr) -> set:
    return {i for e in expr.atoms(sp.Indexed) for i in e.indices}
