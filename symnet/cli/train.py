"""`symnet train`: a network of generated modules, trained on a data set.

The command resolves names (catalog entries, or FILE.py:NAME declarations, which it
generates into a cache folder first), builds the network and hands it to the numpy-only
runtime. Training itself never touches sympy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

from symnet.errors import DataError, SymnetError, install_hint
from symnet.files import check_output, write_atomically
from symnet.runtime import data as datasets
from symnet.runtime import modules, plots
from symnet.runtime.checkpoint import load_checkpoint, save_checkpoint
from symnet.runtime.network import Network, initial_parameters, norm_parameters
from symnet.runtime.progress import ProgressBar
from symnet.runtime.train import TrainConfig, train
from symnet.target_kinds import SIGN

#: per data set: what a first run should use (the lecture's spiral recipe; Adam on digits)
DEFAULTS = {
    "spiral": dict(hidden="100", lam=5e-4, optimizer="sgd", lr=1.0, epochs=2000, batch_size=0),
    "digits": dict(hidden="100", lam=1e-4, optimizer="adam", lr=1e-3, epochs=40, batch_size=32),
    "file": dict(hidden="100", lam=1e-3, optimizer="adam", lr=1e-3, epochs=50, batch_size=32),
}


class TrainError(SymnetError):
    pass


def _cache_dir() -> Path:
    """modules/ of symnet's cache folder, created private (CacheError if shared)."""
    from symnet.cache import folder

    return folder("modules")


def _user_module(decl, reference: str):
    """Generate a user's FILE.py:NAME declaration into the cache, then import it: from the
    text just generated, the file rewritten if it holds anything else (truncated, altered),
    so that what runs is never what another process left there."""
    from symnet.codegen.emit import Source, module_file
    from symnet.loader import split_reference

    path, _ = split_reference(reference)
    rel, text = module_file(Source(f"{Path(path).name}:{decl.name}", decl))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    target = _cache_dir() / digest / rel
    if _text_of(target) != text:
        try:
            write_atomically(target, text)
        except OSError:
            pass                    # a read-only home: the module still runs from its text
    return modules.load_text(target, text)


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def resolve_module(kind: str, reference: str):
    """(declaration, generated module) for a catalog name or FILE.py:NAME."""
    from symnet.loader import resolve

    expected = {"activations": "activation", "losses": "loss", "regularizers": "regularizer"}
    decl = resolve(reference)
    if decl.kind != expected[kind]:
        wanted = expected[kind]
        raise TrainError(f"{reference} is a {decl.kind}, not "
                         f"{'an' if wanted[0] in 'aeiou' else 'a'} {wanted}")
    if ":" in reference and reference.split(":")[0].endswith(".py"):
        return decl, _user_module(decl, reference)
    return decl, modules.load(kind, reference)


def load_dataset(name: str, seed: int) -> datasets.Dataset:
    if name in datasets.DATASETS:
        return datasets.DATASETS[name](seed=seed)
    if name.endswith((".npz", ".csv")):
        return datasets.load_file(name)
    raise DataError(f"unknown data set {name!r}: spiral, digits, or a FILE.npz / FILE.csv")


def _hidden_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise TrainError(f"--hidden {text!r}: give sizes like 100 or 64,32") from None
    if any(size <= 0 for size in sizes):
        raise TrainError(f"--hidden {text!r}: hidden sizes must be positive")
    return sizes


