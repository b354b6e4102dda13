"""Fused steps for every optimiser (SGD, momentum, Adam), any depth, any activation, loss and
regulariser: each equals the layer-by-layer path (the generated layer modules and the
runtime's optimiser objects) to rtol 1e-12 in float64 over 100 steps, parameters and
optimiser state alike; the state belongs to the runtime's optimiser, so a checkpoint keeps
it and a resumed run continues exactly; `symnet train` reports which step ran."""

from __future__ import annotations

import numpy as np
import pytest

from symnet.catalog import activations, losses
from symnet.codegen.emit import render_blas, render_module
from symnet.codegen.network_step import lower_step
from symnet.codegen.step_catalog import OPTIMIZERS as DECLARED
from symnet.codegen.step_catalog import STEPS, training_step
from symnet.runtime import modules
from symnet.runtime.fused import FusedStep, fused_step
from symnet.runtime.network import Network, encode_targets, initial_parameters
from symnet.runtime.optim import OPTIMIZERS
from symnet.runtime.train import layer_step
from tests.helpers import GENERATED, load

#: a learning rate per optimiser that moves the parameters well within 100 steps
RATES = {"sgd": 0.3, "momentum": 0.1, "adam": 1e-2}
LAM = 1e-2


def step_file(tmp_path, step):
    """The step's module, generated now into tmp_path/networks/ beside its blas.py."""
    folder = tmp_path / "networks"
    folder.mkdir(exist_ok=True)
    (folder / "blas.py").write_text(render_blas())
    path = folder / f"{step.name}.py"
    path.write_text(render_module(lower_step(step), "test"))
    return load(path)


def network(step, dtype=np.float64, rows=16, seed=0):
    """The runtime's layer-by-layer network for a step's declaration, small sizes, biases
    away from zero; and a batch for it."""
    declared = step.network
    activation = declared.stages[1].layer.name
    depth = sum(s.layer.name == "affine" for s in declared.stages)
    sizes = (7,) + tuple(9 - k for k in range(depth - 1)) + (4,)
    loss = modules.load("losses", declared.loss.name)
    net = Network(sizes, modules.load("layers", "affine"),
                  modules.load("activations", activation), loss, None,
                  modules.load("regularizers", declared.regularizer.name), LAM)
    net.params = initial_parameters(sizes, activation, seed, dtype)
    rng = np.random.default_rng(seed + 1)
    for name in [n for n in net.params if n.startswith("b")]:
        net.params[name] = (0.1 * rng.standard_normal(net.params[name].shape)).astype(dtype)
    x = rng.standard_normal((rows, sizes[0])).astype(dtype)
    target = encode_targets(rng.integers(0, sizes[-1], rows), sizes[-1], net.target_kind,
                            dtype)
    return net, x, target


def copy_of(net):
    twin = Network(net.sizes, net.affine, net.activation, net.loss, net.target_kind,
                   net.regularizer, net.lam)
    twin.params = {k: v.copy() for k, v in net.params.items()}
    return twin


def run_both(module, step, steps=100, dtype=np.float64):
    """(layered net, its optimiser, fused net, its optimiser, both loss histories) after
    `steps` steps of each path from the same parameters."""
    net, x, target = network(step, dtype)
    twin = copy_of(net)
    name = step.optimizer.name
    layered_optimizer, fused_optimizer = (OPTIMIZERS[name](lr=RATES[name]) for _ in range(2))
    layered, fused = layer_step(net, layered_optimizer), FusedStep(module, twin,
                                                                    fused_optimizer)
    histories = ([], [])
    for _ in range(steps):
        histories[0].append(layered(x, target)[0])
        histories[1].append(fused(x, target)[0])
    return net, layered_optimizer, twin, fused_optimizer, histories


def assert_same_run(module, step, rtol=1e-12, atol=1e-14, steps=100):
    net, layered_optimizer, twin, fused_optimizer, (expected, got) = \
        run_both(module, step, steps)
    np.testing.assert_allclose(got, expected, rtol=rtol)
    assert np.ptp(expected) > 1e-3                     # the run moved
    for name, value in net.params.items():
        np.testing.assert_allclose(twin.params[name], value, rtol=rtol, atol=atol,
                                   err_msg=name)
    state, fused_state = layered_optimizer.state(), fused_optimizer.state()
    assert sorted(fused_state) == sorted(state)
    for key, value in state.items():
        np.testing.assert_allclose(fused_state[key], value, rtol=rtol, atol=atol, err_msg=key)


# --- the committed steps ----------------------------------------------------------------------

COMMITTED = sorted(n for n, s in STEPS.items() if s.optimizer.name != "sgd")


@pytest.mark.parametrize("name", COMMITTED)
def test_a_committed_momentum_or_adam_step_equals_layer_by_layer(name):
    module = load(GENERATED / "networks" / f"{name}.py")
    assert_same_run(module, STEPS[name])


def test_momentum_folds_the_velocity_into_one_gemm_and_adam_into_a_gradient_buffer():
    """V <- mu*V - lr*X.T*dZ1 is one gemm (beta=mu, alpha=-lr); Adam reads G twice, so the
    gradient goes into dW1 by a gemm and its rules run entry by entry."""
    momentum = (GENERATED / "networks" / "two_layer_relu_softmax_ce_l2_momentum.py").read_text()
    assert "gemm(X.T, dZ1, velocity_W1, alpha=-lr, beta=mu)" in momentum
    assert "axpy(W1, velocity_W1, -2*lam*lr)" in momentum
    assert "np.add(W1, velocity_W1, out=W1)" in momentum
    adam = (GENERATED / "networks" / "two_layer_relu_softmax_ce_l2_adam.py").read_text()
    assert "gemm(X.T, dZ1, dW1)" in adam and "np.sqrt(W1_scratch, out=W1_scratch)" in adam
    assert "t = t + 1" in adam


def test_the_runtime_picks_the_committed_step_of_each_optimiser():
    step = STEPS["two_layer_relu_softmax_ce_l2_sgd"]
    net, _, _ = network(step)
    for name in ("sgd", "momentum", "adam"):
        assert fused_step(net, OPTIMIZERS[name]()).name == f"two_layer_relu_softmax_ce_l2_{name}"

    class Mine(OPTIMIZERS["adam"]):     # an optimiser of the user's own: layer by layer
        pass

    assert fused_step(net, Mine()) is None


# --- steps generated for any network ----------------------------------------------------------

SWEEP = [   # (optimiser, depth, activation, loss, regulariser)
    ("momentum", 2, activations.elu, losses.softmax_ce, losses.l2),
    ("adam", 2, activations.silu, losses.softmax_ce, losses.l1),
    ("adam", 4, activations.relu, losses.softmax_ce, losses.l2),
    ("momentum", 3, activations.tanh, losses.squared_error, losses.l1),
    ("sgd", 2, activations.softplus, losses.huber, losses.l2),
    ("adam", 3, activations.leaky_relu, losses.bce_logits, losses.l2),
    ("sgd", 4, activations.sigmoid, losses.softmax_ce, losses.l1),
    ("momentum", 2, activations.relu, losses.huber, losses.l2),
]


@pytest.mark.parametrize("optimizer, depth, activation, loss, regularizer", SWEEP,
                         ids=[f"{o}-{d}-{a.name}-{lo.name}-{r.name}" for o, d, a, lo, r in SWEEP])
def test_a_generated_step_equals_layer_by_layer(tmp_path, optimizer, depth, activation, loss,
                                                regularizer):
    step = training_step(activation, depth, loss, regularizer, DECLARED[optimizer])
    assert_same_run(step_file(tmp_path, step), step)
