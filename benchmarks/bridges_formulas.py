"""The entries benchmarks/bridges.py measures: each formula written directly in torch and in
jax operations (what a user writes without symnet), the framework's own fused function
where one exists, and the inputs, all float32.

A loss implementation is called as f(s, fixed), fixed holding "target" (the declared target)
and "labels" (class indices, for the fused functions that take them); an activation as
f(*inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPSILON = 0.1  # smoothed_ce's default, examples/my_declarations.py


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "activation" or "loss"
    target: str | None = None  # a loss's target: one_hot, real01, real, sign, class_index
    arity: int = 1
    source: str = "catalog"  # or "user": examples/my_declarations.py
    direct: dict = field(default_factory=dict)  # framework -> callable
    native: dict = field(default_factory=dict)

    def call(self, function, inputs, fixed):
        return function(*inputs) if self.kind == "activation" else function(inputs[0], fixed)

    def make_inputs(self, rows: int, cols: int) -> dict:
        """{"inputs": [arrays to differentiate], "fixed": {name: array}} as numpy float32."""
        rng = np.random.default_rng(0)
        if self.kind == "activation":
            inputs = [3 * rng.standard_normal((rows, cols), dtype=np.float32)
                      for _ in range(self.arity)]
            return {"inputs": inputs,
                    "fixed": {"upstream": rng.standard_normal((rows, cols), dtype=np.float32)}}
        shape = (rows * cols,) if self.target == "sign" else (rows, cols)
        labels = rng.integers(0, cols, rows)
        targets = {
            "one_hot": lambda: np.eye(cols, dtype=np.float32)[labels],
            "real01": lambda: rng.random(shape, dtype=np.float32),
            "real": lambda: rng.standard_normal(shape, dtype=np.float32),
            "sign": lambda: np.where(rng.random(shape) < 0.5, -1, 1).astype(np.float32),
            "class_index": lambda: labels,
        }
        scores = 2 * rng.standard_normal(shape, dtype=np.float32)
        return {"inputs": [scores], "fixed": {"target": targets[self.target](), "labels": labels}}


def _activations(torch, F, jnp, jnn) -> list[Entry]:
    def both(torch_direct, jax_direct):
        return {"torch": torch_direct, "jax": jax_direct}

    return [
        Entry("relu", "activation", direct=both(lambda x: x.clamp(min=0),
                                                lambda x: jnp.maximum(x, 0)),
              native=both(torch.relu, jnn.relu)),
        Entry("leaky_relu", "activation",
              direct=both(lambda x: torch.where(x > 0, x, 0.1 * x),
                          lambda x: jnp.where(x > 0, x, 0.1 * x)),
              native=both(lambda x: F.leaky_relu(x, 0.1), lambda x: jnn.leaky_relu(x, 0.1))),
        Entry("elu", "activation",
              direct=both(lambda x: torch.where(x > 0, x, torch.exp(x) - 1),
                          lambda x: jnp.where(x > 0, x, jnp.exp(x) - 1)),
              native=both(F.elu, jnn.elu)),
        Entry("sigmoid", "activation",
              direct=both(lambda x: 1 / (1 + torch.exp(-x)), lambda x: 1 / (1 + jnp.exp(-x))),
              native=both(torch.sigmoid, jnn.sigmoid)),
        Entry("tanh", "activation", direct=both(torch.tanh, jnp.tanh)),
        Entry("softplus", "activation",
              direct=both(lambda x: torch.log(1 + torch.exp(x)), lambda x: jnp.log(1 + jnp.exp(x))),
              native=both(F.softplus, jnn.softplus)),
        Entry("silu", "activation",
              direct=both(lambda x: x * torch.sigmoid(x), lambda x: x * jnn.sigmoid(x)),
              native=both(F.silu, jnn.silu)),
        Entry("maxout", "activation", arity=2, direct=both(torch.maximum, jnp.maximum)),
        Entry("mish", "activation", source="user",
              direct=both(lambda x: x * torch.tanh(torch.log(1 + torch.exp(x))),
                          lambda x: x * jnp.tanh(jnp.log(1 + jnp.exp(x)))),
              native=both(F.mish, jnn.mish)),
    ]


def _losses(torch, F, jnp, jnn) -> list[Entry]:
    def mean(total, s):  # the catalog's reduction: the sum over the batch over N
        return total / s.shape[0]

    def softmax_ce(lse, y, s):
        return mean(-(y * (s - lse(s))).sum(), s)

    def smoothed(lse, y, s):
        cols = s.shape[1]
        return mean(-(((1 - EPSILON) * y + EPSILON / cols) * (s - lse(s))).sum(), s)

    def svm(take, s, t, ones):
        margins = (s - take(s, t) + 1).clip(0) * (1 - ones)
        return mean(margins.sum(), s)

    def huber(where, r):
        return where(abs(r) <= 1, r ** 2 / 2, abs(r) - 0.5).sum()

    t_lse = lambda s: torch.logsumexp(s, 1, keepdim=True)  # noqa: E731
    j_lse = lambda s: jnn.logsumexp(s, 1, keepdims=True)  # noqa: E731
    t_take = lambda s, t: s.gather(1, t[:, None])  # noqa: E731
    j_take = lambda s, t: jnp.take_along_axis(s, t[:, None], 1)  # noqa: E731

    def t_ones(s, t):
        return F.one_hot(t, s.shape[1]).to(s.dtype)

    return [
        Entry("softmax_ce", "loss", "one_hot",
              direct={"torch": lambda s, f: softmax_ce(t_lse, f["target"], s),
                      "jax": lambda s, f: softmax_ce(j_lse, f["target"], s)},
              native={"torch": lambda s, f: F.cross_entropy(s, f["labels"])}),
        Entry("smoothed_ce", "loss", "one_hot", source="user",
              direct={"torch": lambda s, f: smoothed(t_lse, f["target"], s),
                      "jax": lambda s, f: smoothed(j_lse, f["target"], s)},
              native={"torch": lambda s, f: F.cross_entropy(s, f["labels"],
                                                            label_smoothing=EPSILON)}),
        Entry("bce_logits", "loss", "real01",
              direct={"torch": lambda s, f: mean((torch.log(1 + torch.exp(s))
                                                  - s * f["target"]).sum(), s),
                      "jax": lambda s, f: mean((jnp.log(1 + jnp.exp(s)) - s * f["target"]).sum(),
                                               s)},
              native={"torch": lambda s, f: mean(F.binary_cross_entropy_with_logits(
                  s, f["target"], reduction="sum"), s)}),
        Entry("hinge", "loss", "sign",
              direct={"torch": lambda s, f: mean((1 - s * f["target"]).clamp(min=0).sum(), s),
                      "jax": lambda s, f: mean(jnp.maximum(1 - s * f["target"], 0).sum(), s)}),
        Entry("huber", "loss", "real",
              direct={"torch": lambda s, f: mean(huber(torch.where, s - f["target"]), s),
                      "jax": lambda s, f: mean(huber(jnp.where, s - f["target"]), s)},
              native={"torch": lambda s, f: mean(F.huber_loss(s, f["target"], reduction="sum"),
                                                 s)}),
        Entry("squared_error", "loss", "real",
              direct={"torch": lambda s, f: mean(((s - f["target"]) ** 2).sum(), s),
                      "jax": lambda s, f: mean(((s - f["target"]) ** 2).sum(), s)},
              native={"torch": lambda s, f: mean(F.mse_loss(s, f["target"], reduction="sum"),
                                                 s)}),
        Entry("svm", "loss", "class_index",
              direct={"torch": lambda s, f: svm(t_take, s, f["target"], t_ones(s, f["target"])),
                      "jax": lambda s, f: svm(j_take, s, f["target"],
                                              jnn.one_hot(f["target"], s.shape[1], dtype=s.dtype))},
              # multi_margin_loss averages over the C classes: times C for the catalog's sum
              native={"torch": lambda s, f: mean(F.multi_margin_loss(
                  s, f["target"], reduction="sum") * s.shape[1], s)}),
    ]


def entries() -> list[Entry]:
    import jax.nn as jnn
    import jax.numpy as jnp
    import torch
    import torch.nn.functional as F

    return _activations(torch, F, jnp, jnn) + _losses(torch, F, jnp, jnn)
