"""A two-array contraction that is one BLAS product, as text (arrays.py prints it): which
ones are (they sum indices of both arrays and batch none), np.tensordot's call for one, and
the product written out as a person writes it, the arrays reshaped to matrices (TensorDot,
numpy's only: np.tensordot does the same behind about 10 us of Python at 64 x 100)."""

from __future__ import annotations

import sympy as sp


class TensorDot(sp.Function):
    """A two-array contraction that is one BLAS product (it sums indices of both arrays and
    batches none): TensorDot(spec, sizes, A, B), sizes the extent of each of the spec's
    letters in their order of first use. numpy's only: written out as the matrix product
    of the two arrays reshaped to matrices, as a person writes it (np.tensordot does the
    same behind about 10 us of Python at 64 x 100, a tenth of a bilinear forward)."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


def is_blas(spec: str) -> bool:
    """Whether a two-operand einsum is a BLAS product (np.tensordot): it sums indices of
    both operands and batches none (an index of both operands and of the result)."""
    (left, right), result = spec.split("->")[0].split(","), spec.split("->")[1]
    summed = (set(left) | set(right)) - set(result)
    return bool(summed) and summed <= set(left) & set(right) \
        and not (set(left) & set(right) & set(result))


def tensordot_text(spec: str, a: str, b: str) -> str:
    """np.tensordot(a, b, axes=...) for a two-operand einsum spec, transposed to the
    spec's result where tensordot's order (a's kept axes, then b's) differs: a BLAS
    product without np.einsum's parsing (about 40 us a call at 64 x 100)."""
    (left, right), result = spec.split("->")[0].split(","), spec.split("->")[1]
    summed = [c for c in left if c not in result]
    axes = f"([{', '.join(str(left.index(c)) for c in summed)}], " \
           f"[{', '.join(str(right.index(c)) for c in summed)}])"
    natural = [c for c in left if c in result] + [c for c in right if c in result]
    order = [natural.index(c) for c in result]
    text = f"np.tensordot({a}, {b}, axes={axes})"
    if order == sorted(order):
        return text
    return text + (".T" if len(order) == 2 else f".transpose({', '.join(map(str, order))})")


def matrix_product(spec: str, extents: dict, a: str, b: str) -> str:
    """A @ B for a two-operand spec that is one BLAS product: each array as a matrix (its
    kept axes by the summed ones; transposed, then reshaped, where it is not one), the
    product reshaped to the kept axes and transposed to the spec's result where it must
    be; the operands swapped where that makes the product come out in the result's order
    (dX1 = V @ W', not (W' @ V.T).T)."""
    (left, right), result = spec.split("->")[0].split(","), spec.split("->")[1]
    kept_a = [c for c in left if c in result]
    kept_b = [c for c in right if c in result]
    if kept_b + kept_a == list(result) and kept_a + kept_b != list(result):
        (a, left, kept_a), (b, right, kept_b) = (b, right, kept_b), (a, left, kept_a)
    summed = [c for c in left if c not in result]
    text = f"{_as_matrix(a, left, kept_a, summed, extents)} @ " \
           f"{_as_matrix(b, right, summed, kept_b, extents)}"
    kept = kept_a + kept_b
    if len(kept_a) != 1 or len(kept_b) != 1:
        text = f"({text}).reshape({', '.join(extents[c] for c in kept)})"
    order = [kept.index(c) for c in result]
    if order == sorted(order):
        return text
    return text + (".T" if len(order) == 2 else f".transpose({', '.join(map(str, order))})")


def _as_matrix(name: str, letters: str, rows: list, columns: list, extents: dict) -> str:
    """An array as the matrix of its `rows` axes by its `columns` axes."""
    wanted = rows + columns

    def extent(group):
        return "*".join(extents[c] for c in group)
    if list(letters) == columns + rows:          # a transposed view: BLAS reads it as is
        if len(rows) == 1 and len(columns) == 1:
            return f"{name}.T"
        return f"{name}.reshape({extent(columns)}, {extent(rows)}).T"
    if list(letters) != wanted:
        order = ", ".join(str(letters.index(c)) for c in wanted)
        name = f"{name}.transpose({order})"
    if len(rows) == 1 and len(columns) == 1:
        return name
    return f"{name}.reshape({extent(rows)}, {extent(columns)})"
