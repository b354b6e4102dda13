"""The training loop: shuffled mini-batches, an optimiser, a history, checkpoints.

Deterministic: the same seed gives a bitwise-identical loss history. A non-finite loss
stops training at that step and keeps the last good parameters. An interrupt (Ctrl-C) is
held back until the step in progress has completed, then ends the loop, so that the
parameters, the optimiser's state and the history are all of one completed step: a
checkpoint saved then resumes (even in the middle of an epoch) to the bits of an unbroken
run. A second Ctrl-C while the first waits abandons the run at once, torn: train() then
raises KeyboardInterrupt instead of returning, so nothing of it is saved.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from symnet.files import DeferredInterrupts
from symnet.runtime.data import Dataset
from symnet.runtime.fused import fused_step
from symnet.runtime.network import Network, encode_targets
from symnet.runtime.optim import OPTIMIZERS


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 0          # 0: the whole training set in one batch
    lr: float = 1.0
    optimizer: str = "sgd"
    seed: int = 0


@dataclass(repr=False)
class History:
    loss: list = field(default_factory=list)            # one entry per epoch (mean of steps)
    epoch_losses: list = field(default_factory=list)    # of the epoch in progress, by step
    train_accuracy: list = field(default_factory=list)
    test_accuracy: list = field(default_factory=list)
    steps: int = 0
    epochs: int = 0
    stopped: str | None = None                           # why training ended early
    seconds: float = 0.0
    last_good: dict | None = field(default=None, repr=False)  # parameters with a finite loss

    def __repr__(self) -> str:
        """A line, not the thousands of floats of its lists: their first and last values."""
        parts = [f"epochs={self.epochs}", f"steps={self.steps}",
                 f"loss={_ends(self.loss)}", f"train_accuracy={_ends(self.train_accuracy)}"]
        if self.test_accuracy:
            parts.append(f"test_accuracy={_ends(self.test_accuracy)}")
        parts += [f"stopped={self.stopped!r}", f"seconds={self.seconds:.1f}"]
        return f"History({', '.join(parts)})"


def _ends(values: list) -> str:
    """'[]', '[0.5]' or '[1.1 ... 0.24] (2000 values)'."""
    if len(values) <= 2:
        return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
    return f"[{values[0]:.4g} ... {values[-1]:.4g}] ({len(values)} values)"


def _batches(count: int, batch_size: int, rng: np.random.Generator):
    order = rng.permutation(count)
    size = batch_size if 0 < batch_size < count else count
    for start in range(0, count, size):
        yield order[start:start + size]


#: one training step on a batch (x, target), updating the network's parameters: returns
#: the loss at the parameters before the step and whether it was finite (and whatever else
#: the step can see, such as gradients). After a step that was not, run_epoch puts back
#: the last good parameters, so what the step left in them does not matter.
Step = Callable[[np.ndarray, np.ndarray], tuple[float, bool]]


def layer_step(net: Network, optimizer) -> Step:
    """A step layer by layer: the layers' generated modules forward and back, then the
    optimiser. A gradient that is not finite stops training before it reaches the
    parameters, even while its loss is finite."""
    def step(x: np.ndarray, target: np.ndarray) -> tuple[float, bool]:
        data_loss, penalty, grads = net.loss_and_gradients(x, target)
        total = float(data_loss + penalty)
        finite = np.isfinite(total) and all(np.isfinite(g).all() for g in grads.values())
        if finite:
            optimizer.step(net.params, grads)
        return total, finite
    return step


class Snapshots:
    """Copies of the parameters taken before each step, to go back to the last ones whose
    loss was finite. Two sets of buffers used in turn, so a step costs no allocation:
    the copy before step n overwrites the one before step n - 2, never the last good one
    (before step n - 1)."""

    def __init__(self, params: dict):
        self.params = params
        self.buffers = ({}, {})

    def take(self, number: int) -> dict:
        """A copy of the parameters, into the buffers of step `number`'s parity."""
        copies = self.buffers[number % 2]
        for name, value in self.params.items():
            copy = copies.get(name)
            if copy is None or copy.shape != value.shape or copy.dtype != value.dtype:
                copies[name] = value.copy()
            else:
                np.copyto(copy, value)
        return copies

    def restore(self, copies: dict) -> None:
        # copies, not the buffers themselves: a later take() must not write into the network
        for name, value in copies.items():
            self.params[name] = value.copy()