def declared_network(args, data: datasets.Dataset):
    """--network FILE.py:NAME: a declared network with a tensor-layer stage and a loss,
    generated into the cache and trained through its module (symnet.runtime.declared)."""
    from symnet.loader import resolve
    from symnet.runtime.declared import DeclaredNetwork

    reference = args.network
    if ":" not in reference or not reference.split(":")[0].endswith(".py"):
        raise TrainError(f"--network {reference}: give FILE.py:NAME, a Network declared "
                         f"with a tensor-layer stage (batchnorm) and a loss")
    decl = resolve(reference)
    if decl.kind != "network" or not getattr(decl, "staged", ()):
        raise TrainError(f"--network {reference} is not a network with a tensor-layer stage "
                         f"(such as use(batchnorm, ...)); train other networks with "
                         f"--hidden/--activation/--norm")
    if decl.loss is None:
        raise TrainError(f"--network {reference} has no loss: declare it with loss=... "
                         f"(and target= where the loss takes one)")
    module = _user_module(decl, reference)
    net = DeclaredNetwork(module, data.features, data.classes, _hidden_sizes(args.hidden),
                          args.seed, np.dtype(args.dtype))
    args.activation, args.loss, args.lam = f"{decl.name} (declared)", decl.loss.name, 0.0
    return net


def build_network(args, data: datasets.Dataset, declared: dict | None = None) -> Network:
    """The network the options describe; `declared` (if given) receives its declarations
    by role (activation, loss, regularizer: None at lambda 0), for its fused step."""
    if getattr(args, "network", None):
        return declared_network(args, data)
    activation_decl, activation = resolve_module("activations", args.activation)
    if len(activation_decl.inputs) != 1:
        raise TrainError(f"{args.activation} takes {len(activation_decl.inputs)} inputs; "
                         f"a fully connected network needs a one-input activation")
    loss_decl, loss = resolve_module("losses", args.loss)
    regularizer_decl, regularizer = (resolve_module("regularizers", args.regularizer)
                                     if args.lam else (None, None))
    classes = 1 if loss_decl.target_kind == SIGN else data.classes
    if loss_decl.target_kind == SIGN and data.classes != 2:
        raise DataError(f"{args.loss} takes labels in {{-1, +1}}: the data needs 2 classes, "
                        f"it has {data.classes}")
    sizes = (data.features, *_hidden_sizes(args.hidden), classes)
    dtype = np.dtype(args.dtype)
    norm = modules.load("layers", args.norm) if getattr(args, "norm", None) else None
    net = Network(sizes, modules.load("layers", "affine"), activation, loss,
                  loss_decl.target_kind, regularizer, args.lam, norm=norm)
    net.params = initial_parameters(sizes, activation_decl.name, args.seed, dtype)
    if declared is not None:
        declared.update(activation=activation_decl, loss=loss_decl,
                        regularizer=regularizer_decl)
    if norm is not None:
        net.params |= norm_parameters(sizes, norm, dtype)
    return net


def summary(history, net: Network, data, args, step: str | None = None) -> dict:
    """The run's results; `step` says which step trained (by default the committed fused
    step the runtime finds, or layer by layer)."""
    return {
        "dataset": data.name, "sizes": list(net.sizes), "activation": args.activation,
        "loss": args.loss, "lambda": args.lam, "optimizer": args.optimizer, "lr": args.lr,
        "epochs": history.epochs, "steps": history.steps,
        "final_loss": history.loss[-1] if history.loss else None,
        "train_accuracy": net.accuracy(data.x_train, data.y_train),
        "test_accuracy": (net.accuracy(data.x_test, data.y_test)
                          if data.x_test is not None else None),
        "seconds": round(history.seconds, 3), "stopped": history.stopped,
        "step": step or _step_name(net, args),
    } | _hint_of(history, net, data)


def _hint_of(history, net: Network, data) -> dict:
    found = hint(history, data, net.accuracy(data.x_train, data.y_train))
    return {"hint": found} if found else {}


def _step_name(net: Network, args) -> str:
    """The generated step that trained the network, or "layer by layer"."""
    from symnet.runtime.fused import fused_step
    from symnet.runtime.optim import OPTIMIZERS

    fused = not getattr(args, "layer_by_layer", False)   # absent: `symnet demo`'s arguments
    step = fused_step(net, OPTIMIZERS[args.optimizer]()) if fused else None
    return f"fused: {step.label}" if step else "layer by layer"


