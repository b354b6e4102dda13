"""Fused steps for every optimiser (SGD, momentum, Adam), any depth, any activation, loss and
regulariser: each equals the layer-by-layer path (the generated layer modules and the
runtime's optimiser objects) to rtol 1e-12 in float64 over 100 steps, parameters and
optimiser state alike; the state belongs to the runtime's optimiser, so a checkpoint keeps
it and a resumed run continues exactly; `symnet train` reports which step ran."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symnet.catalog import STEPS, activations, losses
from symnet.catalog.steps import OPTIMIZERS as DECLARED
from symnet.catalog.steps import training_step
from symnet.runtime import modules
from symnet.runtime.fused import fused_step
from symnet.runtime.network import Network, encode_targets, initial_parameters
from symnet.runtime.optim import OPTIMIZERS
from tests.fused_helpers import assert_same_run, network, run_both, step_file
from tests.helpers import GENERATED, load

# --- the committed steps ----------------------------------------------------------------------

COMMITTED = sorted(n for n, s in STEPS.items() if s.optimizer.name != "sgd")


@pytest.mark.parametrize("name", COMMITTED)
def test_a_committed_momentum_or_adam_step_equals_layer_by_layer(name):
    module = load(GENERATED / "networks" / f"{name}.py")
    assert_same_run(module, STEPS[name])


@pytest.mark.parametrize("name", ["two_layer_tanh_softmax_ce_l2_momentum",
                                  "three_layer_relu_softmax_ce_l2_adam"])
def test_float32_stays_float32_state_included_and_agrees(name):
    module = load(GENERATED / "networks" / f"{name}.py")
    net, layered_optimizer, twin, fused_optimizer, (expected, got) = \
        run_both(module, STEPS[name], steps=10, dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for name, value in net.params.items():
        assert twin.params[name].dtype == np.float32
        np.testing.assert_allclose(twin.params[name], value, rtol=1e-3, atol=1e-5)
    for key, value in fused_optimizer.state().items():
        assert key == "steps" or value.dtype == np.float32


def test_momentum_folds_the_velocity_into_one_gemm_and_adam_into_a_gradient_buffer():
    """V <- mu*V - lr*X.T*dZ1 is one gemm (beta=mu, alpha=-lr); Adam reads G twice, so the
    gradient goes into dW1 by a gemm (W1 copied in, its l2 term the gemm's beta) and its rules
    run entry by entry, the last ones in dW1's buffer."""
    momentum = (GENERATED / "networks" / "two_layer_relu_softmax_ce_l2_momentum.py").read_text()
    assert "gemm(X.T, dZ1, velocity_W1, alpha=-lr, beta=mu)" in momentum
    assert "axpy(W1, velocity_W1, -2*lam*lr)" in momentum
    assert "np.add(W1, velocity_W1, out=W1)" in momentum
    adam = (GENERATED / "networks" / "two_layer_relu_softmax_ce_l2_adam.py").read_text()
    assert "gemm(X.T, dZ1, dW1, beta=2*lam)" in adam and "np.sqrt(second_W1, out=dW1)" in adam
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
    ("adam", 2, activations.tanh, losses.svm, losses.l2),        # class indices
    ("sgd", 3, activations.relu, losses.svm, losses.l1),
]


@pytest.mark.parametrize("optimizer, depth, activation, loss, regularizer", SWEEP,
                         ids=[f"{o}-{d}-{a.name}-{lo.name}-{r.name}" for o, d, a, lo, r in SWEEP])
def test_a_generated_step_equals_layer_by_layer(tmp_path, optimizer, depth, activation, loss,
                                                regularizer):
    step = training_step(activation, depth, loss, regularizer, DECLARED[optimizer])
    assert_same_run(step_file(tmp_path, step), step)


