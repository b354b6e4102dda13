"""Matrix expressions -> whole numpy arrays, the batch first (stage 1 for layers).

A layer's forward and its VJPs are sympy matrix expressions (`symnet.matrix.vjp`); their code
works on 2-d arrays with numpy's broadcasting:

* a MatrixSymbol is the array of its name; the product ``A*B`` is ``A @ B``
  (`array_ops.MatProd`), ``A.T`` is ``A.T`` (`array_ops.Transposed`), a Hadamard product is ``*``
  and a Hadamard power ``**``;
* the broadcast bias ``ones(N, 1)*b`` is ``b`` itself, of shape (1, M): numpy repeats it
  over the batch where it meets an (N, M) array (``X @ W + b``); ``c*ones(1, M)`` likewise;
* the column sums ``ones(1, N)*A`` are ``np.sum(A, axis=0, keepdims=True)``
  (`array_ops.ColSum`), the row sums ``A*ones(M, 1)`` the same along axis 1 (`array_ops.RowSum`);
* a matrix of ones in a sum or a Hadamard product is the number 1 (``ones - Y`` is
  ``1 - Y``);
* an activation applied entry by entry is the activation's own forward expression, and
  its derivative placeholder (relu') the derivative symnet derived from the activation's
  declaration (`symnet.matrix.explicit.concrete`), at the arrays of its arguments: elementwise
  arithmetic, whose kinks stage 2 (`stable.py`) turns into comparisons.

Each lowering also computes the numpy shape its code gives (a broadcast row is one row
high), so an output that would not have the shape of its matrix is refused, naming the
declaration, rather than written.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.codegen.array_ops import ColSum, MatProd, RowSum, Transposed
from symnet.codegen.errors import CodegenError
from symnet.declare.elementwise import Elementwise
from symnet.matrix.explicit import concrete
from symnet.matrix.text import text

#: the letters that name an activation's arguments, as `symnet derive` shows them
LETTERS = "ABCDEFPQRSTUV"
#: the numpy shape of a number (a matrix of ones or zeros): it broadcasts to any shape
SCALAR = None


def _broadcast(name: str, shapes) -> tuple | None:
    """numpy's broadcast of 2-d shapes (SCALAR for none)."""
    result = SCALAR
    for shape in shapes:
        if shape is SCALAR:
            continue
        if result is SCALAR:
            result = shape
            continue
        dims = []
        for mine, theirs in zip(result, shape, strict=True):
            if mine != theirs and 1 not in (mine, theirs):
                raise CodegenError(name, f"shapes {result} and {shape} do not broadcast")
            dims.append(theirs if mine == 1 else mine)
        result = tuple(dims)
    return result


