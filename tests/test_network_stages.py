"""Tensor layers as the stages of a network (issue 15, section 6): a network of a batch-norm
stage and an activation, composed by symnet.index.stages, generated through the index
lowering (the activation spelled from its declaration) and checked against central
differences; `Network(..., stages=[use(batchnorm, ...), ...])` derived and checked."""

from __future__ import annotations

import numpy as np
import pytest

from symnet.catalog.activations import relu, sigmoid
from symnet.catalog.layers import batchnorm
from symnet.index import indices, size, tensors
from symnet.index.stages import index_network, stage


def _batchnorm_then(activation):
    """X -> batchnorm(gamma, beta) -> activation, as one tensor layer."""
    N, D = size("N"), size("D")
    n, d = indices("n d")
    X, g, be, B, R = tensors("X g be B R")
    return index_network(f"bn_{activation.name}", X[n, d], [
        stage(batchnorm, gamma=g[d], beta=be[d], out=B[n, d]),
        stage(activation, out=R[n, d])], ranges={n: N, d: D})


def _generated(layer, tmp_path):
    from symnet.codegen.emit import render_module
    from symnet.codegen.lower import lower
    from symnet.derive import derive
    from tests.helpers import load

    path = tmp_path / f"{layer.name}.py"
    path.write_text(render_module(lower(derive(layer)), "tests/test_network_stages.py"))
    return load(path)


def _central_differences(module, arrays, G, h=1e-6):
    grads = []
    for k, array in enumerate(arrays):
        numeric = np.zeros_like(array)
        for at in np.ndindex(array.shape):
            shifted = [a.copy() for a in arrays]
            shifted[k][at] += h
            up = (module.forward(*shifted)[0] * G).sum()
            shifted[k][at] -= 2 * h
            numeric[at] = (up - (module.forward(*shifted)[0] * G).sum()) / (2 * h)
        grads.append(numeric)
    return grads


@pytest.mark.parametrize("activation", [relu, sigmoid], ids=lambda a: a.name)
def test_a_network_with_a_batchnorm_stage_generates_a_backward_matching_central_differences(
        activation, tmp_path):
    module = _generated(_batchnorm_then(activation), tmp_path)
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        arrays = [rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=3)]
        Y, cache = module.forward(*arrays)
        assert Y.shape == (6, 3)
        G = rng.normal(size=Y.shape)
        grads = module.backward(G, cache)
        for grad, numeric, array in zip(grads, _central_differences(module, arrays, G),
                                        arrays, strict=True):
            assert grad.shape == array.shape
            error = np.abs(grad - numeric).max() / max(1e-12, np.abs(numeric).max())
            assert error <= 1e-7, (activation.name, seed, error)


def test_the_activation_of_a_stage_is_spelled_from_its_declaration_not_by_hand(tmp_path):
    """relu's forward is the declaration's max(0, x), its derivative the step symnet derived
    (a mask of B > 0): no placeholder reaches the printer, no derivative is written here."""
    import inspect

    module = _generated(_batchnorm_then(relu), tmp_path)
    forward, backward = inspect.getsource(module.forward), inspect.getsource(module.backward)
    assert "np.maximum(0, B)" in forward
    assert "(B > 0)" in backward and "relu" not in backward.split('"""')[-1]