def test_a_planted_mistake_in_a_rule_is_caught():
    """The comparison can fail: Adam's count advanced twice, momentum's L2 term halved."""
    for name, right, wrong in (
            ("two_layer_relu_softmax_ce_l2_adam", "t = t + 1", "t = t + 2"),
            ("two_layer_relu_softmax_ce_l2_momentum", "axpy(W1, velocity_W1, -2*lam*lr)",
             "axpy(W1, velocity_W1, -lam*lr)")):
        source = (GENERATED / "networks" / f"{name}.py").read_text()
        assert right in source
        planted = load(GENERATED / "networks" / "planted.py",     # beside its blas.py
                       source.replace(right, wrong))
        with pytest.raises(AssertionError):
            assert_same_run(planted, STEPS[name], steps=5)


@pytest.mark.parametrize("name", COMMITTED)
def test_a_momentum_or_adam_step_allocates_no_array_of_a_weights_size(name):
    """The gradient buffers, the scratch buffers of the rules and the masks live in the
    workspace, the state in the optimiser: numpy's allocations during a step (traced by
    tracemalloc) stay far below one N x H array."""
    import tracemalloc

    from tests.helpers import step_arguments

    module = load(GENERATED / "networks" / f"{name}.py")
    rows, hidden = 512, 256
    depth = len(module.PARAMETERS) // 2
    sizes = (64,) + (hidden,) * (depth - 1) + (10,)
    params = initial_parameters(sizes, "relu", 0, np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, sizes[0]))
    y = encode_targets(rng.integers(0, sizes[-1], rows), sizes[-1], "one_hot", np.float64)
    arguments = step_arguments(module, params)
    work = module.workspace(x, *arguments[:len(module.PARAMETERS)])
    module.step(x, y, *arguments, work)
    tracemalloc.start()
    try:
        module.step(x, y, *arguments, work)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < rows * hidden * 8 / 4, f"{name}: {peak} bytes allocated during a step"


# --- the optimiser's state: the runtime's, saved and resumed ------------------------------------


def spiral_run(epochs, optimizer, history=None, params=None):
    from symnet.runtime.data import spiral
    from symnet.runtime.train import TrainConfig, train

    data = spiral(seed=3)
    net = Network((2, 24, 3), modules.load("layers", "affine"),
                  modules.load("activations", "relu"), modules.load("losses", "softmax_ce"),
                  "one_hot", modules.load("regularizers", "l2"), 1e-3)
    net.params = params or initial_parameters(net.sizes, "relu", 3)
    config = TrainConfig(epochs=epochs, batch_size=64, lr=1e-2, optimizer="adam", seed=3)
    assert fused_step(net, optimizer).name == "two_layer_relu_softmax_ce_l2_adam"
    return net, train(net, data, config, history, optimizer=optimizer)


def test_a_checkpoint_keeps_adams_state_and_a_resumed_fused_run_continues_exactly(tmp_path):
    from symnet.runtime.checkpoint import load_checkpoint, save_checkpoint

    Adam = OPTIMIZERS["adam"]
    unbroken_optimizer = Adam(lr=1e-2)
    unbroken, unbroken_history = spiral_run(6, unbroken_optimizer)
    first_optimizer = Adam(lr=1e-2)
    net, history = spiral_run(3, first_optimizer)
    assert first_optimizer.steps == 15 and first_optimizer.first      # the step kept its state
    path = save_checkpoint(tmp_path / "run.npz", net.params, first_optimizer, history, {})
    params, state, history, _ = load_checkpoint(path)
    resumed_optimizer = Adam(lr=1e-2)
    resumed_optimizer.load_state(state)
    resumed, history = spiral_run(6, resumed_optimizer, history, params)
    assert history.loss == unbroken_history.loss
    for name, value in unbroken.params.items():
        np.testing.assert_array_equal(resumed.params[name], value)
    assert resumed_optimizer.steps == unbroken_optimizer.steps == 30
    for key, value in unbroken_optimizer.state().items():
        np.testing.assert_array_equal(resumed_optimizer.state()[key], value)


# --- symnet train ---------------------------------------------------------------------------------


