"""The operations on whole arrays a lowered expression uses (row sums, take-along, matrix
products, the stable logistic and softplus): the vocabulary of lowered expressions, whole
numpy arrays instead of index notation.

After lowering, a symbol stands for a whole array (the batch first) and arithmetic is
numpy's elementwise arithmetic with broadcasting; the few operations that are not
elementwise are the sympy Functions below, each printed by one `_print_X` method of
`symnet.codegen.printer.NumpyPrinter`. None of them is ever differentiated: they exist
only between lowering and printing.
"""

from __future__ import annotations

import re

import sympy as sp

from symnet import primitives
from symnet.primitives import TABLE
from symnet.stable_rows import StableRow


class _ArrayOp(sp.Function):
    """An array operation kept opaque to sympy's algebra (no evaluation, no expansion)."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class RowSum(_ArrayOp):
    """Sum over the class axis of an (N, C) array, keeping it: (N, 1)."""

    nargs = 1


class TotalSum(_ArrayOp):
    """Sum of every entry of an array: a scalar."""

    nargs = 1


class RowMax(_ArrayOp):
    """Max over the class axis of an (N, C) array, keeping it: (N, 1)."""

    nargs = 1


class TakeAlong(_ArrayOp):
    """Each row's entry at that row's index: ``array[n, index[n]]`` as an (N, 1) array."""

    nargs = 2


class OneHot(_ArrayOp):
    """The (N, C) mask that is 1 at each row's index and 0 elsewhere, in the dtype of
    `like`, an (N, C) array."""

    nargs = 2


class OnesLike(_ArrayOp):
    """An array of ones with the shape and dtype of its argument."""

    nargs = 1


class SavedMask(_ArrayOp):
    """A boolean array saved by a forward (``x_positive = x > 0``, 1 byte an entry where x
    takes 4 or 8), read as 0/1 in the dtype of `like`."""

    nargs = 2


class ClassCount(_ArrayOp):
    """The number of classes C of an (N, C) array."""

    nargs = 1


class StableForm(_ArrayOp):
    """A row of the table of stable primitives (symnet.primitives.TABLE) as an array
    operation: lowering writes it, the printer spells it as its row says and puts the row's
    comment above it. It is not the declaration's class (symnet.primitives.Softplus): that
    one is differentiated and reasons with sympy's assumptions, this one is opaque."""

    row: StableRow

    def spelled(self) -> sp.Expr:
        """The row's stable form of the arguments, with array forms for primitives."""
        return as_array_forms(self.row.stable(*self.args))

    def ufunc_call(self):
        """(numpy ufunc, operands) where the spelling is one call of the arguments and
        numbers (np.logaddexp(0, u)), else None."""
        call = re.fullmatch(r"np\.(\w+)\(([^()]*)\)", self.row.spelling["numpy"])
        if call is None:
            return None
        operands = [self.args[int(a[1:-1])] if a.startswith("{") else sp.Integer(a)
                    for a in call[2].split(", ")]
        return call[1], tuple(operands)


class Logistic(StableForm):
    """1 / (1 + exp(-z)), printed so that exp never overflows."""

    nargs = 1
    row = TABLE["sigmoid"]
    is_positive = True


class Softplus(StableForm):
    """log(1 + exp(u)), printed with np.logaddexp so that exp never overflows."""

    nargs = 1
    row = TABLE["softplus"]


class Expm1(StableForm):
    """exp(z) - 1, accurate near z = 0."""

    nargs = 1
    row = TABLE["expm1"]


class LogOrZero(StableForm):
    """log(t) where t != 0 and 0 where t = 0: the factor of a term t*log(t), which is then
    0 at t = 0 (its limit, the usual 0 log 0 = 0, scipy's xlogy) and not 0*(-inf) = NaN."""

    nargs = 1
    row = TABLE["log_or_zero"]


#: the declaration's primitives -> their array forms
ARRAY_FORMS = {primitives.Softplus: Softplus, primitives.Logistic: Logistic}


def as_array_forms(expr: sp.Expr) -> sp.Expr:
    """The declaration's primitives (symnet.primitives) in expr as their array forms."""
    return expr.replace(lambda e: type(e) in ARRAY_FORMS, lambda e: ARRAY_FORMS[type(e)](*e.args))


# --- matrix operations (layers) ------------------------------------------------------------
# The precedence sits just below multiplication, so the printer puts a matrix product in
# parentheses inside an elementwise product: dY*(X @ W), never dY*X @ W.


class MatProd(_ArrayOp):
    """The matrix product A @ B of two 2-d arrays."""

    nargs = 2
    precedence = 49


class Transposed(_ArrayOp):
    """The transpose A.T of a 2-d array."""

    nargs = 1


class ColSum(_ArrayOp):
    """Sum over the batch axis of an (N, M) array, keeping it: (1, M)."""

    nargs = 1


REDUCTIONS = (RowSum, TotalSum, RowMax)
#: operations whose entries mix several entries (or places) of their arguments: a step
#: outside one cannot be moved inside, nor the other way round
MIXING = (*REDUCTIONS, ColSum, MatProd, Transposed)
