"""Index-form VJPs brought back to matrix form (issue 15: one derivation path for layers).

The index path derives a matrix layer's VJP entry by entry (`from_matrix.py` translates
its forward); the rest of the pipeline (page, code, networks) reads matrices, so each
entry expression is written as the matrix a person writes:

    Sum(G[n, k] W[d, k], k)      ->  G*W.T
    Sum(X[k, d] G[k, m], k)      ->  X.T*G
    Sum(G[k, m], k)   (b: 1 x M) ->  ones(1, N)*G
    G[n, m] relu'(X[n, m])       ->  G .* relu'(X)

A product of entries over the same two indices is a Hadamard product, a sum over one
index whose factors split into a left part (row index and k) and a right part (k and
column index) is a matrix product, an entry free of the row (or column) index is
broadcast over it, a function of entries is the function applied entry by entry. What
fits none of these (a factor holding the row index, the column index and the summed one
at once; a Kronecker delta left over) raises `NoMatrixForm`, and the caller keeps the
index form.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.declare.elementwise import Elementwise, entry_variables


class NoMatrixForm(Exception):
    """An index expression that is not a matrix expression of the layer's matrices."""


def _indices(expr) -> set:
    """The index symbols free in expr (integer symbols that are not sizes)."""
    return {s for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.is_integer
            and not s.is_positive}


def _added(terms):
    """The sum of matrices in the order sympy's `+` gives them (the order a declaration's
    own sums have, so that a forward's X*W1 + ones*b1 comes back the same), its terms
    left as they are (`+` would also reorder the factors of a Hadamard product)."""
    terms = list(terms)
    return terms[0] if len(terms) == 1 else sp.MatAdd(*terms).doit(deep=False)


class Back:
    """Entry expressions over a layer's tensors as matrix expressions of its matrices."""

    def __init__(self, matrices: dict, ranges: dict):
        #: tensor (IndexedBase) -> matrix; index -> its number of values
        self.matrices, self.ranges = matrices, dict(ranges)

    def extent(self, i):
        return 1 if i is None else self.ranges[i]

    def shape(self, row, col) -> tuple:
        return self.extent(row), self.extent(col)

    def matrix(self, expr, row, col):
        """The matrix M of shape (|row|, |col|) with M[row, col] = expr; row or col None
        for an axis of size 1."""
        free = _indices(expr)
        if free - {row, col}:
            raise NoMatrixForm(f"{expr} holds the index {sorted(map(str, free - {row, col}))}")
        if not expr.has(sp.Indexed):
            return sp.ZeroMatrix(*self.shape(row, col)) if expr == 0 \
                else expr * sp.OneMatrix(*self.shape(row, col))
        if row is not None and row not in free:
            return sp.OneMatrix(self.extent(row), 1) * self.matrix(expr, None, col)
        if col is not None and col not in free:
            return self.matrix(expr, row, None) * sp.OneMatrix(1, self.extent(col))
        return self.full(expr, row, col)

    def full(self, expr, row, col):
        """`matrix` for an expr that holds every one of row, col that is not None."""
        if isinstance(expr, sp.Indexed):
            return self.tensor(expr, row, col)
        if isinstance(expr, sp.Add):
            return _added(self.matrix(t, row, col) for t in expr.args)
        if isinstance(expr, sp.Mul):
            return self.product(expr, row, col)
        if isinstance(expr, sp.Sum):
            return self.summed(expr, row, col)
        if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 1:
            return sp.HadamardPower(self.matrix(expr.base, row, col), expr.exp)
        if isinstance(expr, sp.KroneckerDelta):
            raise NoMatrixForm(f"the Kronecker delta {expr} is left over")
        if isinstance(expr, (sp.Function, sp.Pow)):
            return self.applied(expr, row, col)
        raise NoMatrixForm(f"{type(expr).__name__} {expr}")

    def tensor(self, entry: sp.Indexed, row, col):
        matrix = self.matrices.get(entry.base)
        if matrix is None:
            raise NoMatrixForm(f"{entry.base} is not a matrix of the layer")
        at = list(entry.indices)
        kept = [axis for axis, extent in enumerate(matrix.shape) if extent != 1]
        placed = [None, None]
        for axis, i in zip(kept, at, strict=True):
            placed[axis] = i
        if placed == [row, col]:
            return matrix
        if placed == [col, row]:
            return matrix.T
        raise NoMatrixForm(f"{entry} is not an entry of {matrix} or its transpose at "
                           f"[{row}, {col}]")

    def product(self, expr: sp.Mul, row, col):
        coefficient, factors = sp.Integer(1), []
        for factor in expr.args:
            if factor.has(sp.Indexed):
                factors.append(self.matrix(factor, row, col))
            else:
                coefficient *= factor
        product = factors[0] if len(factors) == 1 else sp.HadamardProduct(*factors)
        return product if coefficient == 1 else coefficient * product

    def summed(self, expr: sp.Sum, row, col):
        body = expr.function
        for limit in expr.limits[:-1]:
            body = sp.Sum(body, limit)
        k, lower, upper = expr.limits[-1]
        if lower != 0:
            raise NoMatrixForm(f"the sum over {k} starts at {lower}")
        self.ranges[k] = sp.expand(upper + 1)
        outside = [f for f in sp.Mul.make_args(body) if k not in f.free_symbols]
        if outside:
            inside = sp.Mul(*(f for f in sp.Mul.make_args(body) if k in f.free_symbols))
            return self.matrix(sp.Mul(*outside) * sp.Sum(inside, (k, lower, upper)), row, col)
        if isinstance(body, sp.Add):
            return _added(self.summed(sp.Sum(t, (k, lower, upper)), row, col)
                          for t in body.args)
        try:
            return self.contraction(sp.Mul.make_args(body), k, row, col)
        except NoMatrixForm:
            swapped = _swapped(body, (k, lower, upper))
            if swapped is None:
                raise
            return self.matrix(swapped, row, col)

    def contraction(self, factors, k, row, col):
        """Sum_k left[row, k] right[k, col] as the matrix product left*right."""
        left, right, middle = [], [], []
        for factor in factors:
            free = _indices(factor)
            if row is not None and row in free and col is not None and col in free:
                raise NoMatrixForm(f"{factor} holds {row}, {col} and the summed {k}")
            if row is not None and row in free:
                left.append(factor)
            elif col is not None and col in free:
                right.append(factor)
            else:
                middle.append(factor)
        if left:
            left += middle
        else:
            right += middle
        first = self.matrix(sp.Mul(*left), row, k) if left \
            else sp.OneMatrix(self.extent(row), self.ranges[k])
        second = self.matrix(sp.Mul(*right), k, col) if right \
            else sp.OneMatrix(self.ranges[k], self.extent(col))
        return sp.MatMul(first, second)

    def applied(self, expr, row, col):
        """f(entries) as f applied entry by entry to the matrices of its arguments; the
        arguments free of every index stay inside f."""
        moving = [a for a in expr.args if a.has(sp.Indexed)]
        variables = entry_variables(len(moving))
        body = expr.xreplace(dict(zip(moving, variables, strict=True)))
        matrices = [self.matrix(a, row, col) for a in moving]
        function = sp.Lambda(variables, body)
        if len(matrices) == 1:
            return ElementwiseApplyFunction(function, matrices[0])
        return Elementwise(function, *matrices)


