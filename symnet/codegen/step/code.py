"""Array statements -> in-place numpy lines for a training step, over reused buffers.

A training step runs many times on batches of one size, so its large arrays (the layers'
outputs and the gradients that flow back, N x H) live in a workspace allocated once and
written in place:

* a matrix product (plus a broadcast row: ``X @ W1 + b1``) is one gemm into its buffer,
  the row copied in first and the product added (``beta=1``);
* an elementwise statement whose outermost operation is a numpy ufunc writes with
  ``out=``; where one of its operands is not needed afterwards, into that operand's buffer
  (``dZ1 = np.multiply(dH1, mask, out=dH1)``);
* the array-valued operands of such a statement (sums, products, squares, comparisons)
  are computed first, one ufunc each, into scratch buffers of the workspace: a 0/1 step
  is the comparison itself, into a boolean buffer (``np.greater(Z1, 0, out=mask)``;
  numpy multiplies by it in the array's dtype), and ``1 - H1**2`` is ``np.square`` then
  ``np.subtract`` in one float buffer. A fresh temporary of N x H would cost the step an
  allocation, and above glibc's mmap threshold (128 KiB) page faults, at every call;
* anything else (``np.where``) is computed as usual, into a new array.

Pure functions of lowered (array-form) expressions; printing is `printer.py`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symnet.codegen.array_ops import Logistic, MatProd, StableForm, TotalSum, _ArrayOp
from symnet.codegen.layout import statement
from symnet.codegen.lower import why_lines
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
    booleans: set = field(default_factory=set)      # the buffers of masks (dtype bool)
    scratches: set = field(default_factory=set)     # buffers of intermediate arrays

    def of_ones(self, shape) -> str:
        """The name of a constant matrix of ones of `shape` (ones(1, N) for column sums)."""
        if shape not in self.ones:
            name = "ones" if not self.ones else f"ones{len(self.ones) + 1}"
            self.ones[shape] = name
        return self.ones[shape]

    def take(self, target: str, shape, free, prefer=None, boolean=False,
             scratch=False) -> str:
        """The buffer for `target`: the one holding `prefer` if that is free, else the
        first of its shape and kind whose occupant is in `free` or was released, else a
        new one named after it. Scratch buffers only ever hold intermediate arrays, so
        that a buffer's name says what it holds."""
        order = sorted(self.occupant, key=lambda name: self.occupant[name] != prefer)
        for name in order:
            if self.shapes[name] == shape and (name in self.booleans) == boolean \
                    and (name in self.scratches) == scratch \
                    and (self.occupant[name] is None or self.occupant[name] in free):
                self.occupant[name] = target
                return name
        self.shapes[target], self.occupant[target] = shape, target
        if boolean:
            self.booleans.add(target)
        if scratch:
            self.scratches.add(target)
        return target

    def scratch(self, shape, free, boolean: bool) -> str:
        """A buffer for an intermediate array, named for its role (mask, scratch)."""
        base = "mask" if boolean else "scratch"
        count = sum(1 for name in self.scratches if name.startswith(base))
        return self.take(base if count == 0 else f"{base}{count + 1}", shape, free,
                         boolean=boolean, scratch=True)

    def release(self, name: str) -> None:
        """`name` holds nothing that is read later: the next scratch may take it."""
        self.occupant[name] = None


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


def printed_ufunc_call(value: sp.Expr, names: dict, dtype_of: str):
    """(numpy function, its arguments text) where `value` prints as one call of a ufunc
    (np.maximum(0, Z1)) that `ufunc_form` does not take apart, else None."""
    call = _call(numpy_code(value, names, dtype_of))
    return call if call is not None and call[0] in UFUNCS else None


#: functions of one array that are one numpy ufunc of the same name
ONE_ARGUMENT = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh"}
#: comparisons write booleans: their buffers are masks
COMPARISONS = ("greater", "greater_equal")


