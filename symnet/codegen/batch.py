"""Index notation -> whole numpy arrays, the batch first.

A loss is declared per sample over a score vector s[i] of length C; its generated code
works on a batch: s is an (N, C) array, the batch on axis 0 and the classes on axis 1.
Every index that ranges over the classes (a summation index, the gradient's free index
k) is axis 1, so

* ``s[k]`` and ``s[j]`` inside ``Sum(..., (j, 0, C - 1))`` are the whole array ``s``;
* ``s[t]`` for a class-index target t is each row's entry, an (N, 1) array;
* ``KroneckerDelta(k, t)`` is the (N, C) one-hot mask of t;
* ``Sum(f, (j, 0, C - 1))`` is ``np.sum(f, axis=1, keepdims=True)``;
* ``LogSumExp(s, C)`` and ``Softmax(s, C, k)`` use the row max shifted out, computed
  once: where the max cancels (``s[i] - logsumexp(s)``) the code works on the shifted
  scores directly.

A regulariser's weight vector W[i] is the whole weight array, of any shape, and its
sums run over every entry. The result is an expression over array symbols plus named
intermediate arrays (`nodes`), ready for CSE and printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symnet.codegen.array_ops import (
    ClassCount,
    OneHot,
    RowMax,
    RowSum,
    TakeAlong,
    TotalSum,
)
from symnet.codegen.errors import CodegenError
from symnet.declare.scalar import Loss, Regularizer
from symnet.primitives import LogSumExp, Softmax, in_softmax_terms
from symnet.target_kinds import ARRAY_KINDS, CLASS_INDEX, ONE_HOT


@dataclass
class Lowering:
    """The state of lowering one declaration: the named arrays made so far."""

    decl: Loss
    taken: set
    nodes: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.decl.name

    def fail(self, problem: str):
        raise CodegenError(self.name, problem)

    def node(self, name: str, definition: sp.Expr) -> sp.Symbol:
        """The array named `name` (made unique) that holds `definition`, made once."""
        for symbol, existing in self.nodes.items():
            if existing == definition:
                return symbol
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        symbol = sp.Symbol(name, real=True)
        self.nodes[symbol] = definition
        return symbol

    # --- the arrays ----------------------------------------------------------------------

    def array(self, base) -> sp.Symbol:
        return sp.Symbol(str(base.label if isinstance(base, sp.IndexedBase) else base),
                         real=True)

    @property
    def scores(self) -> sp.Symbol:
        return self.array(self.decl.scores)

    def entrywise(self, expr: sp.Expr) -> bool:
        """Whether expr has the shape of the score array (it varies along every entry),
        rather than one value per row or per batch."""
        if isinstance(expr, (RowSum, TotalSum, RowMax, TakeAlong)):
            return False
        if isinstance(expr, OneHot):
            return True
        if isinstance(expr, sp.Symbol):
            if expr in self.nodes:
                return self.entrywise(self.nodes[expr])
            decl = self.decl
            vectors = [decl.scores] + ([decl.target] if decl.target_kind in ARRAY_KINDS
                                       else [])
            return expr in {self.array(v) for v in vectors}
        return any(self.entrywise(a) for a in expr.args)

    def row_max(self) -> sp.Symbol:
        return self.node(f"{self.scores}_max", RowMax(self.scores))

    def shifted(self) -> sp.Symbol:
        return self.node("shifted", self.scores - self.row_max())

    def log_norm(self) -> sp.Symbol:
        return self.node("log_z", sp.log(RowSum(sp.exp(self.shifted()))))

    def probs(self) -> sp.Symbol:
        return self.node("probs", sp.exp(self.shifted() - self.log_norm()))


# --- index expressions -> array expressions ----------------------------------------------

SHIFTED = sp.IndexedBase("shifted", real=True)
ROW_MAX, LOG_NORM = sp.Dummy("row_max", real=True), sp.Dummy("log_z", real=True)


def shift_out_max(expr: sp.Expr, decl: Loss) -> sp.Expr:
    """s[i] -> shifted[i] + max and logsumexp(s) -> max + log_z, where the max cancels."""
    if not expr.has(LogSumExp, Softmax):
        return expr
    shifted = expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == decl.scores,
                           lambda e: SHIFTED[e.indices] + ROW_MAX)
    shifted = shifted.replace(lambda e: isinstance(e, LogSumExp), lambda e: ROW_MAX + LOG_NORM)
    return expr if shifted.has(ROW_MAX) else shifted


def _position(lowering: Lowering, index, live: frozenset, what: str):
    """'row' for an index on the class axis, 'target' for the class-index target."""
    decl = lowering.decl
    if index in live:
        return "row"
    if decl.target_kind == CLASS_INDEX and index == decl.target:
        return "target"
    lowering.fail(f"{what}: the index {index} is neither summed over nor the gradient's "
                  f"index {decl.index}; symnet lowers entries at a summed index, at "
                  f"{decl.index} or at the class-index target")


def _entry(lowering: Lowering, e: sp.Indexed, live) -> sp.Expr:
    if len(e.indices) != 1:
        lowering.fail(f"{e} has {len(e.indices)} indices; a loss's vectors have one")
    if e.base == SHIFTED:
        array = lowering.shifted()
    elif e.base in (lowering.decl.scores, lowering.decl.target):
        array = lowering.array(e.base)
    else:
        lowering.fail(f"{e.base} is not this declaration's score, weight or target vector")
    if _position(lowering, e.indices[0], live, str(e)) == "row":
        return array
    return lowering.node(f"{array}_{lowering.decl.target}",
                         TakeAlong(array, lowering.array(lowering.decl.target)))


def _delta(lowering: Lowering, e: sp.KroneckerDelta, live) -> sp.Expr:
    places = [_position(lowering, a, live, str(e)) for a in e.args]
    if sorted(places) != ["row", "target"]:
        lowering.fail(f"{e} compares two class indices; it should have been summed away")
    target = lowering.array(lowering.decl.target)
    return lowering.node(f"{ONE_HOT}_{target}", OneHot(target, lowering.scores))


def _sum(lowering: Lowering, e: sp.Sum, live) -> sp.Expr:
    decl = lowering.decl
    if len(e.limits) != 1:
        lowering.fail(f"{e} sums over several indices at once; symnet lowers one class "
                      f"axis, not a C x C table")
    index, lower, upper = e.limits[0]
    if lower != 0 or upper != decl.size - 1:
        lowering.fail(f"{e} runs over {lower}..{upper}; symnet lowers sums over all "
                      f"{decl.size} entries (0..{decl.size - 1})")
    coupled = sorted((e.function.free_symbols & live) - {index}, key=str)
    if coupled:
        lowering.fail(f"the sum over {index} in {e} also depends on {coupled[0]}: that "
                      f"needs a C x C intermediate (a Jacobian), which symnet does not build")
    reduce = TotalSum if isinstance(decl, Regularizer) else RowSum
    return reduce(to_arrays(lowering, e.function, frozenset({index})))


def to_arrays(lowering: Lowering, expr: sp.Expr, live: frozenset) -> sp.Expr:
    """The array form of an index-form expression; `live` are the class-axis indices."""
    decl = lowering.decl
    if isinstance(expr, sp.Indexed):
        return _entry(lowering, expr, live)
    if isinstance(expr, sp.KroneckerDelta):
        return _delta(lowering, expr, live)
    if isinstance(expr, sp.Sum):
        return _sum(lowering, expr, live)
    if expr == ROW_MAX:
        return lowering.row_max()
    if expr == LOG_NORM:
        return lowering.log_norm()
    if isinstance(expr, LogSumExp):
        return lowering.row_max() + lowering.log_norm()
    if isinstance(expr, Softmax):
        if _position(lowering, expr.position, live, str(expr)) == "row":
            return lowering.probs()
        target = lowering.array(decl.target)
        return lowering.node(f"probs_{target}", TakeAlong(lowering.probs(), target))
    if expr == decl.size:
        return ClassCount(lowering.scores)
    if isinstance(expr, sp.Symbol) and expr.is_integer and expr != decl.target:
        lowering.fail(f"the index {expr} stands alone outside an entry")
    if not expr.args or isinstance(expr, sp.IndexedBase):
        return lowering.array(expr) if isinstance(expr, sp.IndexedBase) else expr
    arguments = [to_arrays(lowering, a, live) for a in expr.args]
    if expr.is_Add or expr.is_Mul:   # keep the derivation's grouping: 2*(s - y), not 2*s - 2*y
        return expr.func(*arguments, evaluate=False)
    return expr.func(*arguments)


def batched(lowering: Lowering, expr: sp.Expr, free_index=None) -> sp.Expr:
    """A per-sample loss expression (with the gradient's free index, if given) as arrays."""
    decl = lowering.decl
    if decl.is_vector:
        expr = in_softmax_terms(expr, decl.scores, decl.size)
        expr = shift_out_max(expr, decl)
    live = frozenset({free_index}) if free_index is not None else frozenset()
    return to_arrays(lowering, expr, live)
