"""Generated modules against hand-written numpy (cs231n's layers.py style), as ratios.

For each catalog entry with a hand-written counterpart below, times forward + backward
(an activation) or loss + gradient (a loss, a regulariser) of the module in generated/
and of the hand-written function on the same inputs, in this process, and prints
generated time / hand-written time (1.0 = as fast; below 1 = faster). Also checks the
two agree, so a ratio never compares different computations.

    python benchmarks/codegen_speed.py [--batch 256] [--width 512] [--classes 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import timeit
from pathlib import Path

import numpy as np

GENERATED = Path(__file__).resolve().parents[1] / "generated"


# --- hand-written numpy, as a person writes it -------------------------------------------


def relu(x, dout):
    out = np.maximum(0, x)
    dx = dout * (x > 0)
    return out, dx


def sigmoid(x, dout):
    out = 1 / (1 + np.exp(-x))
    return out, dout * out * (1 - out)


def tanh(x, dout):
    out = np.tanh(x)
    return out, dout * (1 - out**2)


def softmax_ce(scores, t):
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    n = scores.shape[0]
    loss = -np.sum(log_probs[np.arange(n), t]) / n
    dscores = np.exp(log_probs)
    dscores[np.arange(n), t] -= 1
    return loss, dscores / n


def svm(scores, t):
    n = scores.shape[0]
    margins = np.maximum(0, scores - scores[np.arange(n), t][:, None] + 1)
    margins[np.arange(n), t] = 0
    loss = np.sum(margins) / n
    positive = (margins > 0).astype(scores.dtype)
    positive[np.arange(n), t] = -np.sum(positive, axis=1)
    return loss, positive / n


def squared_error(scores, y):
    n = scores.shape[0]
    return np.sum((scores - y) ** 2) / n, 2 * (scores - y) / n


def l2(W, lam=1e-3):
    return lam * np.sum(W * W), 2 * lam * W


# --- the comparison ----------------------------------------------------------------------


def load(folder: str, name: str):
    spec = importlib.util.spec_from_file_location(name, GENERATED / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(args, rng):
    x = rng.normal(size=(args.batch, args.width))
    dout = rng.normal(size=x.shape)
    scores = rng.normal(size=(args.batch, args.classes))
    t = rng.integers(0, args.classes, size=args.batch)
    one_hot = np.eye(args.classes)[t]
    for name in ("relu", "sigmoid", "tanh"):
        module = load("activations", name)

        def generated(module=module):
            out, cache = module.forward(x)
            return out, module.backward(dout, cache)

        yield name, generated, (lambda name=name: globals()[name](x, dout))
    losses = load("losses", "softmax_ce"), load("losses", "svm"), load("losses", "squared_error")
    yield "softmax_ce", lambda: losses[0].loss(scores, one_hot), lambda: softmax_ce(scores, t)
    yield "svm", lambda: losses[1].loss(scores, t), lambda: svm(scores, t)
    target = rng.normal(size=scores.shape)
    yield ("squared_error", lambda: losses[2].loss(scores, target),
           lambda: squared_error(scores, target))
    penalty = load("regularizers", "l2").penalty
    yield "l2", lambda: penalty(x), lambda: l2(x)


def best_of(function, repeat: int = 7) -> float:
    number = max(1, int(0.05 / max(timeit.timeit(function, number=1), 1e-7)))
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    print(f"{'module':14s} {'generated/hand':>15s}   batch {args.batch}, width {args.width}, "
          f"{args.classes} classes")
    for name, generated, hand in cases(args, np.random.default_rng(0)):
        for ours, theirs in zip(generated(), hand(), strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
        ratio = best_of(generated) / best_of(hand)
        print(f"{name:14s} {ratio:15.2f}")


if __name__ == "__main__":
    main()
