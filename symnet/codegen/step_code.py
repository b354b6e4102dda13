"""Array statements -> in-place numpy lines for a training step, over reused buffers.

A training step runs many times on batches of one size, so its large arrays (the layers'
outputs and the gradients that flow back, N x H) live in a workspace allocated once and
written in place:

* a matrix product (plus a broadcast row: ``X @ W1 + b1``) is one gemm into its buffer,
  the row copied in first and the product added (``beta=1``);
* an elementwise statement whose outermost operation is a numpy ufunc writes with
  ``out=``; where one of its operands is not needed afterwards, into that operand's buffer
  (``dZ1 = np.multiply(dH1, Z1 > 0, out=dH1)``);
* a 0/1 step multiplying an array is the boolean comparison itself (numpy multiplies by
  it in the array's dtype, without the float mask a separate array would need);
* anything else (``np.where``) is computed as usual, into a new array.

Pure functions of lowered (array-form) expressions; printing is `printer.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symnet.codegen.forms import MatProd, TotalSum, _ArrayOp
from symnet.codegen.layout import statement
from symnet.codegen.printer import numpy_code, step_relation

#: numpy functions the printer writes that are ufuncs (they take out=)
UFUNCS = ("exp", "log", "tanh", "maximum", "minimum", "abs", "sqrt", "expm1", "log1p",
          "logaddexp")


class Mask(_ArrayOp):
    """[u > 0] (or [u >= 0]) as a boolean array, inside a product with a float array."""

    nargs = 2

    def _numpycode(self, printer):
        return f"({printer._print(step_relation(*self.args))})"


class SumOfSquares(_ArrayOp):
    """sum(W**2): one dot product (the template's sum_of_squares), no squared copy of W."""

    nargs = 1

    def _numpycode(self, printer):
        return f"sum_of_squares({printer._print(self.args[0])})"


def boolean_masks(expr: sp.Expr) -> sp.Expr:
    """Heaviside(u) -> Mask(u) where it multiplies an array (a product of symbols)."""
    def rewrite(mul):
        if not any(isinstance(a, sp.Symbol) for a in mul.args):
            return mul
        return mul.func(*[Mask(*a.args) if isinstance(a, sp.Heaviside) and len(a.args) == 2
                          else a for a in mul.args])

    return expr.replace(lambda e: e.is_Mul and e.has(sp.Heaviside), rewrite)


def sums_of_squares(expr: sp.Expr) -> sp.Expr:
    return expr.replace(lambda e: isinstance(e, TotalSum) and e.args[0].is_Pow
                        and e.args[0].exp == 2 and isinstance(e.args[0].base, sp.Symbol),
                        lambda e: SumOfSquares(e.args[0].base))


# --- buffers ---------------------------------------------------------------------------------


@dataclass
class Buffers:
    """The workspace: each buffer's name, shape and current occupant, in creation order."""

    shapes: dict = field(default_factory=dict)      # buffer name -> shape (of a matrix)
    occupant: dict = field(default_factory=dict)    # buffer name -> the array in it now
    ones: dict = field(default_factory=dict)        # shape -> the name of a matrix of ones

    def of_ones(self, shape) -> str:
        """The name of a constant matrix of ones of `shape` (ones(1, N) for column sums)."""
        if shape not in self.ones:
            name = "ones" if not self.ones else f"ones{len(self.ones) + 1}"
            self.ones[shape] = name
        return self.ones[shape]

    def take(self, target: str, shape, free, prefer=None) -> str:
        """The buffer for `target`: the one holding `prefer` if that is free, else the
        first of its shape whose occupant is in `free`, else a new one named after it."""
        order = sorted(self.occupant, key=lambda name: self.occupant[name] != prefer)
        for name in order:
            if self.shapes[name] == shape and self.occupant[name] in free:
                self.occupant[name] = target
                return name
        self.shapes[target], self.occupant[target] = shape, target
        return target


def last_reads(numbered) -> dict:
    """name -> the number of the last of the (number, target, value) statements that
    reads it."""
    found = {}
    for number, _, value in numbered:
        for symbol in value.free_symbols:
            found[symbol.name] = max(number, found.get(symbol.name, number))
    return found


def is_product(value: sp.Expr) -> bool:
    """A matrix product, alone or plus terms without one (``X @ W1 + b1``)."""
    terms = sp.Add.make_args(value)
    products = [t for t in terms if isinstance(t, MatProd)]
    return len(products) == 1 and not any(t.has(MatProd) for t in terms if t not in products)


def _call(printed: str):
    """(function, arguments text) when `printed` is one call np.f(...), else None."""
    if not printed.startswith("np.") or not printed.endswith(")"):
        return None
    name, _, rest = printed[3:].partition("(")
    depth = 1
    for char in rest[:-1]:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return None
    return name, rest[:-1]


def ufunc_call(value: sp.Expr, names: dict, dtype_of: str):
    """(numpy function, its arguments text) computing `value` in one ufunc call, or None."""
    if value.is_Mul or value.is_Add:
        first, rest = _split(value)
        if value.is_Add and rest.could_extract_minus_sign():
                return "subtract", _arguments(first, -rest, names, dtype_of)
        return "multiply" if value.is_Mul else "add", _arguments(first, rest, names, dtype_of)
    call = _call(numpy_code(value, names, dtype_of))
    return call if call is not None and call[0] in UFUNCS else None


def _split(value: sp.Expr):
    """(first operand, the rest) of a product or sum: a plain array first (dH1*mask)."""
    args = sorted(value.args, key=lambda a: (not isinstance(a, sp.Symbol), a.is_number,
                                             sp.default_sort_key(a)))
    return args[0], value.func(*args[1:])


def _arguments(first, second, names, dtype_of) -> str:
    """Two arguments of a call; a mask alone needs no parentheses there."""
    shown = [numpy_code(a, names, dtype_of) for a in (first, second)]
    return ", ".join(t[1:-1] if isinstance(a, Mask) else t
                     for a, t in zip((first, second), shown, strict=True))


# --- lines -----------------------------------------------------------------------------------


def product_lines(target: str, buffer: str, value: sp.Expr, names: dict, dtype_of: str):
    """gemm into `buffer`, a row added by copying it in first: Z1 = X @ W1 + b1."""
    product = next(t for t in sp.Add.make_args(value) if isinstance(t, MatProd))
    rest = value - product
    a, b = (numpy_code(m, names, dtype_of) for m in product.args)
    lines = []
    if rest != 0:
        lines.append(f"np.copyto({buffer}, {numpy_code(rest, names, dtype_of)})")
    call = f"gemm({a}, {b}, {buffer}{', beta=1' if rest != 0 else ''})"
    lines.append(call if target == buffer else f"{target} = {call}")
    return lines


def elementwise_lines(target: str, buffer: str, call: tuple) -> list[str]:
    function, arguments = call
    text = f"np.{function}({arguments}, out={buffer})"
    return statement(target, text) if target != buffer else [text]


def in_place(numbered, shapes: dict, names: dict, dtype_of: str, last_read: dict,
             buffers: Buffers) -> list[str]:
    """Lines for (number, target, value) statements written into `buffers`; `last_read`
    maps an array's name to the number of the last statement of the step that reads it."""
    lines = []
    for number, target, value in numbered:
        value = boolean_masks(value)
        dead = {n for n, last in last_read.items() if last < number}
        if is_product(value):
            buffer = buffers.take(target, shapes[target], dead)
            lines += product_lines(target, buffer, value, names, dtype_of)
            continue
        call = ufunc_call(value, names, dtype_of)
        if call is None:
            lines += statement(target, numpy_code(value, names, dtype_of))
            continue
        operands = {s.name for s in value.free_symbols}
        dying = dead | {n for n in operands if last_read.get(n) == number}
        prefer = _split(value)[0] if value.is_Mul or value.is_Add else None
        buffer = buffers.take(target, shapes[target], dying,
                              prefer.name if isinstance(prefer, sp.Symbol) else None)
        if buffer != target and buffer in operands:
            lines.append(f"# {target} takes the place of {buffer}: nothing reads {buffer} after")
        lines += elementwise_lines(target, buffer, call)
    return lines
