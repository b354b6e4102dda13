"""Whole networks, swept over the network registry: dL/dW by matrix calculus proved equal
to the chain of the layers' VJPs and to scalar calculus on the total loss; the lecture's
networks L07, L08, L09, L11, L12 and L15."""

from dataclasses import replace
from functools import cache

import numpy as np
import pytest
import sympy as sp

from symnet.catalog.layers import NETWORKS
from symnet.declare.layer import size
from symnet.declare.network import Network
from symnet.declare.scalar import Gradient
from symnet.matrix.explicit import entry_symbol, instantiate
from symnet.matrix.network_derive import CUT, WHOLE, derive_network
from symnet.matrix.text import text
from symnet.symbols import lam
from symnet.verify import PROBED, PROVED, REFUTED
from symnet.verify.matrix import check_network

NAMES = list(NETWORKS)
N = size("N")


@cache
def verdicts_of(name: str) -> tuple:
    return tuple(check_network(NETWORKS[name]))


def verdict(name: str, start: str):
    (found,) = [v for v in verdicts_of(name) if v.claim.startswith(start)]
    return found


def weight(network: Network, name: str) -> sp.MatrixSymbol:
    (found,) = [w for w in network.weights if str(w) == name]
    return found


# --- the registry, swept -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_network_verdict_is_proved_or_probed(name):
    verdicts = verdicts_of(name)
    assert verdicts
    for v in verdicts:
        assert v.status in (PROVED, PROBED), str(v)


@pytest.mark.parametrize("name", NAMES)
def test_matrix_calculus_is_proved_equal_to_the_chain_of_the_layers_vjps(name):
    network = NETWORKS[name]
    chained = [v for v in verdicts_of(name) if "the chain of the layers' VJPs" in v.claim]
    assert len(chained) == len(network.weights)
    assert all(v.status == PROVED for v in chained), [str(v) for v in chained]


@pytest.mark.parametrize("name", NAMES)
def test_every_weight_gradient_is_proved_against_scalar_calculus(name):
    network = NETWORKS[name]
    against = [v for v in verdicts_of(name) if "against scalar calculus" in v.detail]
    assert len(against) == len(network.weights)
    assert all(v.status == PROVED for v in against), [str(v) for v in against]


@pytest.mark.parametrize("name", NAMES)
def test_every_gradient_has_the_shape_of_its_weight(name):
    derivation = derive_network(NETWORKS[name])
    for matrix, gradient in derivation.gradients.items():
        assert gradient.shape == matrix.shape
        assert derivation.chain[matrix].shape == matrix.shape


def test_a_planted_wrong_chain_is_refuted(monkeypatch):
    """A chain that forgets relu' (a wrong backprop) is told apart from matrix calculus."""
    network = NETWORKS["two_layer_relu"]
    right = derive_network(network)
    W1, W2 = network.weights
    X, G = network.input, network.upstream
    wrong = replace(right, chain={**right.chain, W1: X.T * G * W2.T})
    monkeypatch.setattr("symnet.verify.matrix.derive_network", lambda n: wrong)
    (found,) = [v for v in check_network(network) if v.claim.startswith("dL/dW1: matrix")]
    assert found.status == REFUTED and found.counterexample


# --- L07, L08, L09 ---------------------------------------------------------------------------


def test_L07_two_layer_network_and_its_gradients():
    network = NETWORKS["two_layer_relu"]
    W1, W2 = network.weights
    D, H, C = size("D"), size("H"), size("C")
    assert (network.input.shape, W1.shape, W2.shape) == ((N, D), (D, H), (H, C))
    derivation = derive_network(network)
    assert text(derivation.gradients[W1]) == "X.T*((G*W2.T) .* relu'(X*W1))"
    assert text(derivation.gradients[W2]) == "relu(X*W1).T*G"
    assert {derivation.routes[W1], derivation.routes[W2]} == {WHOLE}
    for label in ("L07 f = W2 max(0, W1 x)", "L07 dL/dW1", "L07 dL/dW2"):
        assert verdict("two_layer_relu", label).status == PROVED


def test_L08_three_layer_network_is_derived_where_sympy_alone_fails():
    """sympy 1.14 cannot differentiate relu(relu(X W1) W2) W3 by W1 at once; the chain rule
    at the outer relu gets there, and the result is proved against scalar calculus."""
    network = NETWORKS["three_layer_relu"]
    W1, W2, W3 = network.weights
    derivation = derive_network(network)
    assert derivation.routes[W1] == CUT and derivation.routes[W3] == WHOLE
    assert text(derivation.gradients[W1]) == \
        "X.T*((((G*W3.T) .* relu'(relu(X*W1)*W2))*W2.T) .* relu'(X*W1))"
    assert verdict("three_layer_relu", "L08 f = W3 max(0, W2 max(0, W1 x))").status == PROVED
    assert verdict("three_layer_relu", "dL/dW1 = ").status == PROVED


def test_L09_without_an_activation_the_network_is_one_linear_map():
    network = NETWORKS["two_layer_linear"]
    W1, W2 = network.weights
    assert derive_network(network).linear == (W1 * W2, None)
    assert verdict("two_layer_linear", "L09 no activation").status == PROVED
    assert verdict("two_layer_linear", "L09 in the lecture's orientation W3 = W2 W1").status \
        == PROVED
    assert derive_network(NETWORKS["two_layer_relu"]).linear is None


# --- L11: the forward pass with sigmoids and biases -----------------------------------------------


def test_L11_three_layer_sigmoid_network_has_the_lecture_shapes():
    network = NETWORKS["three_layer_sigmoid"]
    shapes = {str(name): value.shape for name, value in network.outputs.items()}
    assert shapes == {"h1": (N, 4), "h2": (N, 4), "out": (N, 1)}
    assert network.input.shape == (N, 3)
    assert verdict("three_layer_sigmoid", "L11").status == PROVED