def as_matrix(expr: sp.Expr, entry: sp.Indexed, matrix, matrices: dict, ranges: dict):
    """The matrix (of `matrix`'s shape) whose entry at `entry`'s indices is expr."""
    kept = [axis for axis, extent in enumerate(matrix.shape) if extent != 1]
    placed = [None, None]
    for axis, i in zip(kept, entry.indices, strict=True):
        placed[axis] = i
    row, col = placed
    back = Back(matrices, ranges)
    result = back.matrix(factors_out(sp.sympify(expr)), row, col)
    if result.shape != matrix.shape:
        raise NoMatrixForm(f"{expr} comes back {result.shape}, not {matrix.shape}")
    return result


def _swapped(body, limit):
    """Sum_k a Sum_m b as Sum_m (Sum_k a b), factors moved out (G (W relu'(A)) V^T read
    the other way round), where body is a product holding one inner sum; else None."""
    inner = [f for f in sp.Mul.make_args(body) if isinstance(f, sp.Sum) and len(f.limits) == 1]
    if len(inner) != 1:
        return None
    rest = sp.Mul(*(f for f in sp.Mul.make_args(body) if f is not inner[0]))
    return factors_out(sp.Sum(factors_out(sp.Sum(rest * inner[0].function, limit)),
                              *inner[0].limits))


def factors_out(expr: sp.Expr) -> sp.Expr:
    """Each sum's factors free of its index moved out of it, innermost first, so that an
    outer sum sees them: Sum(f[n, j] W[d, j] Sum(G[n, k] V[j, k], k), j) and not a sum
    over k holding n, d and j."""

    def out(s: sp.Sum) -> sp.Expr:
        if len(s.limits) != 1:
            return s
        k = s.limits[0][0]
        factors = sp.Mul.make_args(s.function)
        free = [f for f in factors if k not in f.free_symbols]
        if not free:
            return s
        return sp.Mul(*free) * sp.Sum(sp.Mul(*(f for f in factors if f not in free)),
                                      *s.limits)

    return expr.replace(lambda e: isinstance(e, sp.Sum), out)


def _canonical(expr):
    """expr with nested Hadamard products flattened and the terms of sums and factors of
    Hadamard products sorted: two arrangements of one product compare equal."""
    if not isinstance(expr, sp.Basic) or not expr.args:
        return expr
    args = [_canonical(a) for a in expr.args]
    if isinstance(expr, sp.HadamardProduct):
        flat = [f for a in args for f in (a.args if isinstance(a, sp.HadamardProduct) else (a,))]
        return sp.HadamardProduct(*sorted(flat, key=sp.default_sort_key))
    if isinstance(expr, sp.MatAdd):
        return sp.MatAdd(*sorted(args, key=sp.default_sort_key))
    return expr.func(*args)


def same_up_to_order(first, second) -> bool:
    """Whether two matrix expressions differ at most in the order of terms and of the
    factors of Hadamard products (which commute)."""
    return _canonical(first) == _canonical(second)
