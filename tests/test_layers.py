"""Layers at matrix level, swept over the layer registry: VJPs derived without a Jacobian
(L25), proved against scalar calculus entry by entry; the affine layer's L26 and the
elementwise ReLU example of L24."""

from dataclasses import replace
from functools import cache
from itertools import product

import pytest
import sympy as sp

from symnet.catalog import LAYER_REGISTRY
from symnet.catalog.layers import LAYERS, NETWORKS, affine
from symnet.declare.layer import Layer, size
from symnet.derive import derive
from symnet.matrix.explicit import entry_symbol, instantiate
from symnet.matrix.network_derive import derive_network
from symnet.matrix.text import text
from symnet.matrix.vjp import derive_layer, non_matrix_nodes
from symnet.verify import PROBED, PROVED, REFUTED
from symnet.verify.matrix import NO_JACOBIAN, check_layer

LAYER_NAMES = list(LAYERS)
ALL_NAMES = list(LAYER_REGISTRY)
N, D, M = size("N"), size("D"), size("M")


@cache
def verdicts_of(name: str) -> tuple:
    return tuple(check_layer(LAYERS[name]))


def backward_of(name: str) -> list:
    """Every derived matrix of an entry of the layer registry."""
    decl = LAYER_REGISTRY[name]
    if name in NETWORKS:
        derivation = derive_network(decl)
        return [*derivation.gradients.values(), *derivation.chain.values(),
                *derivation.intermediates.values()]
    derivation = derive_layer(decl)
    return [*derivation.vjps.values(), *(r for r in derivation.reusing.values() if r)]


def numeric(expr, sizes: dict, values: dict) -> sp.Matrix:
    """A matrix expression at explicit sizes with numbers for the entries of `values`."""
    explicit = instantiate(expr, sizes)
    entries = {entry_symbol(matrix, i, j): number
               for matrix, rows in values.items()
               for i, row in enumerate(rows) for j, number in enumerate(row)}
    return explicit.xreplace(entries)


# --- the registry, swept -----------------------------------------------------------------


def test_layer_registry_holds_affine_maxout_and_every_activation():
    from symnet.catalog import REGISTRY

    activations = [n for n, d in REGISTRY.items() if d.kind == "activation"]
    assert {"affine", "maxout_layer", *activations} <= set(LAYER_NAMES)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_every_layer_verdict_is_proved_or_probed(name):
    verdicts = verdicts_of(name)
    assert verdicts
    for verdict in verdicts:
        assert verdict.status in (PROVED, PROBED), str(verdict)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_every_vjp_is_proved_against_scalar_calculus(name):
    layer = LAYERS[name]
    against = [v for v in verdicts_of(name) if "against scalar calculus" in v.detail]
    assert len(against) == len(layer.inputs)
    assert all(v.status == PROVED for v in against), [str(v) for v in against]


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_every_vjp_has_the_shape_of_its_input(name):
    for matrix, vjp in derive_layer(LAYERS[name]).vjps.items():
        assert vjp.shape == matrix.shape, f"{name}: dL/d{matrix} = {text(vjp)}"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_L25_the_derived_backward_holds_no_object_of_rank_above_2(name):
    backward = backward_of(name)
    assert backward
    for expr in backward:
        assert non_matrix_nodes(expr) == [], f"{name}: {text(expr)}"
        for node in sp.preorder_traversal(expr):
            assert len(getattr(node, "shape", ())) <= 2


def test_L25_the_rank_check_sees_what_sympy_returns_for_a_bias_under_an_activation():
    """sympy's own derivative of a bias under an activation is an ArrayDiagonal; the check
    that keeps it out of a backward does see it."""
    H = size("H")
    X, W1, b1 = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol(
        "b1", 1, H)
    W2, G = sp.MatrixSymbol("W2", H, M), sp.MatrixSymbol("G", N, M)
    hidden = (X * W1 + sp.OneMatrix(N, 1) * b1).applyfunc(sp.Lambda(sp.Symbol("u"), sp.tanh(
        sp.Symbol("u"))))
    raw = sp.Trace(G.T * hidden * W2).diff(b1)
    assert non_matrix_nodes(raw) != []


def test_L25_the_no_jacobian_verdict_is_given_for_each_layer():
    for name in LAYER_NAMES:
        assert [v.status for v in verdicts_of(name) if v.claim == NO_JACOBIAN] == [PROVED]


# --- L26: the affine layer -------------------------------------------------------------------


def test_L26_affine_vjps_are_G_WT_and_XT_G_with_the_shapes_of_x_and_w():
    X, W, b = affine.inputs
    G = affine.upstream
    vjps = derive_layer(affine).vjps
    assert vjps[X] == G * W.T and vjps[X].shape == (N, D)
    assert vjps[W] == X.T * G and vjps[W].shape == (D, M)
    assert vjps[b] == sp.OneMatrix(1, N) * G and vjps[b].shape == (1, M)
    assert [text(vjps[m]) for m in (X, W, b)] == ["G*W.T", "X.T*G", "colsum(G)"]


def test_L26_the_hand_derivations_of_affine_are_proved():
    l26 = [v for v in verdicts_of("affine") if v.claim.startswith("L26")]
    assert len(l26) == 2 and all(v.status == PROVED for v in l26)


