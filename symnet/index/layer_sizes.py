"""A matrix layer's claims proved for every size, through its index form (issue 15).

A matrix layer's verdicts are proved with explicit sizes (N = 2, D = 3, M = 2) against
scalar calculus; where the layer has an index form (`symnet.index.layer_path`), each VJP
is also proved for every size the way a tensor layer's is (`symnet.index.check`): the
matrix VJP written entry by entry at the input's indices, against the index path's own
VJP (or a hand derivation, written the same way), the difference brought to 0 with the
sizes symbolic. Activation placeholders stay symbols on both sides (relu'(U) is relu'(U)),
so a hand derivation that writes the derivative out ([U > 0]) is left to the explicit
sizes.
"""

from __future__ import annotations

import sympy as sp

# as a module: symnet.index.check imports the verify stage, whose package imports
# symnet.verify.matrix, which imports this module (whichever is imported first)
import symnet.index.check as index_check
from symnet.declare.layer import Layer
from symnet.index.from_matrix import TranslationError
from symnet.index.layer_path import index_path, matrix_entry
from symnet.timeout import within

#: the sizes a verdict proved this way holds for (as symnet.index.check says it)
SYMBOLIC = "symbolic"
PROOF_SECONDS = 2.0


def holds_for_every_size(layer: Layer, matrix, vjp, claimed=None) -> bool:
    """Whether dL/d matrix = vjp (= claimed, when given) for every size of the layer."""
    path = index_path(layer)
    if path.translated is None or matrix not in path.entries:
        return False
    try:
        left = matrix_entry(layer, vjp, matrix)
        right = path.entries[matrix] if claimed is None else \
            matrix_entry(layer, claimed, matrix)
    except TranslationError:
        return False
    if _functions(left) != _functions(right):
        # relu'(U) against [U > 0]: equal only through the activation's own derivation,
        # which the explicit sizes see and this proof does not (it would only time out)
        return False
    return zero_within(path.translated.layer, left, right)


def zero_within(indexed, left, right) -> bool:
    """symnet.index.check's proof for every size, under a shorter bound: every claim here
    was already proved at explicit sizes, so a proof that does not come quickly only
    costs time (a chain of products whose sums come out in another order)."""
    difference = index_check.written_out(indexed, left) - index_check.written_out(indexed,
                                                                                  right)

    def attempt() -> bool:
        rest = index_check.reduced(indexed, difference)
        return sp.expand(rest) == 0 or sp.simplify(index_check.atoms_held(rest)) == 0

    return within(PROOF_SECONDS, attempt, False)


def _functions(expr) -> set:
    return {type(f) for f in expr.atoms(sp.Function)}