#: option -> (its attribute, the rule its value must meet, that rule in words)
OPTION_RULES = {
    "--epochs": ("epochs", lambda v: v >= 1, "at least 1"),
    "--seed": ("seed", lambda v: v >= 0, "0 or more"),
    "--lam": ("lam", lambda v: math.isfinite(v) and v >= 0, "a finite number, 0 or more"),
    "--lr": ("lr", lambda v: math.isfinite(v) and v > 0, "a finite number above 0"),
    "--batch-size": ("batch_size", lambda v: v >= 0, "0 (the whole set) or more"),
}


def check_options(args) -> None:
    """Every number and output path of the run, judged before data, derivation or
    training: a bad value or an unwritable --save never costs a run."""
    for option, (attribute, holds, rule) in OPTION_RULES.items():
        value = getattr(args, attribute)
        if not holds(value):
            raise TrainError(f"{option} {value}: must be {rule}")
    _hidden_sizes(args.hidden)
    if getattr(args, "network", None) and getattr(args, "norm", None):
        raise TrainError("--network trains the declared stages; --norm adds batch norm to "
                         "the --hidden network instead: give one of them")
    if args.save:
        check_output("--save", args.save)
    if args.plot:
        check_output("--plot", args.plot, folder=True)
        _require_extra("matplotlib", "plot", "--plot draws with matplotlib")
    if args.dataset == "digits":
        _require_extra("sklearn", "data", "--dataset digits comes with scikit-learn")


def _require_extra(module: str, extra: str, what: str) -> None:
    """A TrainError, before any work, when an optional library the run needs at its end (the
    plots) or its start (the data) is not installed."""
    if importlib.util.find_spec(module) is None:
        raise TrainError(f"{what}, which is not installed: {install_hint(extra)}")


#: the spiral's SGD recipe (lr 1.0, lambda 5e-4) suits softmax cross-entropy on ReLU; where a
#: loss or activation needs another, its lr factor and lambda (measured with `symnet train
#: --activation A --loss L --json`, 2000 epochs: squared error at lr 1.0 ended at chance,
#: 0.333, and at 0.1 reached 0.993; sigmoid stopped at 0.633 with lambda 5e-4 and reached
#: 0.98 at lr 2, lambda 1e-5; softplus 0.91 -> 0.98 the same way)
SPIRAL_TUNING = {
    "squared_error": dict(lr=0.1), "huber": dict(lr=0.3),
    "sigmoid": dict(lr=2.0, lam=1e-5), "softplus": dict(lr=2.0, lam=1e-5),
}


def _apply_defaults(args) -> None:
    kind = args.dataset if args.dataset in DEFAULTS else "file"
    defaults = dict(DEFAULTS[kind])
    if kind == "spiral":
        for name in (args.loss, args.activation):
            tuning = SPIRAL_TUNING.get(name, {})
            defaults["lr"] *= tuning.get("lr", 1.0)
            defaults["lam"] = min(defaults["lam"], tuning.get("lam", defaults["lam"]))
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def hint(history, data, accuracy: float) -> str | None:
    """What to try when a run ends near chance (closer to the majority class's share than a
    quarter of the way from it to 1), in one line; None otherwise."""
    majority = float(np.bincount(data.y_train).max() / len(data.y_train))
    if history.stopped or not history.loss or accuracy > majority + (1 - majority) / 4:
        return None
    if history.loss[-1] >= history.loss[0]:
        return (f"the run ended near chance (train accuracy {accuracy:.3f}) and its loss did "
                f"not fall: try a smaller --lr")
    return (f"the run ended near chance (train accuracy {accuracy:.3f}) with its loss falling "
            f"slowly: try a larger --lr, a smaller --lam or more --epochs")


def _settings(args) -> dict:
    keys = ("dataset", "hidden", "activation", "loss", "regularizer", "lam", "optimizer", "lr",
            "epochs", "batch_size", "seed", "dtype", "norm", "network")
    return {key: getattr(args, key, None) for key in keys}


