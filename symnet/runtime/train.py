"""The training loop: shuffled mini-batches, an optimiser, a history, checkpoints.

Deterministic: the same seed gives a bitwise-identical loss history. A non-finite loss
stops training at that step and keeps the last good parameters; an interrupt (Ctrl-C)
ends the epoch loop cleanly so the caller can save a checkpoint to resume from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from symnet.runtime.data import Dataset
from symnet.runtime.fused import fused_step, run_epoch
from symnet.runtime.network import Network, encode_targets
from symnet.runtime.optim import OPTIMIZERS


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 0          # 0: the whole training set in one batch
    lr: float = 1.0
    optimizer: str = "sgd"
    seed: int = 0


@dataclass
class History:
    loss: list = field(default_factory=list)            # one entry per epoch (mean of steps)
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    steps: int = 0
    epochs: int = 0
    stopped: str | None = None                           # why training ended early
    seconds: float = 0.0
    last_good: dict | None = field(default=None, repr=False)  # parameters with a finite loss


def _batches(count: int, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(count)
    size = batch_size if 0 < batch_size < count else count
    for start in range(0, count, size):
        yield order[start:start + size]


def _snapshot(params: dict) -> dict:
    return {name: value.copy() for name, value in params.items()}


def train(net: Network, data: Dataset, config: TrainConfig, history: History | None = None,
          on_epoch: Callable[[History], None] | None = None, optimizer=None,
          fused: bool = True) -> History:
    """Train `net` in place; continue `history` (and `optimizer`) when resuming. With
    `fused`, a generated step of the whole network trains it where one matches
    (symnet.runtime.fused); else, and always with fused=False, layer by layer."""
    history = history or History()
    optimizer = optimizer or OPTIMIZERS[config.optimizer](lr=config.lr)
    step = fused_step(net, optimizer) if fused else None
    dtype = next(iter(net.params.values())).dtype
    x = data.x_train.astype(dtype, copy=False)
    target = encode_targets(data.y_train, net.sizes[-1], net.target_kind, dtype)
    started = time.perf_counter()
    try:
        for epoch in range(history.epochs, config.epochs):
            # one generator per epoch: a resumed run shuffles exactly as an unbroken one
            rng = np.random.default_rng([config.seed, epoch])
            done = (run_epoch(step, x, target, _batches(len(x), config.batch_size, rng), history)
                    if step is not None else
                    _run_epoch(net, x, target, config, optimizer, rng, history))
            if not done:
                break
            _record(net, data, history)
            if on_epoch is not None:
                on_epoch(history)
    except KeyboardInterrupt:
        history.stopped = f"interrupted after {history.epochs} epochs"
    history.seconds += time.perf_counter() - started
    return history


def _run_epoch(net, x, target, config, optimizer, rng, history) -> bool:
    losses = []
    for rows in _batches(len(x), config.batch_size, rng):
        data_loss, penalty, grads = net.loss_and_gradients(x[rows], target[rows])
        total = float(data_loss + penalty)
        history.steps += 1
        if not np.isfinite(total) or not all(np.isfinite(g).all() for g in grads.values()):
            if history.last_good is not None:
                net.params.update(history.last_good)
            history.stopped = (f"non-finite loss ({total}) at step {history.steps}; kept the "
                               f"last parameters whose loss was finite")
            return False
        history.last_good = _snapshot(net.params)
        optimizer.step(net.params, grads)
        losses.append(total)
    history.loss.append(float(np.mean(losses)))
    history.epochs += 1
    return True


def _record(net: Network, data: Dataset, history: History) -> None:
    history.train_accuracy.append(net.accuracy(data.x_train, data.y_train))
    if data.x_test is not None:
        history.test_accuracy.append(net.accuracy(data.x_test, data.y_test))
