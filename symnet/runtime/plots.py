"""Pictures of a training run: loss and accuracy curves, decision boundaries in 2-D."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from symnet.errors import SymnetError, install_hint


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SymnetError(f"plots need matplotlib: {install_hint('plot')}") from exc
    return plt


def curves(history, path: Path) -> Path:
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = np.arange(1, len(history.loss) + 1)
    left.plot(epochs, history.loss)
    left.set(xlabel="epoch", ylabel="loss (data + regularisation)", title="loss",
             yscale="log" if min(history.loss) > 0 else "linear")
    right.plot(epochs, history.train_accuracy, label="train")
    if history.test_accuracy:
        right.plot(epochs, history.test_accuracy, label="test")
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    right.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _grid(x: np.ndarray, steps: int = 300):
    low, high = x.min(axis=0) - 0.25, x.max(axis=0) + 0.25
    u, v = np.meshgrid(np.linspace(low[0], high[0], steps), np.linspace(low[1], high[1], steps))
    return u, v, np.c_[u.ravel(), v.ravel()]


def decision_boundaries(panels, x: np.ndarray, labels: np.ndarray, path: Path) -> Path:
    """One panel per (title, network), side by side, over the same 2-D data."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    u, v, grid = _grid(x)
    for axis, (title, net) in zip(axes[0], panels, strict=True):
        regions = net.predict(grid.astype(next(iter(net.params.values())).dtype))
        axis.contourf(u, v, regions.reshape(u.shape), alpha=0.35, cmap="brg")
        axis.scatter(x[:, 0], x[:, 1], c=labels, s=12, cmap="brg", edgecolors="k",
                     linewidths=0.3)
        axis.set(title=title, xticks=[], yticks=[])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