def cmd_train(args) -> int:
    from symnet.runtime.checkpoint import check_compatible
    from symnet.runtime.optim import OPTIMIZERS

    _apply_defaults(args)
    check_options(args)
    data = load_dataset(args.dataset, args.seed)
    declared: dict = {}
    net = build_network(args, data, declared)
    config = TrainConfig(args.epochs, args.batch_size, args.lr, args.optimizer, args.seed)
    optimizer, history = OPTIMIZERS[args.optimizer](lr=args.lr), None
    if args.resume:
        params, state, history, _ = load_checkpoint(args.resume)
        check_compatible(args.resume, net.params, params)
        net.params = {k: v.astype(net.params[k].dtype) for k, v in params.items()}
        optimizer.load_state(state)
        if history.epochs >= config.epochs:   # --epochs counts from the start of the run
            print(f"symnet train: {args.resume} has trained {history.epochs} epochs already, "
                  f"--epochs {config.epochs}: nothing to train (pass --epochs above "
                  f"{history.epochs} to continue)", file=sys.stderr)
    fused = not getattr(args, "layer_by_layer", False) and not getattr(args, "network", None)
    norm = getattr(args, "norm", None)     # absent: `symnet demo`'s arguments
    if norm and fused:
        print(f"symnet train: --norm {norm} trains layer by layer (no fused step has a norm "
              f"stage yet)", file=sys.stderr)
        fused = False
    choice = _fused_choice(net, optimizer, declared) if fused else None
    bar = None if args.json else ProgressBar(config.epochs)
    history = train(net, data, config, history, on_epoch=bar.update if bar else None,
                    optimizer=optimizer, fused=fused, module=choice and choice.module)
    if bar:
        bar.close()
    checkpoint = args.save or ("symnet-checkpoint.npz" if history.stopped and
                               history.stopped.startswith("interrupted") else None)
    if checkpoint:
        save_checkpoint(checkpoint, net.params, optimizer, history, _settings(args))
    result = summary(history, net, data, args, choice.label if choice else
                     "the declared network's module" if getattr(args, "network", None)
                     else "layer by layer")
    if args.plot:
        result["plots"] = [str(p) for p in _write_plots(args.plot, history, net, data)]
    _report(result, args, checkpoint)
    if history.stopped and history.stopped.startswith("non-finite"):
        return 1
    return 130 if history.stopped else 0


def _fused_choice(net: Network, optimizer, declared: dict):
    """The fused step (symnet.cli.train_step); where there is none, one line says why."""
    from symnet.cli.train_step import choose

    choice = choose(net, optimizer, declared)
    if choice.why:
        print(f"symnet train: no fused step: {choice.why}; training layer by layer",
              file=sys.stderr)
    return choice


def _write_plots(folder: str, history, net: Network, data) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [plots.curves(history, folder / "curves.png")]
    if data.features == 2:
        written.append(plots.decision_boundaries([(f"{data.name}: {net.sizes}", net)],
                                                 data.x_train, data.y_train,
                                                 folder / "decision_boundary.png"))
    return written


def _loss_text(loss: float) -> str:
    """0.1387, or 1.177e+305 for a run that diverged (not 300 digits)."""
    return f"{loss:.4f}" if abs(loss) < 1e6 else f"{loss:.4g}"


def _report(result: dict, args, checkpoint) -> None:
    if args.json:
        print(json.dumps(result))
        return
    test = result["test_accuracy"]
    print(f"{result['dataset']}: network {result['sizes']}, {args.activation}, {args.loss}"
          f"{f' + {args.lam} {args.regularizer}' if args.lam else ''}; {args.optimizer} "
          f"lr {args.lr}")
    print(f"step: {result['step']}")
    print(f"trained {result['epochs']} epochs ({result['steps']} steps) in "
          f"{result['seconds']:.1f} s: final loss {_loss_text(result['final_loss'])}, "
          f"train accuracy {result['train_accuracy']:.3f}"
          + (f", test accuracy {test:.3f}" if test else ""))
    if result["stopped"]:
        print(f"stopped: {result['stopped']}")
    if result.get("hint"):
        print(f"hint: {result['hint']}")
    if checkpoint:
        print(f"checkpoint: {checkpoint} (continue with --resume {checkpoint})")
    for path in result.get("plots", []):
        print(f"plot: {path}")


