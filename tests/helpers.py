"""What several test files share: the `symnet` command run as a subprocess; loading
generated modules, drawing inputs for any declaration (away from its kinks), running a
module the way its calling convention says, checking gradients by central differences and
computing a high-precision reference with symnet's mpmath evaluator; mutations to plant in
generated code; the fused steps' layer-by-layer counterparts. tests/test_gradient_checker.py
shows the gradient helpers catch what they must; the layers' helpers are in
tests/layer_helpers.py."""

from __future__ import annotations

import ast
import atexit
import functools
import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np

from symnet.codegen.step.lower import BLAS_HELPERS
from symnet.declare.scalar import Activation, Regularizer
from symnet.runtime import modules
from symnet.runtime.network import Network, encode_targets, initial_parameters
from symnet.verify.at_point import Evaluator, NearKink
from tests.command_server import CommandServer

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "generated"
FOLDERS = {"activation": "activations", "loss": "losses", "regularizer": "regularizers"}
_loaded = itertools.count()


def load(path: Path, source: str | None = None):
    """A new module from a file (or from `source` text, as if it were that file), a member
    of its folder's package as the runtime loads it: a training step imports its folder's
    blas.py (`from .blas import gemm`), shared by every step loaded from that folder."""
    package = modules.folder_package(path.parent)
    spec = importlib.util.spec_from_file_location(f"{package}._generated_{next(_loaded)}", path)
    module = importlib.util.module_from_spec(spec)
    if source is None:
        spec.loader.exec_module(module)
    else:
        exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def emitted(decl, folder: Path, source: str = "test"):
    """The declaration derived, lowered and written as its numpy module in `folder`, loaded."""
    from symnet.codegen.emit import render_module
    from symnet.codegen.lower import lower
    from symnet.derive import derive

    path = folder / f"{decl.name}.py"
    path.write_text(render_module(lower(derive(decl)), source))
    return load(path)


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
    an activation's or a tensor layer's value is sum(out * dout)."""
    arrays = list(wrt.values())
    if isinstance(decl, Activation) or getattr(decl, "kind", "") == "tensor layer":
        out, cache = module.forward(*arrays, *fixed.get("constants", ()))
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


# --- the command ---------------------------------------------------------------------------


def symnet(*args, cwd=ROOT, env=None, timeout=600, fresh=False) -> subprocess.CompletedProcess:
    """`symnet ARGS` as a user runs it, in a process of its own (this checkout's code): a fork
    of a warm interpreter (tests/command_server.py), or a fresh `python -m symnet` when
    `fresh` or when `env` sets the interpreter up otherwise (PYTHONPATH, PYTHONHASHSEED)."""
    args = [str(arg) for arg in args]
    environment = dict(os.environ if env is None else env)
    server = _command_server()
    if fresh or not server.serves(environment):
        return subprocess.run([sys.executable, "-m", "symnet", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    return server.run(args, Path(cwd), environment, timeout)


@functools.cache
def _command_server() -> CommandServer:
    """One server per test process, started with the environment the run started with."""
    server = CommandServer(ROOT, os.environ)
    atexit.register(server.stop)
    return server


# --- mutations planted in generated code -------------------------------------------------


def kind_of(decl) -> str:
    if isinstance(decl, (Activation, Regularizer)):
        return decl.kind
    return "vector loss" if decl.is_vector else "scalar loss"


class FirstOnly(ast.NodeTransformer):
    """Rewrites the first node (in reading order) that `change` accepts."""

    def __init__(self, change):
        self.change, self.done = change, False

    def visit(self, node):
        if not self.done:
            changed = self.change(node)
            if changed is not None:
                self.done = True
                return changed
        return super().visit(node)


NEGATED = {ast.Gt: ast.LtE, ast.GtE: ast.Lt, ast.Lt: ast.GtE, ast.LtE: ast.Gt}


def flip_sign(node):
    if isinstance(node, ast.Assign) and node.targets[0].id.startswith("d"):
        node.value = ast.UnaryOp(ast.USub(), node.value)   # in place: a statement of a body
        return node


def drop_term(node):
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        return node.left


def flip_comparison(node):
    if isinstance(node, ast.Compare) and type(node.ops[0]) in NEGATED:
        return ast.Compare(node.left, [NEGATED[type(node.ops[0])]()], node.comparators)


MUTATIONS = {"flipped sign": flip_sign, "dropped term": drop_term,
             "flipped comparison": flip_comparison}


# --- the fused steps' layer-by-layer counterparts -----------------------------------------

LR, LAM = 0.3, 1e-2


#: the hyper-parameters a generated step may take, by the names of its arguments
HYPER = {"lr": LR, "lam": LAM, "mu": 0.9, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def step_arguments(module, params: dict, lr: float = LR, lam: float = LAM) -> list:
    """A step's arguments after the batch: its parameters (from `params`, by name), its
    optimiser's state (new zero arrays; Adam's count of steps done, 0) and hyper-parameters."""
    values = {**HYPER, **getattr(module, "DEFAULTS", {}), "lr": lr, "lam": lam}
    state = [np.zeros_like(params[name]) for _, name in getattr(module, "STATE", ())]
    counter = [0] if getattr(module, "COUNTER", None) else []
    return [*(params[p] for p in module.PARAMETERS), *state, *counter,
            *(values[h] for h in module.HYPERPARAMETERS)]


def numpy_blas():
    """A copy of generated/networks/blas.py of its own, its BLAS tables emptied: its helpers
    compute with numpy alone, as without scipy (the shared blas is left as it is)."""
    blas = load(GENERATED / "networks" / "blas.py")
    blas._GEMM, blas._GEMV, blas._DOT = {}, {}, {}
    return blas


def step_module(name: str, numpy_only: bool = False):
    """A fresh module of a generated step; `numpy_only`: its BLAS helpers (the names it
    imported from blas.py) rebound to a numpy-only copy's."""
    module = load(GENERATED / "networks" / f"{name}.py")
    if numpy_only:
        blas = numpy_blas()
        for helper in BLAS_HELPERS:
            if hasattr(module, helper):
                setattr(module, helper, getattr(blas, helper))
    return module


def layered(step, dtype, regularizer=None, seed=0):
    """The runtime's layer-by-layer network for a step's declaration, small sizes, biases
    away from zero (so that a bias update that went missing shows)."""
    network = step.network
    activation = network.stages[1].layer.name
    depth = sum(s.layer.name == "affine" for s in network.stages)
    sizes = (7,) + (9,) * (depth - 1) + (4,)
    reg = regularizer or modules.load("regularizers", network.regularizer.name)
    net = Network(sizes, modules.load("layers", "affine"), modules.load("activations", activation),
                  modules.load("losses", network.loss.name), "one_hot", reg, LAM)
    net.params = initial_parameters(sizes, activation, seed, dtype)
    rng = np.random.default_rng(seed + 1)
    for name in [n for n in net.params if n.startswith("b")]:
        net.params[name] = (0.1 * rng.standard_normal(net.params[name].shape)).astype(dtype)
    return net


def batch(net, dtype, rows=11, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, net.sizes[0])).astype(dtype)
    labels = rng.integers(0, net.sizes[-1], rows)
    return x, encode_targets(labels, net.sizes[-1], "one_hot", dtype)
