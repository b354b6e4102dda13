"""The fused path: one generated training step for the whole network.

`symnet generate` writes, for the networks the runtime builds most often and each
optimiser (SGD, momentum, Adam), a module in generated/networks/ whose ``step()`` runs the
forward, the loss, the penalty, the backward and the optimiser's rules in place, over
buffers it reuses (`symnet.codegen.step.lower`). `train()` uses one when it matches the
network exactly: the same layers and activation, the same depth, the catalog's own loss and
regulariser modules, biases, and the optimiser. `symnet train` generates a step for any
other network into symnet's cache and hands it to train() (`module=`); without one (a
network without biases, an optimiser of the user's own) training goes layer by layer.

The optimiser's state (momentum's velocities, Adam's moments and step count) stays the
runtime optimiser object's: the step updates its arrays in place (`state_array`), so that a
checkpoint saves them and a resumed run, on either path, continues exactly.

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
from symnet.runtime.optim import OPTIMIZERS


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


def optimizer_name(optimizer) -> str | None:
    """The declared optimiser `optimizer` is (sgd, momentum, adam), or None for any other
    (a subclass may update otherwise)."""
    name = getattr(optimizer, "name", None)
    return name if OPTIMIZERS.get(name) is type(optimizer) else None


def find_module(net, optimizer: str = "sgd") -> ModuleType | None:
    """The generated step of generated/networks/ that trains `net` by the optimiser named
    `optimizer`, or None."""
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
        if getattr(module, "OPTIMIZER", None) == optimizer and _matches(module, want):
            return module
    return None


def fits(module: ModuleType, net, optimizer: str) -> bool:
    """Whether a step generated for `net` elsewhere (symnet train's cache) takes its
    parameters and optimiser: its depth, its parameter names and its optimiser."""
    stages = getattr(module, "STAGES", ())
    return (getattr(module, "OPTIMIZER", None) == optimizer and net.biases
            and len(stages) == 2 * net.depth - 1
            and sorted(getattr(module, "PARAMETERS", ())) == sorted(net.params))


class FusedStep:
    """A `symnet.runtime.train.Step` that calls a generated step on a network's parameters
    and its optimiser's state, with a workspace per batch size."""

    def __init__(self, module: ModuleType, net, optimizer, label: str | None = None):
        self.module, self.net, self.optimizer = module, net, optimizer
        hyper = {**getattr(module, "DEFAULTS", {}), **optimizer.hyper(),
                 "lam": net.lam if net.regularizer is not None else 0.0}
        self.hyper = [hyper[h] for h in module.HYPERPARAMETERS]
        self.state = getattr(module, "STATE", ())
        self.counted = getattr(module, "COUNTER", None) is not None
        self.label = label or f"generated/networks/{Path(module.__file__).stem}.py"
        self.workspaces: dict = {}

    @property
    def name(self) -> str:
        return Path(self.module.__file__).stem

    def __call__(self, x: np.ndarray, target: np.ndarray) -> tuple[float, bool]:
        """(loss at the parameters before the step, whether it is finite); updates them and
        the optimiser's state. Only the loss is seen: a gradient that is not finite while
        its loss is shows one step later, as the loss of the parameters it made."""
        params = self.net.params
        arguments = [params[p] for p in self.module.PARAMETERS]
        key = (x.shape[0], arguments[0].dtype)
        if key not in self.workspaces:
            self.workspaces[key] = self.module.workspace(x, *arguments)
        arguments += [self.optimizer.state_array(kind, name, params[name])
                      for kind, name in self.state]
        if self.counted:
            arguments.append(self.optimizer.steps)
        data_loss, penalty = self.module.step(x, target, *arguments, *self.hyper,
                                              self.workspaces[key])
        if self.counted:
            self.optimizer.steps += 1
        total = float(data_loss + penalty)
        return total, math.isfinite(total)


def fused_step(net, optimizer, module: ModuleType | None = None,
               label: str | None = None) -> FusedStep | None:
    """The fused step for `net` trained by `optimizer`, or None (train layer by layer):
    `module` if given and it fits, else a committed one of generated/networks/."""
    name = optimizer_name(optimizer)
    if name is None:
        return None
    if module is not None:
        return FusedStep(module, net, optimizer, label) if fits(module, net, name) else None
    module = find_module(net, name)
    return FusedStep(module, net, optimizer) if module is not None else None
