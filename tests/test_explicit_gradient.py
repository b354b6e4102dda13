"""The ground truth of the layer and network checks, d total / d entry by scalar calculus:
the chain rule over the total's expression graph with sympy's local derivatives must give
what `sp.diff` gives on the whole total, kinks, cases and losses included."""

from __future__ import annotations

import pytest
import sympy as sp

from symnet.catalog import CATALOG
from symnet.declare.layer import activation_layer
from symnet.errors import DerivationError
from symnet.matrix.explicit import _ChainRule, instantiate, scalar_gradient
from symnet.matrix.network_derive import derive_network
from symnet.verify import REFUTED
from symnet.verify.entrywise import probe_entries
from symnet.verify.matrix import _network_sizes, check_layer, explicit_loss, explicit_sizes


def _layer_total(layer):
    sizes = explicit_sizes(layer.forward, layer.upstream)
    upstream, output = instantiate(layer.upstream, sizes), instantiate(layer.forward, sizes)
    return sum(g * y for g, y in zip(upstream, output, strict=True)), \
        [instantiate(m, sizes) for m in layer.inputs]


def _network_total(network):
    sizes = _network_sizes(network)
    _, total = explicit_loss(network, derive_network(network), sizes)
    return total, [instantiate(w, sizes) for w in network.weights]


@pytest.mark.parametrize("name", ["maxout_layer", "elu", "softplus", "leaky_relu"])
def test_the_chain_rule_equals_sympys_diff_on_a_layer(name):
    decl = CATALOG[name]
    layer = decl if getattr(decl, "kind", "") == "layer" else activation_layer(decl)
    total, matrices = _layer_total(layer)
    for matrix in matrices:
        by_sympy = matrix.applyfunc(lambda entry: sp.diff(total, entry))
        assert probe_entries(scalar_gradient(name, total, matrix), by_sympy) is None


@pytest.mark.parametrize("name", ["two_layer_svm", "two_layer_softmax_ce", "twenty_line_net"])
def test_the_chain_rule_equals_sympys_diff_on_a_network_loss(name):
    total, weights = _network_total(CATALOG[name])
    for weight in weights:
        by_sympy = weight.applyfunc(lambda entry: sp.diff(total, entry))
        assert probe_entries(scalar_gradient(name, total, weight), by_sympy) is None


def test_a_wrong_local_derivative_is_seen(monkeypatch):
    """The chain rule's local partials are the ground truth of the layer check: with one
    planted wrong (d exp(u)/du = 2 exp(u)), the sigmoid's correct VJP must be refuted."""
    local = _ChainRule._local

    def planted(self, node):
        return (2 * node,) if isinstance(node, sp.exp) else local(self, node)

    monkeypatch.setattr(_ChainRule, "_local", planted)
    against_truth = [v for v in check_layer(activation_layer(CATALOG["sigmoid"]))
                     if "against scalar calculus" in v.detail]
    assert [v.status for v in against_truth] == [REFUTED]


def test_a_step_inside_the_total_is_refused_as_sympy_cannot_differentiate_it():
    x = sp.Symbol("x", real=True)
    with pytest.raises(DerivationError, match="cannot differentiate"):
        scalar_gradient("stepped", x * sp.Heaviside(x - 1, 0), sp.Matrix([[x]]))
