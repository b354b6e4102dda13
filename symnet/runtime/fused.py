"""The fused path: one generated training step for the whole network.

`symnet generate` writes, for the networks the runtime builds most often, a module in
generated/networks/ whose ``step()`` runs the forward, the loss, the L2 penalty, the
backward and the SGD update in place, over buffers it reuses (`symnet.codegen.network_step`).
`train()` uses it when one matches the network exactly: the same layers and activation,
the same depth, the catalog's own loss and regulariser modules, biases, and plain SGD.
Anything else (momentum, Adam, a user's own module, no biases) trains layer by layer.

The fused step computes the same formulas as the layer-by-layer path, in another order
(the L2 term and the update folded into one gemm), so the two agree to rounding (float64:
rtol 1e-12, tested), not bit for bit. Each path on its own is deterministic.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import numpy as np

from symnet.runtime import modules
from symnet.runtime.optim import SGD


def _catalog_name(module: ModuleType | None, kind: str) -> str | None:
    """The catalog name of a generated module the runtime loaded from generated/<kind>/,
    or None (a user's module, or none)."""
    path = getattr(module, "__file__", None)
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        folder = (modules.generated_dir() / kind).resolve()
    except modules.ModuleNotGenerated:
        return None
    return path.stem if path.parent == folder else None


def wanted(net) -> dict | None:
    """What a generated step must declare to train `net`, or None if no step can."""
    activation = _catalog_name(net.activation, "activations")
    affine = _catalog_name(net.affine, "layers")
    loss = _catalog_name(net.loss, "losses")
    if None in (activation, affine, loss) or not net.biases or net.norm is not None:
        return None     # no generated step has a norm stage yet
    regularized = net.regularizer is not None and net.lam
    regularizer = _catalog_name(net.regularizer, "regularizers") if regularized else None
    if regularized and regularizer is None:
        return None
    stages = (affine,) + (activation, affine) * (net.depth - 1)
    return {"STAGES": stages, "LOSS": loss, "REGULARIZER": regularizer,
            "PARAMETERS": sorted(net.params)}


def _matches(module: ModuleType, want: dict) -> bool:
    same = (module.STAGES == want["STAGES"] and module.LOSS == want["LOSS"]
            and sorted(module.PARAMETERS) == want["PARAMETERS"])
    # no regulariser (or lambda = 0) is any step's regulariser at lam = 0: penalty 0
    regularizer = want["REGULARIZER"]
    return same and (module.REGULARIZER == regularizer or regularizer is None)


def find_module(net) -> ModuleType | None:
    """The generated SGD step that trains `net`, or None."""
    want = wanted(net)
    if want is None:
        return None
    try:
        folder = modules.generated_dir() / "networks"
    except modules.ModuleNotGenerated:
        return None
    for path in sorted(folder.glob("*.py")):
        if path.name in ("__init__.py", "blas.py"):     # blas.py: the steps' shared helpers
            continue
        module = modules.load_path(path)
        if getattr(module, "OPTIMIZER", None) == "sgd" and _matches(module, want):
            return module
    return None


class FusedStep:
    """A `symnet.runtime.train.Step` that calls a generated step on a network's parameters,
    with a workspace per batch size."""

    def __init__(self, module: ModuleType, net, lr: float):
        self.module, self.net = module, net
        hyper = {"lr": lr, "lam": net.lam if net.regularizer is not None else 0.0}
        self.hyper = [hyper[h] for h in module.HYPERPARAMETERS]
        self.workspaces: dict = {}

    @property
    def name(self) -> str:
        return Path(self.module.__file__).stem

    def __call__(self, x: np.ndarray, target: np.ndarray) -> tuple[float, bool]:
        """(loss at the parameters before the step, whether it is finite); updates them.
        Only the loss is seen: a gradient that is not finite while its loss is shows one
        step later, as the loss of the parameters it made."""
        params = [self.net.params[p] for p in self.module.PARAMETERS]
        key = (x.shape[0], params[0].dtype)
        if key not in self.workspaces:
            self.workspaces[key] = self.module.workspace(x, *params)
        data_loss, penalty = self.module.step(x, target, *params, *self.hyper,
                                              self.workspaces[key])
        total = float(data_loss + penalty)
        return total, math.isfinite(total)


def fused_step(net, optimizer) -> FusedStep | None:
    """The fused step for `net` trained by `optimizer`, or None (train layer by layer)."""
    if type(optimizer) is not SGD:
        return None
    module = find_module(net)
    return FusedStep(module, net, optimizer.lr) if module is not None else None
