"""A tensor layer's derivation as a page: the forward, the statistics it names, each VJP
entry by entry with its shape, the parameters.

The rows are notation Rows, which symnet.display renders (it registers describe_index).
"""

from __future__ import annotations

import sympy as sp

from symnet.notation import Row


def shape_text(layer, entry: sp.Indexed) -> str:
    shape = layer.shape_of(entry)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def describe_index(derivation) -> list[Row]:
    layer = derivation.declaration
    eq = lambda a, b: sp.Eq(a, b, evaluate=False)  # noqa: E731
    rows = [Row("forward", eq(layer.output, layer.forward),
                f"{layer.output.base}: {shape_text(layer, layer.output)}")]
    for entry, definition in layer.statistics.items():
        rows.append(Row("statistic", eq(entry, definition),
                        f"{shape_text(layer, entry)}, computed once in forward, cached"))
    upstream = layer.upstream[layer.output.indices]
    for entry in layer.inputs:
        name = sp.Indexed(sp.IndexedBase(f"d{entry.base}"), *entry.indices)
        rows.append(Row("VJP", eq(name, derivation.vjps[entry.base]),
                        f"{shape_text(layer, entry)}, the shape of {entry.base}"))
    rows.append(Row("upstream", eq(upstream, sp.Symbol(f"dL/d{layer.output}")),
                    f"{shape_text(layer, layer.output)}"))
    for symbol, default in layer.params.items():
        rows.append(Row("param", eq(symbol, default), "default"))
    return rows