def train_json(capsys, *flags) -> tuple[dict, str]:
    from symnet.cli import main

    assert main(["train", "--json", *flags]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out.splitlines()[-1]), captured.err


def test_symnet_train_digits_runs_adam_fused_to_097(capsys):
    pytest.importorskip("sklearn")
    result, _ = train_json(capsys, "--dataset", "digits")
    assert result["optimizer"] == "adam"
    assert result["step"] == "fused: generated/networks/two_layer_relu_softmax_ce_l2_adam.py"
    assert result["test_accuracy"] >= 0.97


def test_symnet_train_fuses_momentum_at_depth_three_and_a_users_activation(
        capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    result, _ = train_json(capsys, "--optimizer", "momentum", "--hidden", "64,32",
                           "--epochs", "5")
    assert result["step"] == "fused: generated/networks/three_layer_relu_softmax_ce_l2_momentum.py"
    result, _ = train_json(capsys, "--activation", "examples/my_declarations.py:mish",
                           "--epochs", "5")
    assert result["step"] == "fused: cache two_layer_mish_softmax_ce_l2_sgd"
    result, _ = train_json(capsys, "--hidden", "16,8,8", "--optimizer", "adam", "--dtype",
                           "float32", "--loss", "squared_error", "--regularizer", "l1",
                           "--epochs", "5")
    assert result["step"] == "fused: cache four_layer_relu_squared_error_l1_adam"


def test_a_generated_step_is_kept_sealed_in_the_cache(capsys, monkeypatch, tmp_path):
    """The second run takes the step from the cache (nothing rendered); an entry altered on
    disk is not served: the step is generated again."""
    from symnet.cli import train_step

    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path))
    monkeypatch.delenv("SYMNET_NO_CACHE")          # the tests' own default: off
    flags = ("--activation", "elu", "--epochs", "2")
    rendered = []
    real = train_step._rendered
    monkeypatch.setattr(train_step, "_rendered", lambda step: rendered.append(1) or real(step))
    for expected in (1, 1):
        result, _ = train_json(capsys, *flags)
        assert result["step"] == "fused: cache two_layer_elu_softmax_ce_l2_sgd"
        assert len(rendered) == expected
    entries = list((tmp_path / "results").rglob("*.json"))
    assert len(entries) == 1
    entries[0].write_text(entries[0].read_text().replace("np.", "xx."))
    result, _ = train_json(capsys, *flags)
    assert len(rendered) == 2 and result["final_loss"] is not None


def test_what_cannot_be_fused_says_why_in_one_line(capsys, tmp_path):
    rng = np.random.default_rng(0)                   # hinge: two classes, labels -1, +1
    x = rng.standard_normal((40, 2))
    np.savez(tmp_path / "two.npz", x=x, y=(x[:, 0] > 0).astype(np.int64))
    result, err = train_json(capsys, "--dataset", str(tmp_path / "two.npz"), "--loss", "hinge",
                             "--epochs", "2")
    assert result["step"] == "layer by layer"
    assert err.strip().splitlines() == ["symnet train: no fused step: hinge takes a sign "
                                        "target; a fused step is generated for one-hot or real "
                                        "target rows or class indices; training layer by layer"]
    result, err = train_json(capsys, "--layer-by-layer", "--optimizer", "adam", "--epochs", "2")
    assert result["step"] == "layer by layer" and err == ""


def test_a_step_that_fails_to_generate_unforeseen_trains_layer_by_layer(capsys, monkeypatch):
    """Not only symnet's own errors: a lowering that raises anything else costs the run its
    fused step, never the run."""
    from symnet.cli import train_step

    def broken(*_):
        raise ValueError("an expression the printer has not seen")

    monkeypatch.setattr(train_step, "_rendered", broken)
    result, err = train_json(capsys, "--activation", "elu", "--epochs", "2")
    assert result["step"] == "layer by layer" and result["epochs"] == 2
    assert err.strip() == ("symnet train: no fused step: cannot generate one (ValueError: an "
                           "expression the printer has not seen); training layer by layer")
