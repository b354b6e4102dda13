"""`symnet train --norm batchnorm` (issue 15, section 6): batch norm after each hidden affine
layer, before its activation, trained with generated/layers/batchnorm.py only: its forward
and backward while training, its inference() with the running statistics for prediction."""

import json

import numpy as np
import pytest

from symnet.cli import main
from symnet.runtime import modules
from symnet.runtime.checkpoint import load_checkpoint
from symnet.runtime.network import Network, initial_parameters, norm_parameters
from symnet.runtime.optim import Adam
from symnet.runtime.train import layer_step

affine = modules.load("layers", "affine")
batchnorm = modules.load("layers", "batchnorm")
tanh = modules.load("activations", "tanh")
relu = modules.load("activations", "relu")
softmax_ce = modules.load("losses", "softmax_ce")
l2 = modules.load("regularizers", "l2")
SIZES = (5, 7, 6, 3)
EPS = 1e-5


def normed_network(sizes=SIZES, activation=tanh, lam=1e-2, dtype=np.float64, seed=0):
    net = Network(sizes, affine, activation, softmax_ce, "one_hot", l2, lam, norm=batchnorm)
    net.params = initial_parameters(sizes, "tanh", seed, dtype)
    net.params |= norm_parameters(sizes, batchnorm, dtype)
    rng = np.random.default_rng(seed + 1)
    for layer in range(1, len(sizes) - 1):      # away from gamma = 1, beta = 0
        net.params[f"gamma{layer}"] += rng.normal(0, 0.3, sizes[layer]).astype(dtype)
        net.params[f"beta{layer}"] += rng.normal(0, 0.3, sizes[layer]).astype(dtype)
    return net


