"""Tensor layers in index notation (issue 15, symnet.index): declarations checked at once,
VJPs derived through the named statistics to the form a person writes, proved for every
size, and lowered to numpy reductions; batch norm end to end."""

from __future__ import annotations

import pytest
import sympy as sp

from symnet.catalog.layers import TENSOR_LAYERS, batchnorm
from symnet.derive import derive
from symnet.errors import DeclarationError
from symnet.index import IndexLayer, indices, over, size, tensors

N, D = size("N"), size("D")
n, d, k = indices("n d k")
X, Y, G, gamma, beta, mu, W = tensors("X Y G gamma beta mu W")


# --- 1. declarations -----------------------------------------------------------------------


def declare(forward, **options):
    options.setdefault("inputs", (X[n, d], gamma[d]))
    options.setdefault("ranges", {n: N, d: D})
    return IndexLayer("bad", options.pop("output", Y[n, d]), forward, **options)


@pytest.mark.parametrize("forward, options, words", [
    (over(X[n, d], n, N), {}, ["index n", "free on the left and summed on the right"]),
    (X[n, d] - mu[d], {"statistics": {mu[d]: over(X[n, d], d, D) / D}},
     ["statistic mu[d]", "index d", "free on the left and summed on the right"]),
    (X[n, d] * gamma[k], {}, ["index k", "free on the right but not on the left"]),
    (X[n, d] - mu[d], {"statistics": {mu[d]: over(X[k, d], k, D) / N}},
     ["X[k, d]", "index k", "size D", "axis of size N"]),
    (X[n, d] - mu[d], {"statistics": {mu[d]: over(X[n, d], n, D) / N}},
     ["index n", "runs over N values in one use and D in another"]),
    (X[n, d] + over(X[k, d], k, N) + over(gamma[k], k, D), {},
     ["index k", "runs over N values in one use and D in another"]),
    (X[n, d] * W[d], {}, ["W is used", "no declared rank"]),
    (X[n, d] * gamma[n, d], {}, ["gamma has rank 1", "gamma[n, d]"]),
    (X[n, d], {"ranges": {n: N}}, ["index d", "has no range"]),
])
def test_a_malformed_declaration_is_one_line_naming_the_problem(forward, options, words):
    with pytest.raises(DeclarationError) as caught:
        declare(forward, **options)
    message = str(caught.value)
    assert "\n" not in message and "'bad'" in message
    for word in words:
        assert word in message, message


def test_a_well_formed_declaration_of_any_rank_passes():
    W3 = sp.IndexedBase("W3", real=True)
    e, j = indices("e j")
    K, E = size("K"), size("E")
    X2 = sp.IndexedBase("X2", real=True)
    layer = IndexLayer("bilinear_like", Y[n, j],
                       over(over(X[n, d] * W3[j, d, e] * X2[n, e], d, D), e, E),
                       inputs=(X[n, d], W3[j, d, e], X2[n, e]),
                       ranges={n: N, d: D, e: E, j: K})
    assert layer.shape_of(W3[j, d, e]) == (K, D, E)


# --- 2. derivation -------------------------------------------------------------------------


def test_batchnorm_dx_is_the_compact_form_in_the_named_statistics():
    sigma, x_hat = sp.IndexedBase("sigma", real=True), sp.IndexedBase("x_hat", real=True)
    vjps = derive(batchnorm).vjps
    j = sp.Symbol("j", integer=True)
    column = sp.Sum(G[j, d], (j, 0, N - 1))
    weighted = sp.Sum(G[j, d] * x_hat[j, d], (j, 0, N - 1))
    compact = gamma[d] / sigma[d] * (G[n, d] - column / N - x_hat[n, d] * weighted / N)
    assert sp.expand(vjps[X] - compact) == 0
    assert sp.expand(vjps[gamma] - weighted) == 0
    assert vjps[beta] == column
    assert not any(v.has(sp.KroneckerDelta, sp.Piecewise) for v in vjps.values())


def test_the_catalog_holds_batchnorm_as_a_tensor_layer():
    from symnet.catalog import CATALOG

    assert CATALOG["batchnorm"] is batchnorm is TENSOR_LAYERS["batchnorm"]
    assert batchnorm.kind == "tensor layer"
