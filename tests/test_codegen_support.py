"""Helpers for the code-generation tests: load generated modules, draw inputs for any
declaration (away from its kinks), run a module the way its calling convention says,
check gradients by central differences, and compute a high-precision reference with
symnet's mpmath evaluator. The tests at the bottom show the helpers catch what they
must."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import mpmath
import numpy as np
import pytest

from symnet.evaluate import Evaluator, NearKink
from symnet.spec import Activation, Regularizer

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "generated"
FOLDERS = {"activation": "activations", "loss": "losses", "regularizer": "regularizers"}
_loaded = itertools.count()


def load(path: Path, source: str | None = None):
    """A module from a file (or from `source` text, as if it were that file)."""
    spec = importlib.util.spec_from_file_location(f"_generated_{next(_loaded)}", path)
    module = importlib.util.module_from_spec(spec)
    if source is None:
        spec.loader.exec_module(module)
    else:
        exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def module_path(decl, root: Path = GENERATED) -> Path:
    return root / FOLDERS[decl.kind] / f"{decl.name}.py"


def generated(decl, root: Path = GENERATED):
    return load(module_path(decl, root))


# --- inputs --------------------------------------------------------------------------------


def draw(decl, rng, shape, dtype=np.float64, scale=1.0):
    """(wrt, fixed): the arrays to differentiate with respect to, by name, and the others
    (an activation's dout, a loss's target), for a batch of `shape`."""
    def normal(size):
        return (rng.normal(size=size) * scale).astype(dtype)

    if isinstance(decl, Activation):
        return {str(v): normal(shape) for v in decl.inputs}, {"dout": normal(shape)}
    if isinstance(decl, Regularizer):
        return {"W": normal(shape)}, {}
    if not decl.is_vector:
        labels = rng.choice([-1.0, 1.0], size=shape[0]) if decl.target is not None else None
        return {"s": normal(shape[0])}, {"target": labels}
    n, c = shape
    classes = rng.integers(0, c, size=n)
    targets = {"class_index": classes, "one_hot": np.eye(c, dtype=dtype)[classes],
               "real": normal((n, c)), None: None}
    return {"s": normal((n, c))}, {"target": targets[decl.target_kind]}


def run(decl, module, wrt: dict, fixed: dict):
    """(scalar value, [gradient of each array of wrt]) by the module's calling convention:
    an activation's value is sum(out * dout)."""
    arrays = list(wrt.values())
    if isinstance(decl, Activation):
        out, cache = module.forward(*arrays)
        grads = module.backward(fixed["dout"], cache)
        grads = list(grads) if isinstance(grads, tuple) else [grads]
        return np.sum(out * fixed["dout"]), grads
    if isinstance(decl, Regularizer):
        value, grad = module.penalty(*arrays)
        return value, [grad]
    target = [fixed["target"]] if fixed.get("target") is not None else []
    value, grad = module.loss(*arrays, *target)
    return value, [grad]


def numerical_gradients(decl, module, wrt: dict, fixed: dict, h=1e-5) -> list:
    """Central differences of the module's value, entry by entry."""
    grads = []
    for array in wrt.values():
        grad = np.zeros_like(array)
        for n in range(array.size):
            old = array.flat[n]
            array.flat[n] = old + h
            above = run(decl, module, wrt, fixed)[0]
            array.flat[n] = old - h
            below = run(decl, module, wrt, fixed)[0]
            array.flat[n] = old
            grad.flat[n] = (above - below) / (2 * h)
        grads.append(grad)
    return grads


def relative_error(a, b) -> float:
    """||a - b|| / (||a|| + ||b||): one number per gradient, insensitive to entries that
    are exactly zero on one side and round-off on the other."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale else 0.0


def gradient_error(decl, module, wrt, fixed) -> float:
    _, analytic = run(decl, module, wrt, fixed)
    numerical = numerical_gradients(decl, module, wrt, fixed)
    return max(relative_error(a, n) for a, n in zip(analytic, numerical, strict=True))


# --- high precision ------------------------------------------------------------------------


def _samples(decl, wrt: dict, fixed: dict):
    """(symbols, draw) per sample (a loss) or per element (an activation, a regulariser's
    whole weight array), for symnet's mpmath evaluator."""
    mp = mpmath.mpf
    if isinstance(decl, Activation):
        arrays = [wrt[str(v)] for v in decl.inputs]
        for n in range(arrays[0].size):
            yield n, {v: mp(float(a.flat[n])) for v, a in zip(decl.inputs, arrays,
                                                              strict=True)}, None
    elif isinstance(decl, Regularizer):
        W = wrt["W"]
        yield 0, {decl.size: W.size}, lambda base, idx: mp(float(W.flat[idx[0]]))
    elif not decl.is_vector:
        s, labels = wrt["s"], fixed["target"]
        for n in range(s.size):
            symbols = {decl.scores: mp(float(s[n]))}
            if labels is not None:
                symbols[decl.target] = mp(float(labels[n]))
            yield n, symbols, None
    else:
        s, target = wrt["s"], fixed["target"]
        for n in range(s.shape[0]):
            symbols = {decl.size: s.shape[1]}
            if decl.target_kind == "class_index":
                symbols[decl.target] = int(target[n])
            rows = {decl.scores: s[n]}
            if decl.target_kind in ("one_hot", "real"):
                rows[decl.target] = target[n]
            yield n, symbols, lambda base, idx, rows=rows: mp(float(rows[base][idx[0]]))


