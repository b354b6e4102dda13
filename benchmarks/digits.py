"""Epochs on scikit-learn's digits: symnet's runtime against scikit-learn's MLPClassifier
with the same architecture and hyperparameters, and the test accuracy each reaches.

    python benchmarks/digits.py            # 40 epochs, 3 interleaved repeats
    python benchmarks/digits.py --json     # one JSON line

Both train a 64-100-10 network: ReLU, softmax cross-entropy averaged over the batch, L2 on
the weights, plain SGD at a constant learning rate (no momentum), mini-batches of 32
reshuffled every epoch, no early stopping, on symnet's digits split (1348 train / 449
test, seed 0). scikit-learn's alpha is its L2 strength per batch, alpha/(2*batch) *
sum(W^2), which is symnet's lambda = alpha/(2*batch). Their initialisations differ
(Glorot uniform against He normal), as their defaults do.

A symnet epoch is timed as `train()` runs it: the fused generated step on every batch, and
after each epoch the train and test accuracy it records (scikit-learn computes neither);
`symnet steps` is the same epoch without those two forward passes. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from symnet.runtime import modules  # noqa: E402
from symnet.runtime.data import digits  # noqa: E402
from symnet.runtime.network import Network, initial_parameters  # noqa: E402
from symnet.runtime.train import TrainConfig, train  # noqa: E402

HIDDEN, BATCH = 100, 32
#: issue 7's target: symnet's epoch at most this share of scikit-learn's
EPOCH_TARGET = 0.6


def sklearn_run(data, epochs: int, lr: float, alpha: float, seed: int):
    """(seconds per epoch, test accuracy) of MLPClassifier."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="sgd",
                          learning_rate="constant", learning_rate_init=lr, momentum=0.0,
                          nesterovs_momentum=False, alpha=alpha, batch_size=BATCH,
                          max_iter=epochs, shuffle=True, random_state=seed, tol=0.0,
                          n_iter_no_change=epochs + 1, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        model.fit(data.x_train, data.y_train)
        seconds = time.perf_counter() - started
    return seconds / model.n_iter_, float(model.score(data.x_test, data.y_test))


def symnet_network(data, lam: float, seed: int) -> Network:
    sizes = (data.features, HIDDEN, data.classes)
    net = Network(sizes, modules.load("layers", "affine"), modules.load("activations", "relu"),
                  modules.load("losses", "softmax_ce"), "one_hot",
                  modules.load("regularizers", "l2"), lam)
    net.params = initial_parameters(sizes, "relu", seed)
    return net


def symnet_run(data, epochs: int, lr: float, alpha: float, seed: int, fused: bool = True):
    """(seconds per epoch as train() runs it, test accuracy)."""
    net = symnet_network(data, alpha / (2 * BATCH), seed)
    config = TrainConfig(epochs=epochs, batch_size=BATCH, lr=lr, optimizer="sgd", seed=seed)
    history = train(net, data, config, fused=fused)
    return history.seconds / history.epochs, history.test_accuracy[-1]


def symnet_steps(data, epochs: int, lr: float, alpha: float, seed: int):
    """(seconds per epoch of the fused steps alone, test accuracy): train()'s epoch loop
    without the accuracy it records after each epoch."""
    from symnet.runtime.fused import fused_step
    from symnet.runtime.network import encode_targets
    from symnet.runtime.optim import SGD
    from symnet.runtime.train import History, Snapshots, _batches, run_epoch

    net = symnet_network(data, alpha / (2 * BATCH), seed)
    step, snapshots, history = fused_step(net, SGD(lr=lr)), Snapshots(net.params), History()
    target = encode_targets(data.y_train, data.classes, "one_hot", np.float64)
    started = time.perf_counter()
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        batches = _batches(len(target), BATCH, rng)
        run_epoch(step, snapshots, data.x_train, target, batches, history)
    seconds = time.perf_counter() - started
    return seconds / epochs, net.accuracy(data.x_test, data.y_test)


RUNS = {"scikit-learn": sklearn_run, "symnet train()": symnet_run, "symnet steps": symnet_steps,
        "symnet layer by layer": lambda *a: symnet_run(*a, fused=False)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--alpha", type=float, default=1e-4,
                        help="scikit-learn's L2 alpha (symnet's lambda = alpha/(2*32))")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = digits(seed=args.seed)
    seconds, accuracy = {name: [] for name in RUNS}, {}
    for _ in range(args.repeats):
        for name, run in RUNS.items():
            time.sleep(args.pause)
            per_epoch, accuracy[name] = run(data, args.epochs, args.lr, args.alpha, args.seed)
            seconds[name].append(per_epoch)
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    results = [{"impl": name, "ms_per_epoch": round(medians[name] * 1e3, 3),
                "test_accuracy": round(accuracy[name], 4)} for name in RUNS]
    load = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps({"results": results, "epochs": args.epochs, "load": load}))
        return 0
    reference = medians["scikit-learn"]
    print(f"digits, {args.epochs} epochs, lr {args.lr}, alpha {args.alpha}, batch {BATCH}; "
          f"load after the run {load}")
    for r in results:
        print(f"  {r['impl']:22} {r['ms_per_epoch']:8.2f} ms/epoch  "
              f"{medians[r['impl']] / reference:5.2f}x scikit-learn  "
              f"test accuracy {r['test_accuracy']:.4f}")
    ratio = medians["symnet train()"] / reference
    met = ratio <= EPOCH_TARGET and accuracy["symnet train()"] >= accuracy["scikit-learn"]
    print(f"{'met   ' if met else 'MISSED'} a train() epoch = {ratio:.2f}x scikit-learn's "
          f"(target <= {EPOCH_TARGET}) at equal or better test accuracy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
