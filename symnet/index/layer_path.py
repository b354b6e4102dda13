"""One derivation path for layers: a matrix layer derived through the index path.

`symnet.matrix.vjp.derive_layer` asks here first: the layer's forward is translated to
index form (`from_matrix`), each input's VJP is derived entry by entry by
`symnet.index.derive` (the engine tensor layers use), and brought back to matrix form
(`to_matrix`) for the page, the code and the networks. Where the translation or the way
back is impossible, the answer says why and the caller derives by sympy's matrix
calculus, as before; sympy's matrix calculus stays as a cross-check in
`symnet.verify.matrix`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from symnet.declare.layer import Layer, output_symbol
from symnet.errors import DerivationError
from symnet.index.derive import vjp
from symnet.index.from_matrix import Translated, TranslationError, translate, translator
from symnet.index.to_matrix import NoMatrixForm, as_matrix
from symnet.timeout import within

INDEX_SECONDS = 20.0


@dataclass(frozen=True)
class IndexPath:
    """A matrix layer's VJPs by the index path."""

    translated: Translated | None
    #: input matrix -> its VJP in matrix form; inputs whose way back failed are missing
    vjps: dict
    #: input matrix -> its VJP entry by entry (at the input's declared entry)
    entries: dict
    #: input matrix -> why the index path gives no matrix VJP for it
    why_not: dict


@cache
def index_path(layer: Layer) -> IndexPath:
    try:
        translated = translate(layer)
    except TranslationError as exc:
        return IndexPath(None, {}, {}, {m: exc.problem for m in layer.inputs})
    vjps, entries, why_not = {}, {}, {}
    indexed, output = translated.layer, output_symbol(layer)
    for matrix in layer.inputs:
        entry = translated.entries[matrix]
        try:
            derived = within(INDEX_SECONDS, lambda e=entry: vjp(indexed, e, tidy=False), None)
        except DerivationError as exc:
            why_not[matrix] = exc.problem
            continue
        if derived is None:
            why_not[matrix] = f"the index path took longer than {INDEX_SECONDS:g} s"
            continue
        entries[matrix] = derived
        try:
            back = as_matrix(entries[matrix], entry, matrix, translated.matrices,
                             translated.ranges)
        except NoMatrixForm as exc:
            why_not[matrix] = f"no matrix form for dL/d{entry} = {entries[matrix]}: {exc}"
            continue
        # the index path may write the VJP through the output Y (softmax); the matrix
        # pipeline finds the output itself (`reusing_output`)
        vjps[matrix] = back.xreplace({output: layer.forward})
    return IndexPath(translated, vjps, entries, why_not)


def matrix_entry(layer: Layer, expr, matrix) -> sp.Expr:
    """A matrix expression in the layer's matrices at `matrix`'s declared entry (for the
    proof for every size); raises TranslationError where it has no index form."""
    path = index_path(layer)
    if path.translated is None:
        raise TranslationError(layer.name, "the layer has no index form")
    words = translator(layer)
    return words.at(expr, words.entries[matrix])
