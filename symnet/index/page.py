"""A tensor layer's derivation as a page: the forward, the statistics it names, each VJP
with its shape, the parameters.

A VJP is shown the way a person writes it where it can be: as arrays, a sum over the
batch index n as colsum(...) (each column's sum), over the last index as rowsum(...),
the entry-by-entry product of two full arrays as `.*`, and 1/N taken out
(batch norm's dX = gamma (N G - colsum(G) - x_hat colsum(G .* x_hat)) / (N sigma)).
A VJP that is not such an expression (a contraction with a rank-3 weight) is shown entry
by entry, its sums as sums. The rows are notation Rows, which symnet.display renders (it
registers describe_index).
"""

from __future__ import annotations

import sympy as sp

from symnet.notation import Row


class colsum(sp.Function):  # noqa: N801 (shown as written: colsum(G))
    """The sum of an array over its first index (the batch): one row."""


class rowsum(sp.Function):  # noqa: N801
    """The sum of an array over its last index: one column."""


class Hadamard(sp.Function):
    """The entry-by-entry product of full arrays: G .* x_hat."""

    def _sympystr(self, printer):
        return " .* ".join(printer.parenthesize(a, 50) for a in self.args)

    def _latex(self, printer):
        return r" \odot ".join(printer.parenthesize(a, 50) for a in self.args)


def shape_text(layer, entry: sp.Indexed) -> str:
    shape = layer.shape_of(entry)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


# --- a VJP as arrays --------------------------------------------------------------------------


class _NotArrays(Exception):
    """The expression has an entry or a sum that array notation cannot say."""


def as_arrays(layer, expr: sp.Expr) -> sp.Expr | None:
    """expr (entry by entry, in the output's indices) in array notation, or None."""
    out = tuple(layer.output.indices)
    if len(out) != 2:
        return None
    full = set()
    try:
        arrays = _arrays(layer, expr, out, full)
    except _NotArrays:
        return None
    return _hadamard(sp.together(arrays), full)


def _arrays(layer, e: sp.Expr, out: tuple, full: set) -> sp.Expr:
    if isinstance(e, sp.Indexed):
        if tuple(e.indices) == out:
            full.add(sp.Symbol(str(e.base)))
        elif len(e.indices) != 1 or e.indices[0] not in out:
            raise _NotArrays(e)
        return sp.Symbol(str(e.base))
    if isinstance(e, sp.Sum):
        return _reduced(layer, e, out, full)
    if not e.args:
        return e
    return e.func(*[_arrays(layer, a, out, full) for a in e.args])


def _reduced(layer, s: sp.Sum, out: tuple, full: set) -> sp.Expr:
    """A sum over one index as colsum or rowsum of its body in the output's indices."""
    if len(s.limits) != 1:
        raise _NotArrays(s)
    variable = s.limits[0][0]
    declared = layer.declared()
    roles = {declared[e.base].indices[e.indices.index(variable)]
             for e in s.function.atoms(sp.Indexed) if variable in e.indices}
    if len(roles) != 1:
        raise _NotArrays(s)
    (role,) = roles
    if role not in out or role in s.function.free_symbols:
        raise _NotArrays(s)
    body = _arrays(layer, s.function.xreplace({variable: role}), out, full)
    return (colsum if role == out[0] else rowsum)(body)


def _is_full(expr: sp.Expr, full: set) -> bool:
    outside = expr.replace(lambda e: isinstance(e, (colsum, rowsum)), lambda e: sp.S.One)
    return bool(outside.free_symbols & full)


def _hadamard(expr: sp.Expr, full: set) -> sp.Expr:
    """Each product of two or more full arrays written G .* x_hat."""
    if not expr.args:
        return expr
    args = [_hadamard(a, full) for a in expr.args]
    if not expr.is_Mul:
        return expr.func(*args)
    arrays = [a for a in args if _is_full(a, full)]
    if len(arrays) < 2:
        return expr.func(*args)
    return sp.Mul(Hadamard(*arrays), *(a for a in args if not _is_full(a, full)),
                  evaluate=False)


# --- the page ---------------------------------------------------------------------------------


def describe_index(derivation) -> list[Row]:
    layer = derivation.declaration
    eq = lambda a, b: sp.Eq(a, b, evaluate=False)  # noqa: E731
    rows = [Row("forward", eq(layer.output, layer.forward),
                f"{layer.output.base}: {shape_text(layer, layer.output)}")]
    invariant = getattr(derivation, "invariant", ())
    for entry, definition in layer.statistics.items():
        note = f"{shape_text(layer, entry)}, computed once in forward, cached"
        if entry in invariant:
            note = (f"{shape_text(layer, entry)}, computed once in forward; {layer.output.base} "
                    f"does not depend on it (d{layer.output.base}/d{entry.base} = 0, proved for "
                    f"every size), so the derivation holds it constant")
        rows.append(Row("statistic", eq(entry, definition), note))
    upstream = layer.upstream[layer.output.indices]
    explained = set()     # each of colsum and rowsum is said once, where it first shows
    for entry in layer.inputs:
        name = sp.Indexed(sp.IndexedBase(f"d{entry.base}"), *entry.indices)
        value = derivation.vjps[entry.base]
        note = f"{shape_text(layer, entry)}, the shape of {entry.base}"
        arrays = as_arrays(layer, value)
        if arrays is not None:
            name, value = sp.Symbol(f"d{entry.base}"), arrays
            for kind, index in zip((colsum, rowsum), layer.output.indices, strict=False):
                if arrays.has(kind) and kind not in explained:
                    explained.add(kind)
                    note += f"; {kind.__name__}: the sum over {index}"
        rows.append(Row("VJP", eq(name, value), note))
    for entry in layer.constants:
        rows.append(Row("constant", entry, f"{shape_text(layer, entry)}, data: no VJP"))
    rows.append(Row("upstream", eq(upstream, sp.Symbol(f"dL/d{layer.output}")),
                    f"{shape_text(layer, layer.output)}"))
    for symbol, default in layer.params.items():
        rows.append(Row("param", eq(symbol, default), "default"))
    return rows