class ArrayForm:
    """Lowers the matrix expressions of one declaration; `symbols` maps each MatrixSymbol
    (and each named subexpression) to the sympy Symbol of its array in the code."""

    def __init__(self, name: str, symbols: dict):
        self.name, self.symbols = name, symbols

    def fail(self, problem: str):
        raise CodegenError(self.name, problem)

    def __call__(self, expr, what: str) -> sp.Expr:
        """The array form of `expr`, an output of the code named `what`."""
        array, shape = self.lower(expr)
        if shape != tuple(expr.shape):
            shown = "a number" if shape is SCALAR else f"shape {shape}"
            self.fail(f"{what} = {text(expr)} would be computed as {shown}, not "
                      f"{tuple(expr.shape)}: a broadcast row or a matrix of ones stands "
                      f"alone; symnet lowers ones(N, 1)*b inside a sum such as X*W + "
                      f"ones(N, 1)*b")
        return array

    def lower(self, expr) -> tuple[sp.Expr, tuple | None]:
        """(array expression, its numpy shape)."""
        if expr in self.symbols:
            return self.symbols[expr], tuple(expr.shape)
        if isinstance(expr, (sp.OneMatrix, sp.ZeroMatrix)):
            return sp.Integer(isinstance(expr, sp.OneMatrix)), SCALAR
        for kind, lowering in self._handlers():
            if isinstance(expr, kind):
                return lowering(expr)
        return self.fail(f"cannot write {text(expr)} ({type(expr).__name__}) as numpy")

    def _handlers(self):
        return ((sp.MatMul, self._product), (sp.MatAdd, self._sum),
                (sp.HadamardProduct, self._hadamard), (sp.HadamardPower, self._power),
                (sp.Transpose, self._transpose), (ElementwiseApplyFunction, self._entrywise),
                (Elementwise, self._entrywise))

    def _operands(self, matrices) -> tuple[list, tuple | None]:
        lowered = [self.lower(m) for m in matrices]
        return [a for a, _ in lowered], _broadcast(self.name, [s for _, s in lowered])

    def _sum(self, expr):
        arrays, shape = self._operands(expr.args)
        return sp.Add(*arrays), shape

    def _hadamard(self, expr):
        arrays, shape = self._operands(expr.args)
        return sp.Mul(*arrays), shape

    def _power(self, expr):
        base, shape = self.lower(expr.base)
        return base ** expr.exp, shape

    def _transpose(self, expr):
        array, shape = self.lower(expr.arg)
        return (array, SCALAR) if shape is SCALAR else (Transposed(array), shape[::-1])

    def _entrywise(self, expr):
        """An activation (or a lambda) entry by entry: its formula at the arrays."""
        function = expr.function
        matrices = [expr.expr] if isinstance(expr, ElementwiseApplyFunction) else expr.matrices
        arrays, shape = self._operands(matrices)
        body = concrete(function.expr)
        return body.xreplace(dict(zip(function.variables, arrays, strict=True))), shape

    # --- products ----------------------------------------------------------------------

    def _product(self, expr):
        scale = sp.Mul(*[a for a in expr.args if not getattr(a, "is_Matrix", False)])
        matrices = [a for a in expr.args if getattr(a, "is_Matrix", False)]
        array, shape = self._ones_product(matrices)
        return scale * array, shape

    def _ones_product(self, matrices):
        """A product whose first or last factor may be a matrix of ones: ones(r, n)*A sums
        A's n rows (ones(1, N)*A, the column sums) and repeats the sum r times, which
        numpy's broadcasting does where the result meets r rows (ones(N, 1)*b is b);
        A*ones(n, c) likewise along the columns."""
        first, last = matrices[0], matrices[-1]
        if len(matrices) > 1 and isinstance(first, sp.OneMatrix):
            inner, shape = self._ones_product(matrices[1:])
            return (inner if first.shape[1] == 1 else ColSum(inner)), (1, shape[1])
        if len(matrices) > 1 and isinstance(last, sp.OneMatrix):
            inner, shape = self._ones_product(matrices[:-1])
            return (inner if last.shape[0] == 1 else RowSum(inner)), (shape[0], 1)
        return self._matrix_product(matrices)

    def _matrix_product(self, matrices):
        arrays = []
        for matrix in matrices:
            array, shape = self.lower(matrix)
            if shape != tuple(matrix.shape):
                self.fail(f"in the product {text(sp.MatMul(*matrices))}, the factor "
                          f"{text(matrix)} would be lowered with shape {shape}, not "
                          f"{tuple(matrix.shape)}")
            arrays.append(array)
        product = arrays[0]
        for array in arrays[1:]:
            product = MatProd(product, array)
        return product, (matrices[0].shape[0], matrices[-1].shape[1])


# --- naming --------------------------------------------------------------------------------


def activation_arguments(forward, taken: set) -> dict:
    """{subexpression: MatrixSymbol naming it} for each argument of an activation in the
    forward that is not a plain matrix, and each activation that is not the whole
    forward, innermost first, lettered A, B, ... as `symnet derive` shows them
    (maxout(A, B) with A = X*W1 + ones(N, 1)*b1; B = relu(A) in relu(X*W)*V)."""
    found = []

    def visit(node):
        for arg in node.args:
            visit(arg)
        if isinstance(node, (ElementwiseApplyFunction, Elementwise)):
            inputs = [node.expr] if isinstance(node, ElementwiseApplyFunction) else node.matrices
            found.extend(a for a in dict.fromkeys(inputs)
                         if not isinstance(a, sp.MatrixSymbol) and a not in found)
            if node != forward and node not in found:
                found.append(node)

    visit(forward)
    letters = [c for c in LETTERS if c not in taken]
    letters += [f"U{n}" for n in range(1, len(found) + 1) if f"U{n}" not in taken]
    return {a: sp.MatrixSymbol(letter, *a.shape) for a, letter in zip(found, letters,
                                                                       strict=False)}


def definitions(names: dict) -> dict:
    """{name: its expression in terms of the other names} (B = relu(A), not relu(X*W))."""
    return {symbol: value.xreplace({v: s for v, s in names.items() if v != value})
            for value, symbol in names.items()}