def test_L11_forward_equals_the_lecture_numpy_code():
    """The lecture's column-vector code for one sample x (3x1) against the batch-first
    network at N = 1 with the transposed weights."""
    network = NETWORKS["three_layer_sigmoid"]
    rng = np.random.default_rng(11)
    W1, b1, W2, b2, W3, b3 = (rng.standard_normal(s) for s in
                              ((4, 3), (4, 1), (4, 4), (4, 1), (1, 4), (1, 1)))
    x = rng.standard_normal((3, 1))

    def f(z):
        return 1.0 / (1.0 + np.exp(-z))

    h1 = f(np.dot(W1, x) + b1)
    h2 = f(np.dot(W2, h1) + b2)
    lecture_out = np.dot(W3, h2) + b3
    ours = dict(zip(network.weights, (W1.T, b1.T, W2.T, b2.T, W3.T, b3.T), strict=True))
    ours[network.input] = x.T
    entries = {entry_symbol(m, i, j): float(v[i, j])
               for m, v in ours.items() for i in range(v.shape[0]) for j in range(v.shape[1])}
    value = instantiate(network.forward, {N: 1}).xreplace(entries)
    assert float(value[0, 0]) == pytest.approx(float(lecture_out[0, 0]), rel=1e-12)


# --- L12: the network in 20 lines --------------------------------------------------------------


def test_L12_hand_gradients_are_proved():
    for label in ("L12 grad_w2 = h^T grad_y_pred", "L12 grad_h = grad_y_pred w2^T",
                  "L12 grad_w1 = x^T (grad_h * h * (1 - h))"):
        assert verdict("twenty_line_net", label).status == PROVED


def test_L12_gradients_at_the_lecture_sizes():
    """N, D_in, H, D_out = 64, 1000, 100, 10: grad_w1 is 1000 x 100, grad_w2 100 x 10."""
    network = NETWORKS["twenty_line_net"]
    sizes = dict(zip((N, size("D_in"), size("H"), size("D_out")), (64, 1000, 100, 10),
                     strict=True))
    derivation = derive_network(network)
    shapes = {str(w): tuple(d.xreplace(sizes) for d in g.shape)
              for w, g in derivation.gradients.items()}
    assert shapes == {"w1": (1000, 100), "w2": (100, 10)}
    assert "sum_n squared_error" in _page("twenty_line_net")


def test_L12_a_hand_gradient_without_the_sigmoid_factor_is_refuted():
    network = NETWORKS["twenty_line_net"]
    w1 = weight(network, "w1")
    x, (h, _) = network.input, list(network.outputs)
    grad_y_pred, w2 = network.upstream, weight(network, "w2")
    typo = Network("twenty_line_typo", input=x, stages=network.stages, loss=network.loss,
                   target=network.target, reduction="sum", upstream=grad_y_pred,
                   hand=[Gradient(x.T * sp.HadamardProduct(grad_y_pred * w2.T, h), wrt=w1,
                                  label="grad_w1 = x^T (grad_h * h)")])
    (found,) = [v for v in check_network(typo) if v.claim == "grad_w1 = x^T (grad_h * h)"]
    assert found.status == REFUTED and found.counterexample


# --- L15: the total loss with the SVM and the softmax loss ----------------------------------------


@pytest.mark.parametrize("name", ["two_layer_svm", "two_layer_softmax_ce"])
def test_L15_total_loss_gradients_are_derived_and_proved(name):
    network = NETWORKS[name]
    W1, W2 = network.weights
    derivation = derive_network(network)
    assert derivation.penalties == {W1: 2 * lam * W1, W2: 2 * lam * W2}
    assert derivation.scale == 1 / N
    assert text(derivation.gradients[W1]) == "X.T*((G*W2.T) .* relu'(X*W1)) + 2*lambda*W1"
    assert verdict(name, "L15 dL/dW1").status == PROVED
    assert verdict(name, "L15 dL/dW2").status == PROVED
    totals = [v for v in verdicts_of(name) if "on the total loss" in v.detail]
    assert len(totals) == 2 and all(v.status == PROVED for v in totals)


def test_L15_the_page_shows_the_mean_loss_and_both_penalties():
    page = _page("two_layer_svm")
    assert "L = 1/N sum_n svm(S[n, :], t[n]) + l2(W1) + l2(W2)" in page
    assert "l2(W1) = lambda*sum(W1.^2)" in page
    assert "dL/dW2 = relu(X*W1).T*G + 2*lambda*W2" in page


def _page(name: str) -> str:
    from symnet import display
    from symnet.derive import derive

    return "\n".join(display.render_text(display.describe(derive(NETWORKS[name]))))


# --- sympy's name-dependent transposition ----------------------------------------------------


def test_an_upstream_named_after_the_weights_still_gives_the_right_gradient():
    """sympy 1.14 transposes relu'(X W1) in d/dW1 trace(Z^T relu(X W1) W2) when Z's name
    sorts after W2's; symnet differentiates with a stand-in for the upstream and rejects
    any result whose shapes do not fit, so the gradient is right and proved."""
    base = NETWORKS["two_layer_relu"]
    Z = sp.MatrixSymbol("Z", *base.upstream.shape)
    renamed = Network("two_layer_z", input=base.input, stages=base.stages, upstream=Z)
    W1, _ = renamed.weights
    assert text(derive_network(renamed).gradients[W1]) == "X.T*((Z*W2.T) .* relu'(X*W1))"
    assert all(v.status == PROVED for v in check_network(renamed))