def run_epoch(step: Step, snapshots: Snapshots, x: np.ndarray, target: np.ndarray,
              batches: Iterable[np.ndarray], history: History,
              between_steps: Callable[[], None] = lambda: None) -> bool:
    """One epoch of `step` over `batches`; False if training stops. A non-finite loss stops
    it with the last parameters whose loss was finite (those before the first step, when
    no step was finite). A step that only reports its loss (the fused one) shows a
    gradient that is not finite one step later, as the loss of the parameters it made.
    The batches whose steps `history.epoch_losses` already holds (a run resumed in the
    middle of the epoch) are skipped; `between_steps` runs before each step (it may raise
    KeyboardInterrupt: everything of the steps before is then recorded)."""
    losses = history.epoch_losses
    for rows in itertools.islice(batches, len(losses), None):
        between_steps()
        before = snapshots.take(history.steps)
        total, finite = step(x[rows], target[rows])
        history.steps += 1
        if not finite:
            snapshots.restore(history.last_good if history.last_good is not None else before)
            history.stopped = (f"non-finite loss ({total}) at step {history.steps}; kept the "
                               f"last parameters whose loss was finite")
            return False
        history.last_good = before
        losses.append(total)
    history.loss.append(float(np.mean(losses)))
    history.epoch_losses = []
    history.epochs += 1
    return True


def train(net: Network, data: Dataset, config: TrainConfig, history: History | None = None,
          on_epoch: Callable[[History], None] | None = None, optimizer=None,
          fused: bool = True, module=None) -> History:
    """Train `net` in place; continue `history` (and `optimizer`) when resuming. With
    `fused`, a generated step of the whole network trains it where one matches
    (symnet.runtime.fused: `module`, a step generated for it, or a committed one); else,
    and always with fused=False, layer by layer."""
    history = history or History()
    optimizer = optimizer or OPTIMIZERS[config.optimizer](lr=config.lr)
    started = time.perf_counter()
    with DeferredInterrupts() as interrupts:
        try:
            step, x, target = _prepare(net, data, optimizer, fused, module)
            started = time.perf_counter()
            # overflow in a diverging run is reported once, as the non-finite loss that
            # stops it, not as numpy warnings at every step
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                _epochs(step, Snapshots(net.params), x, target, net, data, config, history,
                        on_epoch, interrupts.check)
            interrupts.check()   # a Ctrl-C during the last epoch's bookkeeping still counts
        except KeyboardInterrupt:
            if interrupts.forced:
                raise
            history.stopped = (f"interrupted after {history.epochs} epochs "
                               f"({history.steps} steps)")
    history.seconds += time.perf_counter() - started
    return history


def _prepare(net: Network, data: Dataset, optimizer, fused: bool, module=None):
    """(step, training inputs, targets) in the parameters' dtype."""
    step = fused_step(net, optimizer, module) if fused else None
    step = step if step is not None else layer_step(net, optimizer)
    dtype = next(iter(net.params.values())).dtype
    x = data.x_train.astype(dtype, copy=False)
    return step, x, encode_targets(data.y_train, net.sizes[-1], net.target_kind, dtype)


def _epochs(step: Step, snapshots: Snapshots, x: np.ndarray, target: np.ndarray,
            net: Network, data: Dataset, config: TrainConfig, history: History, on_epoch,
            between_steps: Callable[[], None]) -> None:
    for epoch in range(history.epochs, config.epochs):
        # one generator per epoch: a resumed run shuffles exactly as an unbroken one
        rng = np.random.default_rng([config.seed, epoch])
        batches = _batches(len(x), config.batch_size, rng)
        if not run_epoch(step, snapshots, x, target, batches, history, between_steps):
            break
        _record(net, data, history)
        if on_epoch is not None:
            on_epoch(history)


def _record(net: Network, data: Dataset, history: History) -> None:
    history.train_accuracy.append(net.accuracy(data.x_train, data.y_train))
    if data.x_test is not None:
        history.test_accuracy.append(net.accuracy(data.x_test, data.y_test))
