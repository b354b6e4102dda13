"""Parameter updates: vanilla gradient descent as on the slide, momentum, Adam.

An optimiser updates a dict of named numpy arrays in place from a dict of gradients
of the same names; its state (velocities, moments) can be saved and restored. A fused step
(symnet.runtime.fused) updates the same state arrays, which the optimiser owns and hands
out by name (`state_array`), with the hyper-parameters it declares (`hyper`): either path
continues the other's run exactly.
"""

from __future__ import annotations

import numpy as np


class SGD:
    """weights += -step_size * weights_grad (the lecture's vanilla gradient descent)."""

    #: the name of its declaration (symnet.catalog.steps) and of its fused steps
    name = "sgd"

    def __init__(self, lr: float = 1.0):
        self.lr = lr

    def hyper(self) -> dict:
        """The hyper-parameters by the names a generated step's arguments have."""
        return {"lr": self.lr}

    def state_array(self, kind: str, name: str, like: np.ndarray) -> np.ndarray:
        """The state array `kind` (velocity, first, second) of parameter `name`, made zero
        the first time: the one this optimiser's own step updates and state() saves."""
        arrays = getattr(self, kind)
        found = arrays.get(name)
        if found is None:
            found = arrays[name] = np.zeros_like(like)
        return found

    def step(self, params: dict, grads: dict) -> None:
        for name, grad in grads.items():
            params[name] -= self.lr * grad

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass


class Momentum(SGD):
    """v = mu v - lr g; w += v."""

    name = "momentum"

    def __init__(self, lr: float = 0.1, momentum: float = 0.9):
        super().__init__(lr)
        self.momentum = momentum
        self.velocity: dict = {}

    def hyper(self) -> dict:
        return {"lr": self.lr, "mu": self.momentum}

    def step(self, params: dict, grads: dict) -> None:
        for name, grad in grads.items():
            v = self.velocity.setdefault(name, np.zeros_like(params[name]))
            v *= self.momentum
            v -= self.lr * grad
            params[name] += v

    def state(self) -> dict:
        return {f"velocity/{k}": v for k, v in self.velocity.items()}

    def load_state(self, state: dict) -> None:
        self.velocity = {k.split("/", 1)[1]: v.copy() for k, v in state.items()
                         if k.startswith("velocity/")}


class Adam(SGD):
    """Adam with bias-corrected first and second moments."""

    name = "adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.first: dict = {}
        self.second: dict = {}
        self.steps = 0

    def hyper(self) -> dict:
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def step(self, params: dict, grads: dict) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1 ** self.steps
        correction2 = 1 - self.beta2 ** self.steps
        for name, grad in grads.items():
            m = self.first.setdefault(name, np.zeros_like(params[name]))
            v = self.second.setdefault(name, np.zeros_like(params[name]))
            m *= self.beta1
            m += (1 - self.beta1) * grad
            v *= self.beta2
            v += (1 - self.beta2) * grad * grad
            params[name] -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)

    def state(self) -> dict:
        state = {f"first/{k}": v for k, v in self.first.items()}
        state.update({f"second/{k}": v for k, v in self.second.items()})
        state["steps"] = np.array(self.steps)
        return state

    def load_state(self, state: dict) -> None:
        self.first = {k.split("/", 1)[1]: v.copy() for k, v in state.items()
                      if k.startswith("first/")}
        self.second = {k.split("/", 1)[1]: v.copy() for k, v in state.items()
                       if k.startswith("second/")}
        self.steps = int(state.get("steps", 0))


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}
