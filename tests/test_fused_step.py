"""The fused training steps of generated/networks/: each equals the layer-by-layer step of
the runtime (the generated layer, activation, loss and regulariser modules and SGD) to
rtol 1e-12 in float64, with scipy's BLAS and with numpy alone; they update in place, reuse
their workspace and compute no gradient for the data; the gemm folds come from the
declarations (a regulariser whose gradient is not linear in W gets none)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symnet.catalog import STEPS
from symnet.catalog.steps import training_step
from symnet.codegen import Source, files_for
from symnet.codegen.step.lower import lower_step
from symnet.codegen.step.plan import plan
from symnet.declare.scalar import Regularizer
from symnet.runtime import modules
from symnet.runtime.network import Network, encode_targets, initial_parameters
from symnet.runtime.optim import SGD
from symnet.symbols import K, W, i, lam
from tests.helpers import GENERATED, LAM, LR, batch, layered, load, step_module

#: the SGD steps: the tests here pass (lr, lam) alone; tests/test_fused_optimizers.py has the
#: momentum and Adam steps, whose state arrays are arguments too
SGD_STEPS = {name: step for name, step in STEPS.items() if step.optimizer.name == "sgd"}


def run_both(module, net, x, y, steps=4):
    """(layer-by-layer losses, fused losses, fused parameters) over `steps` SGD steps, both
    from the same parameters."""
    fused = {k: v.copy() for k, v in net.params.items()}
    work = module.workspace(x, *[fused[p] for p in module.PARAMETERS])
    optimizer, layer_losses, fused_losses = SGD(lr=LR), [], []
    for _ in range(steps):
        data_loss, penalty, grads = net.loss_and_gradients(x, y)
        optimizer.step(net.params, grads)
        layer_losses.append(float(data_loss + penalty))
        loss, penalty = module.step(x, y, *[fused[p] for p in module.PARAMETERS], LR, LAM, work)
        fused_losses.append(float(loss + penalty))
    return layer_losses, fused_losses, fused


@pytest.mark.parametrize("numpy_only", [False, True], ids=["blas", "numpy"])
@pytest.mark.parametrize("name", sorted(SGD_STEPS))
def test_the_fused_step_equals_the_layer_by_layer_step(name, numpy_only):
    """Through blas.py's scipy tables and through a copy with the tables emptied."""
    if not numpy_only:
        pytest.importorskip("scipy")
    module = step_module(name, numpy_only)
    blas = module.gemm.__globals__                     # the blas module the step calls
    assert (blas["_GEMM"] == blas["_DOT"] == {}) is numpy_only
    net = layered(STEPS[name], np.float64)
    x, y = batch(net, np.float64)
    expected, got, fused = run_both(module, net, x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    for param in module.PARAMETERS:
        np.testing.assert_allclose(fused[param], net.params[param], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", sorted(SGD_STEPS))
def test_float32_stays_float32_and_agrees(name):
    module = step_module(name)
    net = layered(STEPS[name], np.float32)
    x, y = batch(net, np.float32)
    expected, got, fused = run_both(module, net, x, y, steps=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for param in module.PARAMETERS:
        assert fused[param].dtype == np.float32
        np.testing.assert_allclose(fused[param], net.params[param], rtol=1e-4, atol=1e-6)


def test_a_planted_mistake_in_the_fold_is_caught():
    """The comparison can fail: L2's factor 2 dropped from the folded beta."""
    name = "two_layer_relu_softmax_ce_l2_sgd"
    source = (GENERATED / "networks" / f"{name}.py").read_text()
    assert source.count("beta=1 - 2*lam*lr") == 2
    planted = load(GENERATED / "networks" / "planted.py",      # beside its blas.py, not written
                   source.replace("beta=1 - 2*lam*lr", "beta=1 - lam*lr"))
    net = layered(STEPS[name], np.float64)
    x, y = batch(net, np.float64)
    expected, got, _ = run_both(planted, net, x, y, steps=3)
    assert got[0] == pytest.approx(expected[0], rel=1e-12)   # the loss before any update
    assert got[2] != pytest.approx(expected[2], rel=1e-9)


def test_the_step_updates_in_place_and_reuses_its_workspace():
    module = step_module("two_layer_relu_softmax_ce_l2_sgd")
    net = layered(STEPS["two_layer_relu_softmax_ce_l2_sgd"], np.float64)
    x, y = batch(net, np.float64)
    params = [net.params[p] for p in module.PARAMETERS]
    before = [p.copy() for p in params]
    work = module.workspace(x, *params)
    addresses = [a.__array_interface__["data"][0] for a in work]
    module.step(x, y, *params, LR, LAM, work)
    assert all(not np.array_equal(p, b) for p, b in zip(params, before, strict=True))
    assert [a.__array_interface__["data"][0] for a in work] == addresses
    # Z1's buffer holds the first layer's output at the parameters before the step
    np.testing.assert_allclose(work[0], x @ before[0] + before[1], rtol=1e-12)


def test_no_gradient_for_the_data_and_every_update_one_gemm():
    lam_, lr_ = sp.Symbol("lambda", positive=True), sp.Symbol("lr", positive=True)
    for step in SGD_STEPS.values():
        p = plan(step)
        upstreams = {str(name) for name, _ in p.backward}
        assert f"d{p.network.input.name}" not in upstreams
        for update in p.updates:
            alpha, A, B = update.product
            assert update.rest is None and alpha == -lr_
            if update.param.name.startswith("W"):   # W <- (1 - 2 lam lr) W - lr A B
                assert sp.simplify(update.beta - (1 - 2 * lam_ * lr_)) == 0
            else:                                    # b <- b - lr ones(1, N) G: a column sum
                assert update.beta == 1 and isinstance(A, sp.OneMatrix) and A.shape[0] == 1
        source = (GENERATED / "networks" / f"{step.name}.py").read_text()
        assert f"d{p.network.input.name} =" not in source


# --- a regulariser whose gradient is not linear in W: no fold ----------------------------------

quartic = Regularizer("quartic", lam * sp.Sum(W[i] ** 4, (i, 0, K - 1)), weights=W, size=K,
                      params={lam: sp.Rational(1, 1000)},
                      doc="lambda sum W^4: its gradient 4 lambda W^3 is not linear in W")


def test_a_nonlinear_penalty_gradient_is_computed_before_the_gemm(tmp_path):
    from symnet.catalog.activations import tanh

    step = training_step(tanh, regularizer=quartic)
    update = next(u for u in plan(step).updates if u.param.name == "W1")
    assert update.beta == 1 and update.product is not None and update.rest is not None
    files = files_for([Source(step.name, step), Source("quartic", quartic)])
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert "W1_step = " in files[f"networks/{step.name}.py"]
    module = load(tmp_path / "networks" / f"{step.name}.py")
    net = layered(step, np.float64, regularizer=modules.load_path(
        tmp_path / "regularizers" / "quartic.py"))
    x, y = batch(net, np.float64)
    expected, got, fused = run_both(module, net, x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    for param in module.PARAMETERS:
        np.testing.assert_allclose(fused[param], net.params[param], rtol=1e-12, atol=1e-15)


def test_the_gemm_helper_on_transposed_views_and_both_dtypes():
    module = step_module("two_layer_relu_softmax_ce_l2_sgd")
    rng = np.random.default_rng(3)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        A, B = rng.standard_normal((6, 5)).astype(dtype), rng.standard_normal((6, 4)).astype(dtype)
        out = rng.standard_normal((5, 4)).astype(dtype)
        expected = -0.5 * (A.T @ B) + 0.25 * out
        result = module.gemm(A.T, B, out, alpha=-0.5, beta=0.25)
        assert result is out
        np.testing.assert_allclose(out, expected, rtol=rtol)
        C, product = rng.standard_normal((4, 6)).astype(dtype), np.empty((6, 5), dtype)
        module.gemm(C.T, np.asfortranarray(out.T), product)
        np.testing.assert_allclose(product, C.T @ out.T, rtol=rtol)
        ones, row = np.ones((1, 6), dtype), rng.standard_normal((1, 4)).astype(dtype)
        for matrix in (B, np.asfortranarray(B)):            # a row: the gemv path
            expected = 0.5 * row - 2.0 * (ones @ matrix)
            module.gemm(ones, matrix, row, alpha=-2.0, beta=0.5)
            np.testing.assert_allclose(row, expected, rtol=rtol)


def test_the_module_documents_each_update_and_its_blas_imports_scipy_only_inside_a_try():
    step = STEPS["two_layer_relu_softmax_ce_l2_sgd"]
    module = lower_step(step)
    assert module.folder == "networks" and module.name == step.name
    text = (GENERATED / "networks" / f"{step.name}.py").read_text()
    assert "W1 <- (-2*lambda*lr + 1)*W1 - lr*X.T*dZ1   (one gemm)" in text
    assert "scipy" not in "\n".join(line for line in text.splitlines() if "import" in line)
    tree = ast.parse((GENERATED / "networks" / "blas.py").read_text())
    guarded = {id(n) for block in ast.walk(tree) if isinstance(block, ast.Try)
               for n in ast.walk(block)}
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    scipy = [n for n in imports if "scipy" in ast.unparse(n)]
    assert scipy and all(id(n) in guarded for n in scipy)      # scipy only inside the try


def test_without_scipy_the_module_imports_and_falls_back_to_numpy(monkeypatch, tmp_path):
    import shutil
    import sys

    monkeypatch.setitem(sys.modules, "scipy", None)      # import scipy fails
    monkeypatch.setitem(sys.modules, "scipy.linalg", None)
    name = "two_layer_tanh_softmax_ce_l2_sgd"
    folder = tmp_path / "networks"     # a folder of its own: its blas imported afresh, now
    folder.mkdir()
    for file in ("blas.py", f"{name}.py"):
        shutil.copy(GENERATED / "networks" / file, folder / file)
    module = load(folder / f"{name}.py")
    blas = module.gemm.__globals__
    assert Path(blas["__file__"]) == folder / "blas.py"
    assert blas["_blas"] is None and blas["_GEMM"] == {} and blas["_DOT"] == {}
    net = layered(STEPS[name], np.float64)
    x, y = batch(net, np.float64)
    expected, got, _ = run_both(module, net, x, y, steps=2)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# --- the BLAS helpers: one module, networks/blas.py ----------------------------------------------


def _defined(path: Path) -> set:
    return {node.name for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef)}


def test_the_blas_helpers_are_written_once_and_every_step_imports_them():
    """gemm and sum_of_squares are defined in networks/blas.py alone (they were pasted into
    every step module); each step imports the ones it calls from there."""
    defining = {p.name for p in (GENERATED / "networks").glob("*.py")
                if _defined(p) & {"gemm", "_numpy_gemm", "sum_of_squares"}}
    assert defining == {"blas.py"}
    for name in STEPS:
        module = step_module(name)
        blas = module.gemm.__globals__
        assert Path(blas["__file__"]) == GENERATED / "networks" / "blas.py"
        assert module.sum_of_squares is blas["sum_of_squares"]   # every step has an L2 term


# --- the runtime's fused path ------------------------------------------------------------------


def spiral_network(dtype=np.float64, activation="relu", lam=1e-3, biases=True, regularize=True):
    from symnet.runtime.data import spiral

    sizes = (2, 24, 3)
    net = Network(sizes, modules.load("layers", "affine"),
                  modules.load("activations", activation), modules.load("losses", "softmax_ce"),
                  "one_hot", modules.load("regularizers", "l2") if regularize else None, lam,
                  biases=biases)
    net.params = initial_parameters(sizes, activation, 3, dtype, biases=biases)
    return net, spiral(seed=3)


def train_both(dtype=np.float64, **options):
    from symnet.runtime.train import TrainConfig, train

    config = TrainConfig(epochs=15, batch_size=64, lr=0.5, optimizer="sgd", seed=3)
    runs = []
    for fused in (True, False):
        net, data = spiral_network(dtype, **options)
        runs.append((train(net, data, config, fused=fused), net))
    return runs


@pytest.mark.parametrize("options", [{}, {"activation": "tanh"}, {"lam": 0.0},
                                     {"regularize": False}], ids=["relu", "tanh", "lam0", "none"])
def test_training_on_the_fused_path_matches_layer_by_layer(options):
    from symnet.runtime.fused import fused_step

    (fused, fused_net), (layered_history, layered_net) = train_both(**options)
    assert fused_step(fused_net, SGD(lr=0.5)) is not None     # the fused path was taken
    assert fused.steps == layered_history.steps == 15 * 5     # 300 points: 4 x 64 + 44
    np.testing.assert_allclose(fused.loss, layered_history.loss, rtol=1e-12)
    assert fused.train_accuracy == layered_history.train_accuracy
    for name, value in fused_net.params.items():
        np.testing.assert_allclose(value, layered_net.params[name], rtol=1e-10, atol=1e-13)


def test_float32_training_on_the_fused_path():
    (fused, net), (layered_history, _) = train_both(np.float32)
    assert all(v.dtype == np.float32 for v in net.params.values())
    np.testing.assert_allclose(fused.loss, layered_history.loss, rtol=1e-4)


def test_what_falls_back_to_layer_by_layer(tmp_path):
    import shutil

    from symnet.runtime.fused import fused_step
    from symnet.runtime.optim import Adam, Momentum

    net, _ = spiral_network()
    assert fused_step(net, SGD(lr=0.1)) is not None
    assert fused_step(net, Momentum(lr=0.1)).name == "two_layer_relu_softmax_ce_l2_momentum"
    assert fused_step(net, Adam()).name == "two_layer_relu_softmax_ce_l2_adam"
    assert fused_step(spiral_network(biases=False)[0], SGD()) is None
    assert fused_step(spiral_network(activation="elu")[0], SGD()) is None   # none generated
    copy = tmp_path / "activations" / "relu.py"                 # a user's module, not the catalog's
    copy.parent.mkdir()
    shutil.copy(GENERATED / "activations" / "relu.py", copy)
    net.activation = modules.load_path(copy)
    assert fused_step(net, SGD()) is None
    net, _ = spiral_network()
    net.sizes, net.params = (2, 5, 5, 3), initial_parameters((2, 5, 5, 3), "relu", 0)
    assert fused_step(net, SGD()).name == "three_layer_relu_softmax_ce_l2_sgd"


def test_a_non_finite_loss_on_the_fused_path_keeps_the_last_good_parameters():
    from symnet.runtime.train import TrainConfig, train

    net, data = spiral_network(lam=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        history = train(net, data, TrainConfig(epochs=50, lr=1e300, optimizer="sgd"))
    assert history.stopped and "non-finite" in history.stopped and history.epochs < 50
    assert all(np.isfinite(v).all() for v in net.params.values())
    for name, value in net.params.items():
        np.testing.assert_array_equal(value, history.last_good[name])


def test_symnet_train_says_which_step_trained(capsys):
    import json

    from symnet.cli import main

    for flags, expected in (([], "fused: generated/networks/two_layer_relu_softmax_ce_l2_sgd.py"),
                            (["--layer-by-layer"], "layer by layer"),
                            (["--optimizer", "adam"],
                             "fused: generated/networks/two_layer_relu_softmax_ce_l2_adam.py")):
        assert main(["train", "--json", "--epochs", "3", *flags]) == 0
        assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == expected


def test_the_softmax_takes_one_exp_per_score():
    from symnet.codegen.array_ops import RowMax, RowSum
    from symnet.codegen.statements import shared_exponentials

    s, s_max, shifted, log_z, probs = sp.symbols("s s_max shifted log_z probs", real=True)
    nodes = {s_max: RowMax(s), shifted: s - s_max, log_z: sp.log(RowSum(sp.exp(shifted))),
             probs: sp.exp(shifted - log_z)}
    shared = shared_exponentials(nodes, {"s", "s_max", "shifted", "log_z", "probs"})
    names = {str(k): v for k, v in shared.items()}
    assert list(names) == ["s_max", "shifted", "exp_shifted", "z", "log_z", "probs"]
    exp_shifted, z = sp.Symbol("exp_shifted", real=True), sp.Symbol("z", real=True)
    assert names["z"] == RowSum(exp_shifted) and names["probs"] == exp_shifted / z
    assert names["log_z"] == sp.log(z)
    source = (GENERATED / "networks" / "two_layer_relu_softmax_ce_l2_sgd.py").read_text()
    body = source[source.index("def step("):]
    assert body.count("np.exp(") == 1
    # the loss module that layer-by-layer training calls shares the same lowering
    loss_module = (GENERATED / "losses" / "softmax_ce.py").read_text()
    assert loss_module.count("np.exp(") == 1


def test_a_loss_without_a_target_matrix_or_class_indices_is_refused_by_name():
    """hinge's sign target (one score per row) has no step; svm's class indices have one
    (tests/test_fused_optimizers.py)."""
    from symnet.catalog.activations import relu
    from symnet.catalog.losses import hinge
    from symnet.errors import SymnetError

    with pytest.raises(SymnetError, match="hinge takes one score per sample"):
        plan(training_step(relu, loss=hinge))


def test_a_step_refuses_what_the_loss_module_refuses_exp_of_raw_scores():
    """The step lowers its loss with the loss modules' own lowering, checks included."""
    from symnet import Loss
    from symnet.catalog.activations import relu
    from symnet.codegen.errors import CodegenError
    from symnet.symbols import C, s, y

    poisson = Loss("poisson", sp.Sum(sp.exp(s[i]) - y[i] * s[i], (i, 0, C - 1)), scores=s,
                   size=C, target=y, target_kind="real")
    with pytest.raises(CodegenError, match="poisson.*exp\\(s\\) of raw scores"):
        lower_step(training_step(relu, loss=poisson))


@pytest.mark.parametrize("name", sorted(SGD_STEPS))
def test_a_step_allocates_no_array_of_the_hidden_size(name):
    """Masks and scratch arrays live in the workspace: numpy's allocations during a step
    (traced by tracemalloc) stay far below one N x H array."""
    import tracemalloc

    module = step_module(name)
    net = layered(STEPS[name], np.float64)
    rows, hidden = 512, 256
    sizes = (net.sizes[0],) + (hidden,) * (len(net.sizes) - 2) + (net.sizes[-1],)
    params = initial_parameters(sizes, STEPS[name].network.stages[1].layer.name, 0, np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, sizes[0]))
    y = encode_targets(rng.integers(0, sizes[-1], rows), sizes[-1], "one_hot", np.float64)
    arguments = [params[p] for p in module.PARAMETERS]
    work = module.workspace(x, *arguments)
    module.step(x, y, *arguments, LR, LAM, work)
    tracemalloc.start()
    try:
        module.step(x, y, *arguments, LR, LAM, work)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    hidden_array = rows * hidden * 8
    assert peak < hidden_array / 4, f"{name}: {peak} bytes allocated during a step"


def test_a_step_for_an_activation_with_two_kinks_matches_numpy_by_hand():
    """hardtanh's derivative is a sum of steps: its masks pass through squares and
    subtractions, one ufunc at a time into scratch buffers, and the step still matches."""
    from symnet import Activation
    from symnet.codegen.emit import render_module
    from symnet.symbols import x

    hardtanh = Activation("hardtanh", sp.Max(-1, sp.Min(1, x)), inputs=x)
    namespace = vars(load(GENERATED / "networks" / "hardtanh_step.py",      # not written
                          render_module(lower_step(training_step(hardtanh)), "test")))
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((8, 5)), np.eye(3)[rng.integers(0, 3, 8)]
    W1, b1 = 2 * rng.standard_normal((5, 6)), rng.standard_normal((1, 6))
    W2, b2 = rng.standard_normal((6, 3)), rng.standard_normal((1, 3))
    Z1 = X @ W1 + b1
    assert 0.2 < np.mean(np.abs(Z1) > 1) < 0.9          # both kinks are visited
    H1 = np.clip(Z1, -1, 1)
    S = H1 @ W2 + b2
    P = np.exp(S - S.max(axis=1, keepdims=True))
    dS = (P / P.sum(axis=1, keepdims=True) - Y) / len(X)
    dZ1 = (dS @ W2.T) * (np.abs(Z1) < 1)
    expected = [W1 - LR * (X.T @ dZ1 + 2 * LAM * W1), b1 - LR * dZ1.sum(0, keepdims=True),
                W2 - LR * (H1.T @ dS + 2 * LAM * W2), b2 - LR * dS.sum(0, keepdims=True)]
    params = [W1.copy(), b1.copy(), W2.copy(), b2.copy()]
    namespace["step"](X, Y, *params, LR, LAM)
    for got, want in zip(params, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_a_difference_of_two_masks_is_computed_in_float_buffers():
    """numpy refuses to subtract booleans: a comparison that is not a product's operand
    goes into a float scratch buffer (0.0 or 1.0), not a boolean one."""
    from symnet.codegen.step.code import Buffers, in_place

    Z1, dH1 = sp.symbols("Z1 dH1", real=True)
    N, H = sp.symbols("N H", positive=True, integer=True)
    value = dH1 * (sp.Heaviside(Z1 + 1, 0) - sp.Heaviside(Z1 - 1, 0))
    shapes = {"Z1": (N, H), "dH1": (N, H), "dZ1": (N, H)}
    buffers = Buffers()
    lines = in_place([(0, "dZ1", value)], shapes, {}, "Z1", {"Z1": 0, "dH1": 0}, buffers)
    assert not buffers.booleans and "np.subtract(" in "\n".join(lines)
    rng = np.random.default_rng(0)
    z, upstream = 2 * rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    arrays = {"Z1": z.copy(), "dH1": upstream.copy()}
    arrays.update({name: np.empty((4, 5)) for name in buffers.shapes if name not in arrays})
    exec("\n".join(lines), {"np": np}, arrays)
    np.testing.assert_array_equal(arrays["dZ1"], upstream * ((z > -1) & ~(z > 1)))