def away_from_kinks(decl, wrt: dict, fixed: dict, margin=1e-3) -> bool:
    forward = decl.forward.xreplace(decl.params)
    for _, symbols, entries in _samples(decl, wrt, fixed):
        try:
            Evaluator(symbols, entries, margin)(forward)
        except NearKink:
            return False
    return True


def draw_away_from_kinks(decl, rng, shape, **options):
    for _ in range(200):
        wrt, fixed = draw(decl, rng, shape, **options)
        if away_from_kinks(decl, wrt, fixed):
            return wrt, fixed
    raise AssertionError(f"{decl.name}: no point away from the kinks in 200 draws")


def reference(decl, derivation, wrt: dict, fixed: dict):
    """(value, [gradient per array]) at 50 digits from the derived expressions, rounded
    to float64 only at the end; same conventions as `run`."""
    bind = decl.params
    if isinstance(decl, Activation):
        dout = fixed["dout"]
        out = np.zeros(dout.shape)
        grads = [np.zeros(dout.shape) for _ in decl.inputs]
        for n, symbols, _ in _samples(decl, wrt, fixed):
            evaluate = Evaluator(symbols, None, 0)
            out.flat[n] = float(evaluate(decl.forward.xreplace(bind)))
            for grad, v in zip(grads, decl.inputs, strict=True):
                local = evaluate(derivation.derivatives[v].xreplace(bind))
                grad.flat[n] = float(local * mpmath.mpf(float(dout.flat[n])))
        return out, grads
    regularizer = isinstance(decl, Regularizer)
    scores = wrt["W"] if regularizer else wrt["s"]
    batch = 1 if regularizer else scores.shape[0]
    total, grad = mpmath.mpf(0), np.zeros(scores.shape)
    gradient = derivation.gradient.xreplace(bind)
    for n, symbols, entries in _samples(decl, wrt, fixed):
        total += Evaluator(symbols, entries, 0)(decl.forward.xreplace(bind))
        if not decl.is_vector:
            grad[n] = float(Evaluator(symbols, entries, 0)(gradient) / batch)
            continue
        row = grad.reshape(-1) if regularizer else grad[n]
        for k in range(row.size):
            row[k] = float(Evaluator({**symbols, decl.index: k}, entries, 0)(gradient) / batch)
    return float(total / batch), [grad]


# --- the helpers catch what they must ------------------------------------------------------


class _VectorLoss:
    """Just enough of a loss declaration for `run`: a score array and a real target."""

    is_vector, target_kind = True, "real"


def test_gradient_error_catches_a_planted_wrong_gradient():
    class Right:
        @staticmethod
        def loss(s, y):
            return np.sum((s - y) ** 2) / s.shape[0], 2 * (s - y) / s.shape[0]

    class Wrong:  # the sign of y flipped in the gradient only
        @staticmethod
        def loss(s, y):
            return Right.loss(s, y)[0], 2 * (s + y) / s.shape[0]

    rng = np.random.default_rng(0)
    wrt, fixed = {"s": rng.normal(size=(3, 2))}, {"target": rng.normal(size=(3, 2))}
    assert gradient_error(_VectorLoss(), Right, wrt, fixed) < 1e-8
    assert gradient_error(_VectorLoss(), Wrong, wrt, fixed) > 0.1


def test_away_from_kinks_sees_relu_at_zero():
    from symnet.catalog import REGISTRY

    relu = REGISTRY["relu"]
    assert not away_from_kinks(relu, {"x": np.array([1.0, 1e-5])}, {})
    assert away_from_kinks(relu, {"x": np.array([1.0, -0.5])}, {})


@pytest.mark.parametrize("value", [1e-300, 0.0])
def test_relative_error_is_zero_only_for_equal_arrays(value):
    assert relative_error([value, 1.0], [value, 1.0]) == 0.0
    assert relative_error([value, 1.0], [value, 1.1]) > 0.01