def _per_dataset(key: str) -> str:
    """'default: spiral 2000, digits 40, a file 50' (or one value when all agree): what a run
    uses when not told (DEFAULTS), for --help, so that the two never differ."""
    values = {kind: _shown(defaults[key]) for kind, defaults in DEFAULTS.items()}
    if len(set(values.values())) == 1:
        return f"default: {values['spiral']}"
    shown = {"spiral": "spiral", "digits": "digits", "file": "a file"}
    return "default: " + ", ".join(f"{shown[kind]} {value}" for kind, value in values.items())


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_command(commands) -> None:
    training = commands.add_parser(
        "train", help="train a network of generated modules (default: a 2-layer ReLU "
                      "network, softmax cross-entropy and L2, on the spiral)",
        description="Train a fully connected network whose every forward and backward is a "
                    "generated numpy module, on the spiral, scikit-learn's digits or your own "
                    "data; the defaults of --lam, --optimizer, --lr, --epochs and --batch-size "
                    "depend on the data set.")
    add = training.add_argument
    add("--dataset", default="spiral",
        help="spiral, digits (needs scikit-learn), or FILE.npz / FILE.csv (default: spiral)")
    add("--hidden", help=f"hidden layer sizes, e.g. 100 or 64,32 ({_per_dataset('hidden')})")
    add("--activation", default="relu", help="catalog name or FILE.py:NAME (default: relu)")
    add("--loss", default="softmax_ce",
        help="catalog name or FILE.py:NAME (default: softmax_ce)")
    add("--regularizer", default="l2", help="catalog name or FILE.py:NAME (default: l2)")
    add("--lam", type=float,
        help=f"regularisation strength lambda, 0 for none ({_per_dataset('lam')})")
    add("--optimizer", choices=("sgd", "momentum", "adam"),
        help=f"the update rule ({_per_dataset('optimizer')})")
    add("--lr", type=float, help=f"learning rate ({_per_dataset('lr')})")
    add("--epochs", type=int, help=f"passes over the training set ({_per_dataset('epochs')})")
    add("--batch-size", type=int,
        help=f"rows per step, 0 for the whole training set ({_per_dataset('batch_size')})")
    add("--seed", type=int, default=0,
        help="seeds initialisation, shuffling and the spiral (default: 0)")
    add("--norm", choices=("batchnorm",),
        help="a normalisation after each hidden affine layer, before its activation: "
             "batchnorm (generated/layers/batchnorm.py; running statistics for prediction); "
             "default: none")
    add("--network", metavar="FILE.py:NAME",
        help="train a declared Network with a tensor-layer stage and a loss (affine, "
             "batchnorm, relu, affine) through its one generated module; --hidden fills its "
             "sizes other than the data's features and classes; default: the --hidden "
             "network")
    add("--dtype", choices=("float64", "float32"), default="float64",
        help="the parameters' and data's float type (default: float64)")
    add("--plot", metavar="DIR", help="write loss/accuracy curves (and the decision "
                                      "boundary for 2-D data) as PNGs (needs matplotlib)")
    add("--save", metavar="FILE.npz", help="save parameters and optimiser state")
    add("--resume", metavar="FILE.npz", help="continue from a checkpoint")
    add("--json", action="store_true", help="print one JSON line instead of progress")
    add("--layer-by-layer", action="store_true",
        help="train with the layers' modules, never a fused step of the whole network "
             "(by default one trains: generated/networks/'s, or one generated into the "
             "cache)")
    training.set_defaults(run=cmd_train)
