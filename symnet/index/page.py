"""A tensor layer's derivation as a page: the forward, the statistics it names, each VJP
with its shape, the parameters.

A VJP is shown the way a person writes it where it can be: as arrays, a sum over the
batch index n as colsum(...) (each column's sum), over the last index as rowsum(...),
the entry-by-entry product of two full arrays as `.*`, and 1/N taken out
(batch norm's dX = gamma (N G - colsum(G) - x_hat colsum(G .* x_hat)) / (N sigma)).
A VJP that is one sum of a product of entries (a contraction) is shown as the product it
is: a matrix product where it is one (G*W.T), else numpy's einsum with the indices named
(bilinear's dX1 = einsum('ni,ne,ide->nd', G, X2, W)), each summed index named as its
place in a declared entry names it. Any other VJP is shown entry by entry, its sums as
sums. The rows are notation Rows, which symnet.display renders (it registers
describe_index).
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


# --- a VJP as a contraction ----------------------------------------------------------------


class Einsum(sp.Function):
    """Einsum(spec, *operands): the product of the operands' entries summed over every index
    that is not the result's (after ->), as numpy's einsum writes it."""

    def _sympystr(self, printer):
        spec, *operands = self.args
        return f"einsum('{spec}', {', '.join(printer._print(o) for o in operands)})"

    def _latex(self, printer):
        spec, *operands = self.args
        inputs, result = str(spec).split("->")
        shown = ", ".join(printer._print(o) for o in operands)
        return rf"\operatorname{{einsum}}_{{{inputs} \to {result}}}\left({shown}\right)"


def _product_of_entries(expr: sp.Expr) -> tuple[sp.Expr, list, dict] | None:
    """(number, entries, {summed index: its extent}) where expr is a number times a
    (nested) sum of a product of entries, each index summed once; else None."""
    coefficient, entries, summed = sp.S.One, [], {}

    def walk(e) -> bool:
        nonlocal coefficient
        if isinstance(e, sp.Sum):
            if any(v in summed for v, _, _ in e.limits):    # a name bound twice: not one sum
                return False
            summed.update({v: upper - lower + 1 for v, lower, upper in e.limits})
            return walk(e.function)
        if e.is_Mul:
            return all(walk(a) for a in e.args)
        if isinstance(e, sp.Indexed):
            entries.append(e)
            return True
        if e.is_number:
            coefficient *= e
            return True
        return False

    if not walk(expr) or len(entries) < 2 or not summed:
        return None
    return coefficient, entries, summed


def _role_names(layer, entries: list, summed: dict, free: tuple) -> dict:
    """Each summed index -> the index its place in a declared entry has (bilinear's j in
    G[n, j] -> i), where that is one index, not free and not taken by another."""
    declared, taken, names = layer.declared(), set(free), {}
    for variable in summed:
        roles = {declared[e.base].indices[k] for e in entries if e.base in declared
                 for k, i in enumerate(e.indices) if i == variable}
        role = roles.pop() if len(roles) == 1 else variable
        names[variable] = role if role not in taken and role not in summed else variable
        taken.add(names[variable])
    return names


def _matrix_product(layer, entries: list, summed: dict, free: tuple):
    """A @ B (transposed as needed) where two entries of two indices share the one summed
    index and hold one free index each; else None."""
    if len(entries) != 2 or len(summed) != 1 or len(free) != 2 \
            or any(len(e.indices) != 2 for e in entries):
        return None
    (k,), (row, col) = summed, free
    left = next((e for e in entries if row in e.indices and k in e.indices), None)
    right = next((e for e in entries if col in e.indices and k in e.indices), None)
    if left is None or right is None or left is right:
        return None
    extent = {row: layer.ranges[row], col: layer.ranges[col], k: summed[k]}

    def matrix(entry, first, second):
        a, b = entry.indices
        m = sp.MatrixSymbol(str(entry.base), extent[a], extent[b])
        return m if (a, b) == (first, second) else m.T

    return sp.MatMul(matrix(left, row, k), matrix(right, k, col))


def as_contraction(layer, expr: sp.Expr, entry: sp.Indexed) -> sp.Expr | None:
    """expr (the VJP of `entry`) as a matrix product or an einsum, or None where it is not
    one sum of a product of entries or an index is not one letter (einsum's spec)."""
    found = _product_of_entries(expr)
    free = tuple(entry.indices)
    if found is None:
        return None
    coefficient, entries, summed = found
    if set().union(*(set(e.indices) for e in entries)) != set(free) | set(summed):
        return None         # an index the result should have, summed away, or a constant
    product = _matrix_product(layer, entries, summed, free)
    if product is not None:
        return coefficient * product
    names = _role_names(layer, entries, summed, free)
    letters = [[str(names.get(i, i)) for i in e.indices] for e in (*entries, entry)]
    if any(len(letter) != 1 for word in letters for letter in word):
        return None
    spec = ",".join("".join(word) for word in letters[:-1]) + "->" + "".join(letters[-1])
    return coefficient * Einsum(sp.Symbol(spec), *(sp.Symbol(str(e.base)) for e in entries))


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
        if arrays is None:
            arrays = as_contraction(layer, value, entry)
            if arrays is not None and arrays.has(Einsum) and Einsum not in explained:
                explained.add(Einsum)
                note += "; einsum: the sum over each index not after ->"
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