def ufunc_form(value: sp.Expr):
    """(numpy ufunc, its operands as expressions) computing `value` in one call, or None:
    a step's comparison, a sum or difference, a product, a square."""
    if isinstance(value, (Mask, sp.Heaviside)) and len(value.args) == 2:
        strict = isinstance(step_relation(*value.args), sp.StrictGreaterThan)
        return COMPARISONS[0 if strict else 1], (value.args[0], sp.Integer(0))
    if isinstance(value, Logistic):
        return ufunc_form(value.spelled())
    if isinstance(value, StableForm):   # its row's spelling, where that is one ufunc call
        return value.ufunc_call()
    if type(value) in ONE_ARGUMENT:
        return ONE_ARGUMENT[type(value)], value.args
    if value.is_Mul and len(value.args) == 2 and value.args[0] == -1:
        return "negative", value.args[1:]
    if value.is_Mul:
        return "multiply", _split(value)
    if value.is_Add:
        first, rest = _split(value)
        if rest.could_extract_minus_sign():
            return "subtract", (first, -rest)
        if first.could_extract_minus_sign():
            return "subtract", (rest, -first)
        return "add", (first, rest)
    if value.is_Pow and value.exp == 2:
        return "square", (value.base,)
    return None


def _argument(operand, names, dtype_of) -> str:
    """An operand as a call's argument; a mask alone needs no parentheses there."""
    text = numpy_code(operand, names, dtype_of)
    return text[1:-1] if isinstance(operand, Mask) else text


@dataclass
class Spill:
    """What computing a statement's operands into scratch buffers needs and produced."""

    shape: tuple                # the statement's shape: only operands of it are spilled
    shapes: dict                # array name -> shape
    names: dict
    dtype_of: str
    buffers: Buffers
    free: set                   # names whose arrays nothing reads any more
    lines: list = field(default_factory=list)

    def arguments(self, form) -> tuple[str, list]:
        """(the arguments text of the call `form`, the scratch buffers its operands took,
        to release once the call has read them)."""
        function, operands = form
        computed = [self.argument(o, function == "multiply") for o in operands]
        return ", ".join(text for text, _ in computed), [b for _, b in computed if b]

    def argument(self, operand, boolean_ok=True) -> tuple[str, str | None]:
        """(the operand's text in a call, the scratch buffer it was computed into); a
        comparison goes into a boolean buffer only where `boolean_ok` (a product's
        operand: numpy refuses to subtract booleans, and a float buffer takes 0/1 too)."""
        arrays = [s.name for s in operand.free_symbols if s.name in self.shapes]
        form = None if isinstance(operand, sp.Symbol) or not arrays else ufunc_form(operand)
        if form is None or any(self.shapes[a] != self.shape for a in arrays):
            return _argument(operand, self.names, self.dtype_of), None
        texts, used = self.arguments(form)
        for name in used:
            self.buffers.release(name)   # their one reader is the call below
        boolean = form[0] in COMPARISONS and boolean_ok
        buffer = self.buffers.scratch(self.shape, self.free, boolean)
        self.lines.append(f"np.{form[0]}({texts}, out={buffer})")
        return buffer, buffer


def _split(value: sp.Expr):
    """(first operand, the rest) of a product or sum: a plain array first (dH1*mask)."""
    args = sorted(value.args, key=lambda a: (not isinstance(a, sp.Symbol), a.is_number,
                                             sp.default_sort_key(a)))
    return args[0], value.func(*args[1:])


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


def _collected(value: sp.Expr, shapes: dict) -> sp.Expr:
    """Mask arithmetic with each array factored out once: Z1*[Z1 > 0] + Z1*(1 - [Z1 > 0])/10
    is Z1*(9*[Z1 > 0]/10 + 1/10), one mask and three ufuncs on it instead of six."""
    if not value.has(sp.Heaviside) or value.has(MatProd):
        return value
    arrays = sorted((s for s in value.free_symbols if s.name in shapes), key=str)
    return sp.collect(sp.expand(value), arrays)


def in_place(numbered, shapes: dict, names: dict, dtype_of: str, last_read: dict,
             buffers: Buffers) -> list[str]:
    """Lines for (number, target, value) statements written into `buffers`; `last_read`
    maps an array's name to the number of the last statement of the step that reads it."""
    lines = []
    for number, target, value in numbered:
        value = boolean_masks(_collected(value, shapes))
        lines += why_lines(value)
        dead = {n for n, last in last_read.items() if last < number}
        if is_product(value):
            buffer = buffers.take(target, shapes[target], dead)
            lines += product_lines(target, buffer, value, names, dtype_of)
            continue
        form, used = ufunc_form(value), []
        if form is not None:
            spill = Spill(shapes[target], shapes, names, dtype_of, buffers, dead)
            texts, used = spill.arguments(form)
            lines += spill.lines
            call = form[0], texts
        elif (call := printed_ufunc_call(value, names, dtype_of)) is None:
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
        for name in used:
            buffers.release(name)
    return lines
