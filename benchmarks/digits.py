"""Epochs on scikit-learn's digits: `symnet train --dataset digits` as it runs by default
(Adam, the fused generated step) against scikit-learn's MLPClassifier with Adam on the same
architecture, batch and epochs, and the test accuracy each reaches.

    python benchmarks/digits.py                  # Adam, 40 epochs, 3 interleaved repeats
    python benchmarks/digits.py --quick          # 10 epochs, 2 repeats (about 20 seconds)
    python benchmarks/digits.py --optimizer sgd  # issue 7's comparison: plain SGD, lr 0.2
    python benchmarks/digits.py --json           # one JSON line

Both train a 64-100-10 network: ReLU, softmax cross-entropy averaged over the batch, L2 on
the weights, mini-batches of 32 reshuffled every epoch, no early stopping, on symnet's
digits split (1348 train / 449 test, seed 0). With Adam, symnet train's defaults for digits
(`symnet.cli.train.DEFAULTS`: lr 1e-3, lambda 1e-4, 40 epochs) and scikit-learn's Adam
(beta1 0.9, beta2 0.999, eps 1e-8, its defaults and symnet's); with --optimizer sgd, issue
7's comparison (lr 0.2, no momentum). scikit-learn's alpha is its L2 strength per batch,
alpha/(2*batch) * sum(W^2), which is symnet's lambda: alpha = 2*batch*lambda. Their
initialisations differ (Glorot uniform against He normal), as their defaults do; so does
where Adam adds eps: scikit-learn to sqrt(v) after the bias corrections were folded into
the learning rate, symnet to sqrt(v/(1 - beta2^t)) as the declaration says.

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

from symnet.cli.train import DEFAULTS  # noqa: E402
from symnet.runtime import modules  # noqa: E402
from symnet.runtime.data import digits  # noqa: E402
from symnet.runtime.network import Network, initial_parameters  # noqa: E402
from symnet.runtime.optim import OPTIMIZERS  # noqa: E402
from symnet.runtime.train import TrainConfig, train  # noqa: E402

#: symnet train --dataset digits without options
RECIPE = DEFAULTS["digits"]
HIDDEN, BATCH = int(RECIPE["hidden"]), RECIPE["batch_size"]
#: per optimiser: its learning rate and lambda, and the target for a train() epoch as a
#: share of scikit-learn's (issue 17 for Adam, issue 7 for SGD)
SETTINGS = {"adam": dict(lr=RECIPE["lr"], lam=RECIPE["lam"], target=0.5),
            "sgd": dict(lr=0.2, lam=1e-4 / (2 * BATCH), target=0.6)}


def sklearn_run(data, optimizer: str, epochs: int, lr: float, lam: float, seed: int):
    """(seconds per epoch, test accuracy) of MLPClassifier."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    solver = dict(solver="adam", beta_1=0.9, beta_2=0.999, epsilon=1e-8) \
        if optimizer == "adam" else \
        dict(solver="sgd", learning_rate="constant", momentum=0.0, nesterovs_momentum=False)
    model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu",
                          learning_rate_init=lr, alpha=2 * BATCH * lam, batch_size=BATCH,
                          max_iter=epochs, shuffle=True, random_state=seed, tol=0.0,
                          n_iter_no_change=epochs + 1, early_stopping=False, **solver)
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


def symnet_run(data, optimizer: str, epochs: int, lr: float, lam: float, seed: int,
               fused: bool = True):
    """(seconds per epoch as train() runs it, test accuracy)."""
    net = symnet_network(data, lam, seed)
    config = TrainConfig(epochs=epochs, batch_size=BATCH, lr=lr, optimizer=optimizer,
                         seed=seed)
    history = train(net, data, config, fused=fused)
    return history.seconds / history.epochs, history.test_accuracy[-1]


def symnet_steps(data, optimizer: str, epochs: int, lr: float, lam: float, seed: int):
    """(seconds per epoch of the fused steps alone, test accuracy): train()'s epoch loop
    without the accuracy it records after each epoch."""
    from symnet.runtime.fused import fused_step
    from symnet.runtime.network import encode_targets
    from symnet.runtime.train import History, Snapshots, _batches, run_epoch

    net = symnet_network(data, lam, seed)
    step = fused_step(net, OPTIMIZERS[optimizer](lr=lr))
    snapshots, history = Snapshots(net.params), History()
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


def measure(data, args, settings) -> tuple[dict, dict]:
    """(name -> seconds per epoch of each repeat, name -> test accuracy), the runs taking
    turns in each repeat."""
    seconds, accuracy = {name: [] for name in RUNS}, {}
    for _ in range(args.repeats):
        for name, run in RUNS.items():
            time.sleep(args.pause)
            per_epoch, accuracy[name] = run(data, args.optimizer, args.epochs, args.lr,
                                            settings["lam"], args.seed)
            seconds[name].append(per_epoch)
    return seconds, accuracy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", choices=sorted(SETTINGS), default=RECIPE["optimizer"])
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default {RECIPE['epochs']}, symnet train's (10 with --quick)")
    parser.add_argument("--lr", type=float, default=None,
                        help="default: symnet train's for Adam (1e-3), 0.2 for SGD")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (2 with --quick)")
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="10 epochs, 2 repeats")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = SETTINGS[args.optimizer]
    args.epochs = args.epochs or (10 if args.quick else RECIPE["epochs"])
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.lr = args.lr or settings["lr"]
    seconds, accuracy = measure(digits(seed=args.seed), args, settings)
    medians = {name: statistics.median(times) for name, times in seconds.items()}
    reference = medians["scikit-learn"]
    ratio = medians["symnet train()"] / reference
    met = ratio <= settings["target"] and accuracy["symnet train()"] >= accuracy["scikit-learn"]
    results = [{"impl": name, "ms_per_epoch": round(medians[name] * 1e3, 3),
                "ratio": round(medians[name] / reference, 3),
                "test_accuracy": round(accuracy[name], 4)} for name in RUNS]
    load = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps({"results": results, "optimizer": args.optimizer, "lr": args.lr,
                          "epochs": args.epochs, "repeats": args.repeats,
                          "target": settings["target"], "met": met, "load": load}))
        return 0
    print(f"digits, {args.optimizer}, {args.epochs} epochs, lr {args.lr}, lambda "
          f"{settings['lam']}, batch {BATCH}, {args.repeats} repeats; load after the run {load}")
    for r in results:
        print(f"  {r['impl']:22} {r['ms_per_epoch']:8.2f} ms/epoch  "
              f"{medians[r['impl']] / reference:5.2f}x scikit-learn  "
              f"test accuracy {r['test_accuracy']:.4f}")
    print(f"{'met   ' if met else 'MISSED'} a train() epoch = {ratio:.2f}x scikit-learn's "
          f"(target <= {settings['target']}) at equal or better test accuracy "
          f"({accuracy['symnet train()']:.4f} against {accuracy['scikit-learn']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