def batch(rows=8, features=SIZES[0], classes=SIZES[-1], seed=2, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(dtype)
    return x, np.eye(classes, dtype=dtype)[rng.integers(0, classes, rows)]


def total_loss(net, x, target) -> float:
    data_loss, penalty, _ = net.loss_and_gradients(x, target)
    return float(data_loss + penalty)


def test_the_network_gradient_through_batch_norm_matches_central_differences():
    net, (x, target) = normed_network(), batch()
    _, _, grads = net.loss_and_gradients(x, target)
    assert {f"gamma{i}" for i in (1, 2)} | {f"beta{i}" for i in (1, 2)} <= set(grads)
    assert not any(name.startswith("running_") for name in grads)
    h = 1e-5
    for name, grad in grads.items():
        value = net.params[name]
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            kept = value[index]
            value[index] = kept + h
            up = total_loss(net, x, target)
            value[index] = kept - h
            down = total_loss(net, x, target)
            value[index] = kept
            numeric[index] = (up - down) / (2 * h)
        # a bias before batch norm has gradient 0 (the batch mean takes it away): relative
        # to a floor of 1e-3, a difference there is measured as an absolute one
        error = np.abs(grad - numeric).max() / max(np.abs(numeric).max(), 1e-3)
        assert error < 1e-7, (name, error)


def test_gamma_and_beta_take_no_l2_penalty():
    net, (x, target) = normed_network(lam=0.5), batch()
    _, penalty, _ = net.loss_and_gradients(x, target)
    on_weights = sum(l2.penalty(net.params[f"W{layer}"], 0.5)[0] for layer in (1, 2, 3))
    assert penalty == pytest.approx(on_weights, rel=1e-12)


def _reference_batch_norm(h, gamma, beta):
    mean, var = h.mean(axis=0, keepdims=True), ((h - h.mean(axis=0)) ** 2).mean(axis=0)
    return gamma * (h - mean) / np.sqrt(var + EPS) + beta, mean, var


def test_running_statistics_after_a_few_steps_equal_a_numpy_reference():
    net = normed_network()
    step = layer_step(net, Adam(lr=1e-2))
    running = {f"{s}{layer}": (np.zeros((1, w)) if s == "mu" else np.ones((1, w)))
               for layer, w in ((1, 7), (2, 6)) for s in ("mu", "var")}
    for seed in range(4):
        x, target = batch(rows=10, seed=seed)
        h = x
        for layer in (1, 2):          # with the parameters before the step, as it sees them
            p = net.params
            h, mean, var = _reference_batch_norm(h @ p[f"W{layer}"] + p[f"b{layer}"],
                                                 p[f"gamma{layer}"], p[f"beta{layer}"])
            running[f"mu{layer}"] = 0.9 * running[f"mu{layer}"] + 0.1 * mean
            running[f"var{layer}"] = 0.9 * running[f"var{layer}"] + 0.1 * var
            h = np.tanh(h)
        step(x, target)
    for name, expected in running.items():
        np.testing.assert_allclose(net.params[f"running_{name}"], expected, rtol=1e-12)


def test_prediction_normalises_by_the_running_statistics():
    net = normed_network()
    step = layer_step(net, Adam(lr=1e-2))
    for seed in range(3):
        step(*batch(rows=10, seed=seed))
    x, _ = batch(rows=5, seed=9)
    h, p = x, net.params
    for layer in (1, 2):
        h = h @ p[f"W{layer}"] + p[f"b{layer}"]
        h = p[f"gamma{layer}"] * (h - p[f"running_mu{layer}"]) \
            / np.sqrt(p[f"running_var{layer}"] + EPS) + p[f"beta{layer}"]
        h = np.tanh(h)
    expected = h @ p["W3"] + p["b3"]
    np.testing.assert_allclose(net.scores(x)[0], expected, rtol=1e-12)
    one_row = net.predict(x[:1])            # a batch of one: no batch statistics needed
    assert one_row[0] == np.argmax(expected[0])


def test_float32_is_kept_through_training_and_prediction():
    net = normed_network(activation=relu, dtype=np.float32)
    x, target = batch(rows=10, dtype=np.float32)
    step = layer_step(net, Adam(lr=1e-2))
    for _ in range(3):
        loss, finite = step(x, target)
        assert finite
    _, _, grads = net.loss_and_gradients(x, target)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert net.scores(x)[0].dtype == np.float32


def _train(capsys, tmp_path, name, *options):
    """`symnet train` in this process (the runs, not the process, are under test)."""
    argv = ["train", "--norm", "batchnorm", "--hidden", "16,8", "--batch-size", "50",
            "--optimizer", "momentum", "--lr", "0.1", "--json", "--save",
            str(tmp_path / name), *map(str, options)]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_a_resumed_run_continues_bit_for_bit(tmp_path, capsys):
    _train(capsys, tmp_path, "first.npz", "--epochs", "3")
    _train(capsys, tmp_path, "resumed.npz", "--epochs", "6", "--resume", tmp_path / "first.npz")
    _train(capsys, tmp_path, "unbroken.npz", "--epochs", "6")
    resumed, _, history, settings = load_checkpoint(tmp_path / "resumed.npz")
    unbroken, _, unbroken_history, _ = load_checkpoint(tmp_path / "unbroken.npz")
    assert settings["norm"] == "batchnorm"
    assert {"running_mu1", "running_var2", "gamma2", "beta1"} <= set(resumed)
    assert resumed.keys() == unbroken.keys()
    for name in resumed:
        assert np.array_equal(resumed[name], unbroken[name]), name
    assert history.loss == unbroken_history.loss


def test_the_run_says_layer_by_layer_and_why(tmp_path, capsys):
    result, stderr = _train(capsys, tmp_path, "run.npz", "--epochs", "2", "--optimizer", "sgd")
    assert result["step"] == "layer by layer"
    assert stderr.strip().count("\n") == 0 and "--norm batchnorm" in stderr


@pytest.mark.parametrize("dataset, key, target", [("digits", "test_accuracy", 0.97),
                                                   ("spiral", "train_accuracy", 0.98)])
def test_the_accuracy_targets_with_batch_norm(dataset, key, target, capsys):
    code = main(["train", "--dataset", dataset, "--norm", "batchnorm", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)[key] >= target


def test_the_generated_inference_is_the_forward_at_the_batch_statistics():
    """inference() is the declared forward with mu, var given: at the batch's own statistics
    it gives forward's output; only a layer with statistics over the batch has one."""
    x, _ = batch(rows=9)
    gamma, beta = np.linspace(0.5, 2, 5), np.linspace(-1, 1, 5)
    Y, cache = batchnorm.forward(x, gamma, beta)
    statistics = dict(zip(batchnorm.CACHE, cache, strict=True))
    assert batchnorm.RUNNING == ("mu", "var")
    same = batchnorm.inference(x, gamma, beta, statistics["mu"], statistics["var"])
    np.testing.assert_allclose(same, Y, rtol=1e-14, atol=1e-14)
    for other in ("softmax_rows", "dropout", "bilinear", "affine"):
        assert not hasattr(modules.load("layers", other), "inference"), other
