"""Numbers (issue 13, section 6): float32 in gives float32 out in every generated module and
in a user's declaration with irrational constants; a term t*log(t) is 0 where t = 0 (0 log 0
= 0), not NaN; an activation whose module would overflow float64 at inputs of +-1000 is
rewritten into a stable form where one is known (log cosh) and otherwise refused with one
line and exit status 2, naming what overflows and what to declare instead."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symnet.catalog import LAYER_REGISTRY, REGISTRY, STEPS
from symnet.cli import main
from symnet.codegen import lower
from symnet.codegen.emit import render_module
from symnet.codegen.printer import numpy_code
from symnet.codegen.step.lower import lower_step
from symnet.declare.network import Network
from symnet.declare.scalar import Activation
from symnet.declare.step import TrainingStep
from tests import layer_helpers as layers
from tests.conftest import derivation_of
from tests.helpers import (
    GENERATED,
    batch,
    draw,
    layered,
    load,
    run,
    step_arguments,
    step_module,
    symnet,
)

STRICT = {"over": "raise", "invalid": "raise", "divide": "raise"}
FOLDERS = {"activations": REGISTRY, "losses": REGISTRY, "regularizers": REGISTRY,
           "layers": LAYER_REGISTRY, "networks": STEPS}


def generated_modules() -> list[str]:
    """Every declaration's module in generated/, as folder/name (networks/blas.py, the
    steps' shared helpers, runs in every step's sweep)."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in GENERATED.glob("*/*.py")
                  if p.stem != "__init__" and p.name != "blas.py")


def dtypes(*values) -> list:
    return [np.asarray(v).dtype for v in values]


# --- float32 in, float32 out: every module of generated/ -----------------------------------


def _catalog_results(decl, dtype) -> list:
    wrt, fixed = draw(decl, np.random.default_rng(0), (4, 3), dtype=dtype)
    value, grads = run(decl, load(GENERATED / FOLDERS_OF[decl.kind] / f"{decl.name}.py"),
                       wrt, fixed)
    if isinstance(decl, Activation):   # run's value is sum(out*dout): the forward's own out
        module = load(GENERATED / "activations" / f"{decl.name}.py")
        value = module.forward(*wrt.values())[0]
    return [value, *grads]


FOLDERS_OF = {"activation": "activations", "loss": "losses", "regularizer": "regularizers"}


def _tensor_layer_results(name, dtype) -> list:
    """A tensor layer (symnet.index): each input drawn at its shape, N = 5 and 3 elsewhere."""
    from symnet.catalog.layers import TENSOR_LAYERS

    layer, module = TENSOR_LAYERS[name], layers.generated(name)
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=tuple(5 if str(s) == "N" else 3 for s in layer.shape_of(e)))
              .astype(dtype) for e in layer.arguments]
    out, cache = module.forward(*arrays)
    grads = module.backward(np.ones_like(out), cache)
    return [out, *(grads if isinstance(grads, tuple) else (grads,))]


def _layer_results(name, dtype) -> list:
    if name not in LAYER_REGISTRY:
        return _tensor_layer_results(name, dtype)
    layer = LAYER_REGISTRY[name]
    sizes = layers.sizes_of(layer, *layers.SIZES[1])
    arrays = layers.draw(layer, np.random.default_rng(0), sizes, dtype=dtype)
    module = layers.generated(name)
    out, _ = module.forward(*[arrays[m] for m in layer.inputs])
    return [out, *layers.run(layer, module, arrays)[1]]


def _step_results(name, dtype, numpy_only) -> list:
    module = step_module(name, numpy_only)
    net = layered(STEPS[name], dtype)
    x, y = batch(net, dtype)
    params = {name: value.copy() for name, value in net.params.items()}
    arguments = step_arguments(module, params, 0.1, 1e-2)     # with its optimiser's state
    loss, penalty = module.step(x, y, *arguments)
    return [loss, penalty, *(a for a in arguments if isinstance(a, np.ndarray))]


#: every module, and the fused steps again with numpy alone (only they call BLAS)
SWEEP = [(m, False) for m in generated_modules()] + [
    (m, True) for m in generated_modules() if m.startswith("networks/")]


@pytest.mark.parametrize("module, numpy_only", SWEEP,
                         ids=[m + ("-numpy" if n else "") for m, n in SWEEP])
def test_every_generated_module_keeps_float32(module, numpy_only):
    """Values and gradients (a step's loss, penalty and updated parameters) are float32
    for float32 arrays, with scipy's BLAS and with numpy alone (a fused step's penalty
    came back a Python float from BLAS's sdot, float64)."""
    folder, name = module.split("/")
    results = {"networks": lambda: _step_results(name, np.float32, numpy_only),
               "layers": lambda: _layer_results(name, np.float32)}.get(
        folder, lambda: _catalog_results(FOLDERS[folder][name], np.float32))()
    assert dtypes(*results) == [np.float32] * len(results)


def test_a_step_without_a_regularizer_returns_a_penalty_of_the_scores_dtype():
    """penalty = 0.0 was a Python float (float64); it is a zero of the scores' dtype."""
    step = STEPS["two_layer_relu_softmax_ce_l2_sgd"]
    net = step.network
    bare = Network(f"{net.name}_bare", net.input, net.stages, loss=net.loss, target=net.target)
    module = lower_step(TrainingStep(f"{step.name}_bare", bare, step.optimizer))
    runtime_net = layered(step, np.float32)
    x, y = batch(runtime_net, np.float32)
    # as if it were a module beside the others, importing their blas.py (nothing is written)
    bare_step = load(GENERATED / "networks" / "bare.py", render_module(module, "test"))
    params = [runtime_net.params[p].copy() for p in bare_step.PARAMETERS]
    loss, penalty = bare_step.step(x, y, *params, 0.1)
    assert dtypes(loss, penalty) == [np.float32, np.float32] and penalty == 0


# --- constants as Python numbers -----------------------------------------------------------

x = sp.Symbol("x", real=True)
CONSTANTS = [sp.sqrt(2) * x, sp.log(3) * x, sp.pi * x, sp.E * x, x / 3, x ** sp.Rational(1, 3),
             x ** 3, x + sp.sqrt(2), -sp.sqrt(2) * x / 2, sp.log(2) / x, sp.EulerGamma * x,
             sp.exp(-x ** 2 / 2) / sp.sqrt(2 * sp.pi), sp.pi ** 2 * x, x * sp.cos(2),
             sp.sqrt(2) * (x + 1) / (x + 2), sp.exp(sp.Rational(1, 2)) * x]


@pytest.mark.parametrize("expr", CONSTANTS, ids=str)
def test_a_constant_prints_as_a_number_that_takes_the_arrays_dtype(expr):
    """np.sqrt(2) is a float64 scalar and would turn float32 arrays into float64; the
    printed constant is a Python number, as exact as float64 allows."""
    code = numpy_code(expr)
    values = np.linspace(0.5, 3.0, 6)
    narrow = eval(code, {"np": np}, {"x": values.astype(np.float32)})
    wide = eval(code, {"np": np}, {"x": values})
    exact = sp.lambdify(x, expr, "mpmath")
    assert narrow.dtype == np.float32 and wide.dtype == np.float64
    np.testing.assert_allclose(wide, [float(exact(v)) for v in values], rtol=1e-15)


# --- a user's declarations, generated as a user does ---------------------------------------

USER_FILE = '''
import sympy as sp
from symnet import Activation, Loss, Regularizer, Softmax, log_softmax
from symnet.primitives import Logistic
from symnet.symbols import C, K, W, i, lam, s, x, y

scaled = Activation("scaled", sp.sqrt(2) * x + sp.log(3) * Logistic(x) + sp.pi, inputs=x)
log_cosh = Activation("log_cosh", sp.log(sp.cosh(x)), inputs=x)
cube = Activation("cube", x ** 3 / 3, inputs=x)
root = Activation("root", sp.sqrt(x + 1), inputs=x)
gauss_nll = Loss(
    "gauss_nll",
    sp.Sum((s[i] - y[i]) ** 2 / 2 + sp.log(2 * sp.pi) / 2 + sp.E * sp.log(3) * s[i] / 3,
           (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind="real")
root2 = Regularizer("root2", sp.sqrt(2) * lam * sp.Sum(W[i] ** 2, (i, 0, K - 1)), weights=W,
                    size=K, params={lam: sp.Rational(1, 1000)})
kl = Loss("kl", sp.Sum(y[i] * sp.log(y[i]) - y[i] * log_softmax(s, C, i), (i, 0, C - 1)),
          scores=s, size=C, target=y, target_kind="real")
entropy_ce = Loss(
    "entropy_ce",
    sp.Sum(-y[i] * log_softmax(s, C, i) + Softmax(s, C, i) * sp.log(Softmax(s, C, i)) / 10,
           (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind="one_hot")
'''
KINDS = {"activation": "activations", "loss": "losses", "regularizer": "regularizers"}


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> Path:
    """`symnet generate mine.py -o out` in a folder of the user's; the generated folder."""
    folder = tmp_path_factory.mktemp("numbers")
    (folder / "mine.py").write_text(USER_FILE)
    result = symnet("generate", "mine.py", "-o", "out", cwd=folder,
                    env={**os.environ, "SYMNET_NO_CACHE": "1"})
    assert result.returncode == 0, result.stderr
    return folder / "out"


def user_module(out: Path, kind: str, name: str):
    return load(out / KINDS[kind] / f"{name}.py")


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_a_users_irrational_constants_keep_float32_and_their_values(user):
    rng = np.random.default_rng(3)
    v = rng.normal(size=(3, 4))
    scaled = user_module(user, "activation", "scaled")
    expected = math.sqrt(2) * v + math.log(3) * sigmoid(v) + math.pi
    derivative = math.sqrt(2) + math.log(3) * sigmoid(v) * (1 - sigmoid(v))
    for dtype, rtol in ((np.float32, 1e-6), (np.float64, 1e-14)):
        out, cache = scaled.forward(v.astype(dtype))
        dx = scaled.backward(np.ones_like(v, dtype=dtype), cache)
        assert dtypes(out, dx) == [dtype, dtype]
        np.testing.assert_allclose(out, expected, rtol=rtol)
        np.testing.assert_allclose(dx, derivative, rtol=rtol)

    gauss = user_module(user, "loss", "gauss_nll")
    target = rng.normal(size=(3, 4))
    shift = math.e * math.log(3) / 3
    expected = np.mean(((v - target) ** 2 / 2 + math.log(2 * math.pi) / 2
                        + shift * v).sum(axis=1))
    for dtype, rtol in ((np.float32, 1e-5), (np.float64, 1e-14)):
        loss, ds = gauss.loss(v.astype(dtype), target.astype(dtype))
        assert dtypes(loss, ds) == [dtype, dtype]
        np.testing.assert_allclose(loss, expected, rtol=rtol)
        np.testing.assert_allclose(ds, (v - target + shift) / 3, rtol=rtol, atol=1e-6)

    root2 = user_module(user, "regularizer", "root2")
    penalty, dW = root2.penalty(v.astype(np.float32), 0.5)
    assert dtypes(penalty, dW) == [np.float32, np.float32]
    np.testing.assert_allclose(dW, 2 * math.sqrt(2) * 0.5 * v, rtol=1e-6)


def test_a_constant_shared_by_terms_is_not_a_named_temporary(user):
    """A constant CSE would name (tmp = np.e*np.log(3)/3) is written where it is used."""
    code = (user / "losses" / "gauss_nll.py").read_text()
    assert "tmp =" not in code and "np.log(3)" not in code and "0.99544594026944" in code


# --- 0 log 0 = 0 ---------------------------------------------------------------------------


def test_y_log_y_of_a_one_hot_target_is_zero_not_nan(user):
    """KL(y || softmax(s)) on one-hot targets: y*log(y) was NaN at every 0 of y, so the
    loss was NaN at the first step; it is now the cross-entropy, which it equals there."""
    kl = user_module(user, "loss", "kl")
    s = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    y = np.eye(3)[[0, 1]]
    with np.errstate(**STRICT):
        loss, ds = kl.loss(s, y)
    log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    assert np.isfinite(loss) and np.all(np.isfinite(ds))
    np.testing.assert_allclose(loss, -(y * log_p).sum() / 2, rtol=1e-14)
    np.testing.assert_allclose(ds, (np.exp(log_p) - y) / 2, rtol=1e-14)
    with np.errstate(**STRICT):   # a soft target: y log y itself, unchanged
        soft = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
        loss, _ = kl.loss(s, soft)
    np.testing.assert_allclose(loss, (soft * (np.log(soft) - log_p)).sum() / 2, rtol=1e-14)


def test_p_log_p_of_an_underflowing_probability_is_zero_not_nan(user):
    """An entropy term p*log(p) where softmax underflows to 0 (scores 1000 apart)."""
    entropy_ce = user_module(user, "loss", "entropy_ce")
    s = np.array([[0.0, -1000.0, 1.0]])
    y = np.array([[0.0, 0.0, 1.0]])
    with np.errstate(**STRICT):
        loss, ds = entropy_ce.loss(s, y)
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    entropy = np.sum(p[p > 0] * np.log(p[p > 0])) / 10
    assert np.isfinite(loss) and np.all(np.isfinite(ds))
    np.testing.assert_allclose(loss, -np.log(p[0, 2]) + entropy, rtol=1e-14)
    assert ds[0, 1] == 0


# --- overflow: rewritten where a stable form is known, else refused ------------------------


def test_log_cosh_is_rewritten_and_finite_at_1000(user):
    log_cosh = user_module(user, "activation", "log_cosh")
    v = np.array([[-1000.0, -1.0, 0.0, 0.5, 1000.0]])
    with np.errstate(**STRICT):
        out, cache = log_cosh.forward(v)
        dx = log_cosh.backward(np.ones_like(v), cache)
    import mpmath
    np.testing.assert_allclose(out, [[float(mpmath.log(mpmath.cosh(a))) for a in v[0]]],
                               rtol=1e-15)
    np.testing.assert_allclose(dx, np.tanh(v), rtol=1e-15)
    code = (user / "activations" / "log_cosh.py").read_text()
    assert "np.cosh" not in code and "np.sinh" not in code


def test_what_stays_finite_at_1000_is_generated(user):
    """x**3/3 is 3.3e8 at 1000: finite in float64, so not refused; nor is sqrt(x + 1),
    NaN at -1000 (outside its domain, which is no overflow)."""
    out, _ = user_module(user, "activation", "cube").forward(np.array([1000.0]))
    assert out[0] == 1e9 / 3
    with np.errstate(invalid="ignore"):
        out, _ = user_module(user, "activation", "root").forward(np.array([-1000.0, 3.0]))
    assert np.isnan(out[0]) and out[1] == 2


OVERFLOWING = {   # name: (forward, what the one line names, what it tells to declare)
    "cosh_act": ("sp.cosh(x)", "cosh(x)", "tanh"),
    "sinh_act": ("sp.sinh(x) / 2", "sinh(x)", "tanh"),
    "exp_act": ("sp.exp(x) - 1", "exp(x) - 1", "Softplus"),
    "exp_times": ("x * sp.exp(x)", "exp(x)", "Logistic"),
    # (x**2 + 1)**60 is 1e360 at 1000 (x**200 would do, but symnet.derive takes minutes on
    # it: 2 s on x**20, 85 s on x**40)
    "power": ("(x ** 2 + 1) ** 60", "(x**2 + 1)**60", "low power"),
    "exp_inside_tanh": ("sp.tanh(sp.exp(x))", "exp(x)", "Softplus"),
}


@pytest.mark.parametrize("name", OVERFLOWING)
def test_an_activation_that_overflows_at_1000_is_refused_in_one_line(name, tmp_path, capsys):
    forward, shown, advice = OVERFLOWING[name]
    (tmp_path / "act.py").write_text(
        f"import sympy as sp\nfrom symnet import Activation\nfrom symnet.symbols import x\n\n"
        f"{name} = Activation({name!r}, {forward}, inputs=x)\n")
    status = main(["generate", f"{tmp_path / 'act.py'}:{name}", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("symnet: error: ") and f"computes {shown}," in err
    assert "overflows float64 at x = " in err and advice in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", [n for n, d in REGISTRY.items() if isinstance(d, Activation)])
def test_no_catalog_activation_is_refused(name):
    assert lower(derivation_of(name)).functions["forward"].body
