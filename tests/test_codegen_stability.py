"""Stable by construction: at logits of +-1000 in float64 and +-100 in float32, and at
activation inputs of +-1000, every generated module gives finite values and gradients
that match a 50-digit reference, with numpy set to raise on overflow, invalid values
and division by zero; float32 in gives float32 out."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

from symnet.catalog import REGISTRY
from symnet.declare.scalar import Activation, Regularizer
from tests.conftest import derivation_of
from tests.helpers import generated, module_path, reference, run

NAMES = list(REGISTRY)
#: (dtype, the size of extreme scores, relative tolerance against the 50-digit reference)
EXTREMES = {"float64": (np.float64, 1000.0, 1e-12), "float32": (np.float32, 100.0, 1e-5)}
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise"}


def extreme_inputs(decl, dtype, scale, rng):
    """Inputs at +-scale (activations always at +-1000), with zeros and halves between,
    never on a kink: differences of such scores are multiples of scale/2, never -1."""
    levels = np.array([-1.0, -0.5, 0.5, 1.0]) if isinstance(decl, Activation) \
        else np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    if isinstance(decl, Activation):
        values = 1000.0 * levels
        shuffled = [rng.permutation(np.tile(values, 2)).reshape(2, 4) for _ in decl.inputs]
        if len(shuffled) == 2:   # maxout: never a tie
            shuffled[1] = shuffled[0] + rng.choice([-300.0, 300.0], size=(2, 4))
        wrt = {str(v): a.astype(dtype) for v, a in zip(decl.inputs, shuffled, strict=True)}
        return wrt, {"dout": rng.normal(size=(2, 4)).astype(dtype)}
    if isinstance(decl, Regularizer):
        return {"W": (scale * rng.choice(levels, size=(3, 4))).astype(dtype)}, {}
    if not decl.is_vector:
        s = scale * rng.choice(levels, size=6)
        return {"s": s.astype(dtype)}, {"target": rng.choice([-1.0, 1.0], size=6)}
    n, c = 4, 3
    s = scale * np.array([rng.permutation([1.0, 0.0, -1.0]) for _ in range(n)])
    classes = rng.integers(0, c, size=n)
    targets = {"class_index": classes, "one_hot": np.eye(c, dtype=dtype)[classes],
               "real": rng.normal(size=(n, c)).astype(dtype)}
    return {"s": s.astype(dtype)}, {"target": targets[decl.target_kind]}


def assert_close(got, expected, rtol):
    """Within rtol of the reference, relative to the entry or, for entries that are tiny
    next to the others (a saturated gradient), to the largest entry."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert np.all(np.isfinite(got))
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("precision", EXTREMES)
@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_give_finite_values_matching_a_high_precision_reference(name, precision):
    decl = REGISTRY[name]
    dtype, scale, rtol = EXTREMES[precision]
    module = generated(decl)
    for seed in (0, 1):
        wrt, fixed = extreme_inputs(decl, dtype, scale, np.random.default_rng(seed))
        with np.errstate(**STRICT):
            value, grads = run(decl, module, wrt, fixed)
            out = module.forward(*wrt.values())[0] if isinstance(decl, Activation) else value
        expected_out, expected_grads = reference(decl, derivation_of(name), wrt, fixed)
        assert_close(out, expected_out, rtol)
        for got, expected in zip(grads, expected_grads, strict=True):
            assert got.dtype == dtype
            assert_close(got, expected, rtol)


@pytest.mark.parametrize("precision", EXTREMES)
@pytest.mark.parametrize("name", NAMES)
def test_float32_in_gives_float32_out_and_float64_stays_float64(name, precision):
    decl = REGISTRY[name]
    dtype, scale, _ = EXTREMES[precision]
    wrt, fixed = extreme_inputs(decl, dtype, scale, np.random.default_rng(2))
    module = generated(decl)
    with np.errstate(**STRICT):
        if isinstance(decl, Activation):
            out, cache = module.forward(*wrt.values())
            grads = module.backward(fixed["dout"], cache)
            results = [out, *(grads if isinstance(grads, tuple) else (grads,))]
        else:
            results = list(run(decl, module, wrt, fixed)[:1]) + run(decl, module, wrt, fixed)[1]
    assert [np.asarray(r).dtype for r in results] == [dtype] * len(results)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1000.0), (np.float32, 100.0)])
def test_softmax_ce_at_logits_far_apart(dtype, scale):
    softmax_ce = generated(REGISTRY["softmax_ce"])
    logits = np.array([[scale, 0.0, -scale]], dtype=dtype)
    with np.errstate(**STRICT):
        loss, dlogits = softmax_ce.loss(logits, np.array([[0.0, 0.0, 1.0]], dtype=dtype))
    assert loss == 2 * scale and loss.dtype == dtype
    np.testing.assert_allclose(dlogits, [[1.0, 0.0, -1.0]], atol=1e-30)


def _loss_modules():
    return [n for n in NAMES if REGISTRY[n].kind == "loss" and REGISTRY[n].is_vector]


@pytest.mark.parametrize("name", _loss_modules())
def test_no_exp_of_raw_scores_and_no_log_of_a_sum_of_their_exps(name):
    """The score array itself never reaches np.exp or np.log: only shifted scores do, or
    minus their magnitude (np.exp(-np.abs(s)) <= 1, the logistic function's form)."""
    tree = ast.parse(module_path(REGISTRY[name]).read_text())
    function = next(f for f in tree.body if isinstance(f, ast.FunctionDef))
    scores = function.args.args[0].arg
    for call in ast.walk(function):
        if isinstance(call, ast.Call) and ast.unparse(call.func) in ("np.exp", "np.log"):
            if ast.unparse(call.func) == "np.exp" and re.fullmatch(r"-np\.abs\(\w+\)",
                                                                    ast.unparse(call.args[0])):
                continue
            used = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
            assert scores not in used, ast.unparse(call)


def test_the_naive_lambdified_formulas_fail_where_the_generated_code_does_not():
    """The checks above have teeth: sympy's lambdify of the declared sigmoid overflows at
    x = -1000, and of the naive softmax cross-entropy gives nan at logits +-1000."""
    import sympy as sp

    from symnet.primitives import naive_form
    from tests.concrete import activation_functions

    naive_sigmoid = activation_functions(REGISTRY["sigmoid"], REGISTRY["sigmoid"].forward)
    with np.errstate(**STRICT), pytest.raises(FloatingPointError):
        naive_sigmoid(np.array([-1000.0]))
    s = sp.IndexedBase("s", real=True)
    naive = naive_form(REGISTRY["softmax_ce"].forward).subs(sp.Symbol("C", integer=True,
                                                                       positive=True), 3)
    naive = naive.doit().subs({sp.IndexedBase("y", real=True)[n]: v
                               for n, v in enumerate([0, 0, 1])})
    value = sp.lambdify([[s[0], s[1], s[2]]], naive, "numpy")
    with np.errstate(all="ignore"):
        assert not np.isfinite(value([1000.0, 0.0, -1000.0]))
    with np.errstate(**STRICT):
        loss, _ = generated(REGISTRY["softmax_ce"]).loss(np.array([[1000.0, 0.0, -1000.0]]),
                                                         np.array([[0.0, 0.0, 1.0]]))
    assert loss == 2000.0
