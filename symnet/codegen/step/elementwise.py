"""An optimiser's entry-by-entry rules as in-place numpy lines over reused buffers.

A rule ``T <- c0*T + c1*A1 + c2*f(A2, ...)`` (T the target array, the A's arrays of its
shape, the c's scalars) is written as

* ``T *= c0`` where c0 is not 1 (one pass), nothing where it is;
* per term, its array part into a scratch buffer of T's shape, one ufunc at a time with
  ``out=`` (a plain array needs none), then ``axpy(A, T, c)``: T += c*A in one pass
  (BLAS's axpy with scipy; the scalar folded in, no c*A array).

A square root of a scalar times an array plus scalars, ``sqrt(v/c) + eps``, is written
``(sqrt(v) + eps*sqrt(c))/sqrt(c)`` (`scalar_out_of_roots`) and its 1/sqrt(c) joins the term's
scalar: the same number up to rounding, eps keeping its declared meaning, and one pass less.
Adam's ``P <- P - lr*(m/(1 - beta1^t))/(sqrt(v/(1 - beta2^t)) + eps)`` is thus four passes
over one buffer: sqrt(v), + eps*sqrt(1 - beta2^t), m divided by it, the axpy with
-lr*sqrt(1 - beta2^t)/(1 - beta1^t). Scalars (the bias corrections) are Python numbers
computed at each call that uses them, never arrays. A fresh temporary of a weight's size would
cost an allocation (and page faults above glibc's mmap threshold) at every step; here there
is none: a term's array goes into a scratch buffer, or into an array nothing reads after the
rule (`spent`: Adam's gradient dW1, squared in place for v's rule, then the buffer of P's).

Pure functions of expressions in array and scalar Symbols; printing is `printer.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from symnet.codegen.printer import numpy_code

#: sympy functions of one argument that are numpy ufuncs of this name
UNARY = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.sign: "sign", sp.Abs: "abs"}


@dataclass
class Elementwise:
    """Writes rules over arrays of one shape: `arrays` their names in the code, `scratch()`
    a free buffer of that shape (`release(name)` gives it back)."""

    arrays: set
    names: dict
    dtype_of: str
    scratch: Callable[[], str]
    release: Callable[[str], None]
    #: arrays of this shape that nothing reads after the rule being written: a term of the
    #: rule that reads one of them alone is computed into it, in place
    spent: set = field(default_factory=set)
    lines: list = field(default_factory=list)

    def code(self, expr) -> str:
        """A scalar's code; its square roots as **0.5 on Python floats: np.sqrt would make
        a float64 scalar, which numpy 2 (NEP 50) does not cast down to a float32 array's
        dtype before the ufunc, so the ufunc would compute in float64."""
        python_roots = expr.replace(
            lambda e: e.is_Pow and e.exp == sp.Rational(1, 2) and not self._array_symbols(e),
            lambda e: sp.Pow(e.base, sp.Float(0.5), evaluate=False))
        return numpy_code(python_roots, self.names, self.dtype_of)

    def _array_symbols(self, expr) -> list:
        return sorted((s for s in expr.free_symbols if s.name in self.arrays), key=str)

    def split(self, term) -> tuple[sp.Expr, sp.Expr]:
        """(scalar factor, array part) of a term."""
        arrays = self._array_symbols(term)
        if not arrays:
            return term, sp.Integer(1)
        return term.as_independent(*arrays, as_Add=False)

    def assign(self, target: str, value: sp.Expr) -> list[str]:
        """Lines that set the array `target` to `value` in place."""
        symbol = sp.Symbol(target, real=True)
        rearranged = scalar_out_of_roots(value, self.arrays)
        if rearranged != value:
            value = rearranged
            self.lines.append("# sqrt(v/c) + eps = (sqrt(v) + eps*sqrt(c))/sqrt(c): the scalars "
                              "out of the root,")
            self.lines.append("# exactly (eps keeps its meaning), one pass less than v/c first")
        keep, terms, constant = sp.Integer(0), [], sp.Integer(0)
        for term in sp.Add.make_args(value):
            scalar, array = self.split(term)
            if array == symbol:
                keep += scalar
            elif array == 1:
                constant += scalar
            else:
                terms.append((scalar, array))
        if any(symbol in array.free_symbols for _, array in terms):
            # the target inside a term: the whole value into a scratch buffer first
            buffer = self.scratch()
            self.compute(value, buffer)
            self.lines.append(f"np.copyto({target}, {buffer})")
            self.release(buffer)
            return self._taken()
        if keep == 0 and terms:
            scalar, array = terms.pop(0)
            self.compute(array, target)
            self._scale(target, scalar)
        elif keep == 0:
            self.lines.append(f"{target}.fill({self.code(constant)})")
            return self._taken()
        else:
            self._scale(target, keep)
        for number, (scalar, array) in enumerate(terms):
            later = set().union(*(a.free_symbols for _, a in terms[number + 1:]))
            self.accumulate(target, scalar, array, self._spent_in(array, later))
        if constant != 0:
            self.lines.append(f"np.add({target}, {self.code(constant)}, out={target})")
        return self._taken()

    def _taken(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines

    def _spent_in(self, array, later: set) -> str | None:
        """The spent array that `array` reads alone, where no later term reads it: `array`
        can be computed into it (dW1**2 into dW1), else None."""
        arrays = self._array_symbols(array)
        if len(arrays) == 1 and arrays[0].name in self.spent and arrays[0] not in later:
            return arrays[0].name
        return None

    def accumulate(self, target: str, scalar, array, into: str | None = None) -> None:
        """target += scalar*array, the array part computed into `into` (a spent array it
        reads alone) or a scratch buffer, unless it is a plain array."""
        if isinstance(array, sp.Symbol):
            self._axpy(array.name, target, scalar)
            return
        buffer = into or self.scratch()
        self.compute(array, buffer)
        self._axpy(buffer, target, scalar)
        if into is None:
            self.release(buffer)

    def _axpy(self, source: str, target: str, scalar) -> None:
        if scalar == 1:
            self.lines.append(f"np.add({target}, {source}, out={target})")
        elif scalar == -1:
            self.lines.append(f"np.subtract({target}, {source}, out={target})")
        else:
            self.lines.append(f"axpy({source}, {target}, {self.code(scalar)})")

    def _scale(self, target: str, scalar, source: str | None = None) -> None:
        """target = source*scalar (source: target itself), a reciprocal as a division."""
        source = source or target
        if scalar == 1:
            if source != target:
                self.lines.append(f"np.copyto({target}, {source})")
        elif scalar.is_Pow and scalar.exp == -1:
            self.lines.append(f"np.divide({source}, {self.code(scalar.base)}, out={target})")
        else:
            self.lines.append(f"np.multiply({source}, {self.code(scalar)}, out={target})")

    # --- an array expression into a buffer ------------------------------------------------

    def compute(self, expr: sp.Expr, out: str) -> None:
        """Lines that write the array expression `expr` into the buffer `out`."""
        if isinstance(expr, sp.Symbol):
            self.lines.append(f"np.copyto({out}, {expr.name})")
        elif expr.is_Mul:
            self._product(expr, out)
        elif expr.is_Add:
            scalar, arrays = expr.as_independent(*self._array_symbols(expr), as_Add=True)
            terms = [self.split(term) for term in sp.Add.make_args(arrays)]
            first_scalar, first = terms[0]
            self._scale(out, first_scalar, self._operand_into(first, out))
            for term_scalar, array in terms[1:]:
                self.accumulate(out, term_scalar, array)
            if scalar != 0:
                self.lines.append(f"np.add({out}, {self.code(scalar)}, out={out})")
        elif expr.is_Pow:
            self._power(expr, out)
        elif type(expr) in UNARY and len(expr.args) == 1:
            source = self._operand_into(expr.args[0], out)
            self.lines.append(f"np.{UNARY[type(expr)]}({source}, out={out})")
        else:   # no ufunc form: numpy computes it as usual, then it is copied in
            self.lines.append(f"np.copyto({out}, {self.code(expr)})")

    def _operand_into(self, expr, out: str) -> str:
        """The name of `expr`'s array: a plain array's own, else `out` after computing it
        there."""
        if isinstance(expr, sp.Symbol):
            return expr.name
        self.compute(expr, out)
        return out

    def _power(self, expr, out: str) -> None:
        base, exponent = expr.args
        source = self._operand_into(base, out)
        if exponent == 2:
            self.lines.append(f"np.square({source}, out={out})")
        elif exponent == sp.Rational(1, 2):
            self.lines.append(f"np.sqrt({source}, out={out})")
        elif exponent == -1:
            self.lines.append(f"np.divide(1, {source}, out={out})")
        else:
            self.lines.append(f"np.power({source}, {self.code(exponent)}, out={out})")

    def _product(self, expr, out: str) -> None:
        """A product of arrays and divisions by arrays, compound factors first (each needs
        `out` or a scratch buffer), then the plain arrays, then the scalar."""
        scalar, arrays = self.split(expr)
        factors = sp.Mul.make_args(arrays)
        divisors = [f.base ** -f.exp for f in factors if f.is_Pow and f.exp.is_negative]
        multipliers = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        compound_m = [f for f in multipliers if not isinstance(f, sp.Symbol)]
        compound_d = [d for d in divisors if not isinstance(d, sp.Symbol)]
        if compound_m:
            self.compute(compound_m[0], out)
            multipliers.remove(compound_m[0])
        elif compound_d:
            self.compute(compound_d[0], out)
            divisors.remove(compound_d[0])
            numerator = multipliers.pop(0).name if multipliers else "1"
            self.lines.append(f"np.divide({numerator}, {out}, out={out})")
        elif len(multipliers) >= 2:
            first, second = multipliers.pop(0), multipliers.pop(0)
            self.lines.append(f"np.multiply({first.name}, {second.name}, out={out})")
        elif multipliers:
            self._scale(out, scalar, multipliers.pop(0).name)
            scalar = sp.Integer(1)
        else:
            self.lines.append(f"np.divide(1, {divisors.pop(0).name}, out={out})")
        for factor, ufunc in [(m, "multiply") for m in multipliers] + \
                             [(d, "divide") for d in divisors]:
            self._apply(out, factor, ufunc)
        self._scale(out, scalar)

    def _apply(self, out: str, factor, ufunc: str) -> None:
        """out = out (ufunc) factor, a compound factor through a scratch buffer."""
        if isinstance(factor, sp.Symbol):
            self.lines.append(f"np.{ufunc}({out}, {factor.name}, out={out})")
            return
        buffer = self.scratch()
        self.compute(factor, buffer)
        self.lines.append(f"np.{ufunc}({out}, {buffer}, out={out})")
        self.release(buffer)


def scalar_out_of_roots(expr: sp.Expr, arrays: set) -> sp.Expr:
    """``sqrt(c*v) + e`` -> ``sqrt(c)*(sqrt(v) + e/sqrt(c))`` for c and e free of arrays and v
    one array (a Symbol named in `arrays`): the root's scalar joins the scalar factor of the
    term around it (Adam's bias correction into its learning rate), so that the array part
    is sqrt(v) + e', two passes instead of three. Exact in real arithmetic where c > 0 (Adam's
    1 - beta2^t); where c < 0 both forms are NaN. e/sqrt(c) is a Python number."""
    def parts(add):
        roots = [a for a in add.args if _root_of_scaled_array(a, arrays)]
        rest = add - roots[0] if len(roots) == 1 else None
        if rest is None or any(s.name in arrays for s in rest.free_symbols):
            return None
        return roots[0], rest

    def rewrite(add):
        found = parts(add)
        if found is None:
            return add
        root, rest = found
        scalar, array = _root_of_scaled_array(root, arrays)
        root_of_scalar = 1 / sp.sqrt(scalar.base) if scalar.is_Pow and scalar.exp == -1 \
            else sp.sqrt(scalar)
        return sp.Mul(root_of_scalar, sp.Add(sp.sqrt(array), rest / root_of_scalar),
                      evaluate=False)

    return expr.replace(lambda e: e.is_Add and parts(e) is not None, rewrite)


def _root_of_scaled_array(expr, arrays: set):
    """(c, v) where `expr` is sqrt(c*v), c free of arrays and not 1, v an array; else None."""
    if not (expr.is_Pow and expr.exp == sp.Rational(1, 2) and expr.base.is_Mul):
        return None
    found = [s for s in expr.base.free_symbols if s.name in arrays]
    if len(found) != 1:
        return None
    scalar, array = expr.base.as_independent(found[0], as_Add=False)
    return (scalar, array) if array == found[0] and scalar != 1 else None