def test_L26_only_G_WT_makes_the_shapes_match():
    """Of the products of two of G, G^T, W, W^T, only G W^T is N x D (dL/dx), only X^T G
    of X, X^T, G, G^T is D x M (dL/dw): the only way to make the shapes match."""
    X, W, _ = affine.inputs
    G = affine.upstream

    def fitting(candidates, shape):
        found = []
        for left, right in product(candidates, repeat=2):
            if left.shape[1] == right.shape[0] and (left.shape[0], right.shape[1]) == shape:
                found.append(text(left * right))
        return found

    assert fitting([G, G.T, W, W.T], (N, D)) == ["G*W.T"]
    assert fitting([X, X.T, G, G.T], (D, M)) == ["X.T*G"]


# --- L24: the elementwise ReLU backward ---------------------------------------------------------


def test_L24_relu_backward_example():
    layer, derivation = LAYERS["relu"], derive_layer(LAYERS["relu"])
    (X,) = layer.inputs
    values = {X: [[1, -2, 3, -1]], layer.upstream: [[4, -1, 5, 9]]}
    sizes = {N: 1, M: 4}
    assert list(numeric(layer.forward, sizes, values)) == [1, 0, 3, 0]
    assert list(numeric(derivation.vjps[X], sizes, values)) == [4, 0, 5, 0]


def test_relu_layer_follows_the_kink_convention_of_its_declaration():
    """relu'(0) = 0 as declared, never sympy's Heaviside(0) = 1/2."""
    layer = LAYERS["relu"]
    (X,) = layer.inputs
    at_kink = numeric(derive_layer(layer).vjps[X], {N: 1, M: 1},
                      {X: [[0]], layer.upstream: [[7]]})
    assert list(at_kink) == [0]


def test_an_activation_derivative_comes_from_its_own_declaration():
    """The sigmoid layer's dL/dX is G .* sigmoid'(X), and sigmoid' written out is the
    derivative symnet derived for the declaration; the output-reusing form is proved."""
    layer = LAYERS["sigmoid"]
    (X,) = layer.inputs
    derivation = derive_layer(layer)
    assert text(derivation.vjps[X]) == "G .* sigmoid'(X)"
    assert text(derivation.reusing[X]) == "Y .* G .* (ones(N, M) - Y)"
    scalar = derive(layer.activation).derivatives[layer.activation.inputs[0]]
    explicit = instantiate(derivation.vjps[X], {N: 1, M: 1})[0]
    entry = entry_symbol(X, 0, 0)
    upstream = entry_symbol(layer.upstream, 0, 0)
    assert sp.simplify(explicit - upstream * scalar.subs(layer.activation.inputs[0], entry)) == 0
    reuses = [v for v in verdicts_of("sigmoid") if "reuses the output" in v.claim]
    assert [v.status for v in reuses] == [PROVED]


# --- a wrong derivation is caught ----------------------------------------------------------------


def test_a_planted_wrong_vjp_is_refuted_with_a_counterexample(monkeypatch):
    """If the derivation went wrong (a sympy bug, say), the check against scalar calculus
    refutes it: here dL/dW = X^T G is planted as 2 X^T G."""
    X, W, b = affine.inputs
    right = derive_layer(affine)
    wrong = replace(right, vjps={**right.vjps, W: 2 * X.T * affine.upstream})
    monkeypatch.setattr("symnet.verify.matrix.derive_layer", lambda layer: wrong)
    (verdict,) = [v for v in check_layer(affine) if v.claim.startswith("dL/dW")]
    assert verdict.status == REFUTED
    assert verdict.counterexample["lhs"] != verdict.counterexample["rhs"]
    assert "entry" in verdict.counterexample["point"]


def test_a_wrong_hand_derivation_of_a_layer_is_refuted():
    from symnet.declare.scalar import Gradient

    X, _, _ = affine.inputs
    G, W = affine.upstream, affine.inputs[1]
    typo = Layer("affine_typo", affine.forward, inputs=affine.inputs, upstream=G,
                 hand=[Gradient(-G * W.T, wrt=X, label="dL/dX = -G W^T")])
    (verdict,) = [v for v in check_layer(typo) if v.claim == "dL/dX = -G W^T"]
    assert verdict.status == REFUTED and verdict.counterexample


def test_a_column_sum_of_a_sum_or_a_hadamard_product_is_parenthesised_in_latex():
    from symnet.matrix.text import MatrixTexPrinter

    n, m = sp.symbols("N M", integer=True, positive=True)
    g, z = sp.MatrixSymbol("G", n, m), sp.MatrixSymbol("Z", n, m)
    ones, shown = sp.OneMatrix(1, n), MatrixTexPrinter().doprint
    assert shown(sp.MatMul(ones, sp.HadamardProduct(g, z))) == \
        r"\mathbf{1}^\top \left(G \circ Z\right)"
    assert shown(sp.MatMul(ones, sp.MatAdd(g, z))) == r"\mathbf{1}^\top \left(G + Z\right)"
    assert shown(sp.MatMul(ones, g)) == r"\mathbf{1}^\top G"
