"""A network declared with tensor stages, trained through its one generated module.

`symnet train --network FILE.py:NAME` takes a `Network` whose stages include a tensor layer
(affine, batchnorm, relu, affine, with a loss): symnet generates one module for it
(symnet.index.lower_chain) and this class trains with it, in the calling convention of
symnet.runtime.network.Network (`loss_and_gradients`, `predict`, `accuracy`, `params`), so
that the training loop, the optimisers and the checkpoints are the same:

* the weights are the module's inputs after X (SHAPES, in the declaration's sizes: X's
  features and the output's classes come from the data, the others, in order of first
  use, from --hidden); a weight of rank 2 starts He-initialised, a batch norm's gamma at 1
  (ROLES), every other at 0;
* each training forward updates the running statistics (RUNNING, read from the cache at
  CACHE's places) as runtime.network's norm does; prediction calls inference() with them.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from symnet.errors import DataError
from symnet.runtime.network import RUNNING_START

#: a weight's role in its stage's layer -> its initial value, where not He or 0
ONES = {"gamma"}


class DeclaredNetwork:
    """The generated module of a declared network, its parameters and running statistics."""

    def __init__(self, module: ModuleType, features: int, classes: int, hidden: list,
                 seed: int = 0, dtype=np.float64, momentum: float = 0.9):
        for constant in ("SHAPES", "ROLES", "TARGET_KIND"):
            if not hasattr(module, constant):
                raise DataError(f"the module {module.__name__} has no {constant}: a network "
                                f"trained from its declaration needs a loss (loss=...)")
        self.module, self.momentum = module, momentum
        self.target_kind = module.TARGET_KIND
        names = list(module.SHAPES)
        self.input, self.output, self.weights = names[0], names[-1], names[1:-1]
        sizes = self._sizes(features, classes, hidden)
        self.sizes = (features, *hidden, classes)
        self.params = self._initial(sizes, seed, np.dtype(dtype))
        self.running = [f"running_{name}" for name in getattr(module, "RUNNING", ())]
        if self.running:
            _, cache = module.forward(np.zeros((2, features), dtype), *self._weights())
            for name, key in zip(module.RUNNING, self.running, strict=True):
                start = RUNNING_START.get(name.rsplit("_", 1)[-1], 0.0)
                self.params[key] = np.full_like(cache[module.CACHE.index(name)], start)

    def _sizes(self, features: int, classes: int, hidden: list) -> dict:
        """Size name -> value: the input's features, the output's classes, --hidden for the
        others in the order the weights first use them."""
        shapes = self.module.SHAPES
        batch, feature = shapes[self.input]
        sizes = {feature: features, shapes[self.output][-1]: classes}
        free = []
        for name in self.weights:
            free += [s for s in shapes[name] if s not in sizes and s != batch and s not in free]
        if len(hidden) != len(free):
            raise DataError(f"--hidden gives {len(hidden)} size(s), but the network's sizes "
                            f"to choose are {', '.join(free) or 'none'} ({len(free)})")
        return sizes | dict(zip(free, hidden, strict=True))

    def _initial(self, sizes: dict, seed: int, dtype) -> dict:
        rng = np.random.default_rng(seed)
        params = {}
        for name in self.weights:
            shape = tuple(sizes[s] for s in self.module.SHAPES[name])
            if len(shape) == 2:
                params[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / shape[0])
                                ).astype(dtype)
            else:
                fill = 1.0 if self.module.ROLES.get(name) in ONES else 0.0
                params[name] = np.full(shape, fill, dtype=dtype)
        return params

    def _weights(self) -> list:
        return [self.params[name] for name in self.weights]

    def loss_and_gradients(self, x: np.ndarray, target: np.ndarray):
        """(data loss, 0: the declaration has no penalty, gradients by weight name); the
        running statistics move towards the batch's."""
        scores, cache = self.module.forward(x, *self._weights())
        for name, key in zip(getattr(self.module, "RUNNING", ()), self.running, strict=True):
            average = self.params[key]
            average *= self.momentum
            average += (1 - self.momentum) * cache[self.module.CACHE.index(name)]
        loss, dscores = self.module.scores_loss(scores, target)
        grads = self.module.backward(dscores, cache)[1:]     # dX is not trained
        return loss, 0.0, dict(zip(self.weights, grads, strict=True))

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.running:
            scores = self.module.inference(x, *self._weights(),
                                           *(self.params[k] for k in self.running))
        else:
            scores = self.module.forward(x, *self._weights())[0]
        return np.argmax(scores, axis=1)

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == labels))
