"""derive() computes each declaration's derivation once per process, and the shortcuts that
make deriving fast give the forms the slow routes give."""

import sympy as sp

from symnet.algebra import collapse_indexed
from symnet.declare.scalar import Activation
from symnet.derive import derive, forget_derivations, sum_deltas

x = sp.Symbol("x", real=True)
i, k, t = (sp.Symbol(n, integer=True) for n in "ikt")
C = sp.Symbol("C", integer=True, positive=True)
s, W = sp.IndexedBase("s", real=True), sp.IndexedBase("W", real=True)


def test_a_declaration_is_derived_once_and_an_equal_new_one_afresh():
    decl = Activation("cube", x ** 3, [x])
    first = derive(decl)
    assert derive(decl) is first
    twin = Activation("cube", x ** 3, [x])
    assert derive(twin) is not first and derive(twin).derivatives == first.derivatives
    forget_derivations()
    assert derive(decl) is not first and derive(decl).derivatives == first.derivatives


def test_sum_deltas_takes_each_delta_term_out_of_the_sum_as_collapse_indexed_would():
    body = (s[i] - W[i]) ** 2 * sp.KroneckerDelta(i, k) + sp.exp(s[i]) + \
        sp.KroneckerDelta(i, t) * sp.KroneckerDelta(i, k)
    total = sp.Sum(body, (i, 0, C - 1))
    fast = sum_deltas(total, {k, t}, C)
    kept = sp.exp(s[i]) + sp.KroneckerDelta(i, t) * sp.KroneckerDelta(i, k)
    assert fast == sp.expand((s[k] - W[k]) ** 2) + sp.Sum(kept, (i, 0, C - 1))
    assert collapse_indexed(fast, {k, t}) == collapse_indexed(total, {k, t})


def test_sum_deltas_leaves_sums_it_cannot_take_exactly():
    other_range = sp.Sum(s[i] * sp.KroneckerDelta(i, k), (i, 1, C - 1))
    not_a_position = sp.Sum(s[i] * sp.KroneckerDelta(i, t), (i, 0, C - 1))
    j = sp.Symbol("j", integer=True)
    inner = sp.Sum(sp.KroneckerDelta(i, t) * sp.Sum(W[j] * sp.KroneckerDelta(i, k),
                                                     (j, 0, C - 1)), (i, 0, C - 1))
    for total in (other_range, not_a_position, inner):
        assert sum_deltas(total, {k}, C) == total
