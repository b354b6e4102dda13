"""Running a fused training step beside the layer-by-layer path, from the same parameters:
what tests/test_fused_optimizers.py and tests/test_adam_passes.py compare."""

from __future__ import annotations

import numpy as np

from symnet.codegen.emit import render_blas, render_module
from symnet.codegen.step.lower import lower_step
from symnet.runtime import modules
from symnet.runtime.fused import FusedStep
from symnet.runtime.network import Network, encode_targets, initial_parameters
from symnet.runtime.optim import OPTIMIZERS
from symnet.runtime.train import layer_step
from tests.helpers import load

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


def assert_same_run(module, step, rtol=1e-12, steps=100):
    """Losses, parameters and state equal to rtol; an entry near zero (l1 keeps weights
    jumping around 0 by lr*lambda, a difference of nearly equal numbers) to rtol times its
    array's largest entry: the two paths round differently, by about 1e-16 of that."""
    net, layered_optimizer, twin, fused_optimizer, (expected, got) = \
        run_both(module, step, steps)
    np.testing.assert_allclose(got, expected, rtol=rtol)
    assert np.ptp(expected) > 1e-3                     # the run moved
    state, fused_state = layered_optimizer.state(), fused_optimizer.state()
    assert sorted(fused_state) == sorted(state)
    pairs = [(name, twin.params[name], value) for name, value in net.params.items()]
    pairs += [(key, fused_state[key], value) for key, value in state.items()]
    for name, actual, desired in pairs:
        scale = float(np.max(np.abs(desired)))
        np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol * scale,
                                   err_msg=name)
