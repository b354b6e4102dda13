"""`symnet demo`: the whole flow once, on the lecture's softmax classifier.

derive -> prove -> generate -> train: what symnet is for, in a few seconds.
"""

from __future__ import annotations

import argparse

import sympy as sp

from symnet import display
from symnet.catalog import REGISTRY
from symnet.cli.train import cmd_train
from symnet.codegen.emit import Source, module_file
from symnet.declare.scalar import Gradient, Loss
from symnet.derive import derive
from symnet.primitives import Softmax
from symnet.symbols import C, k, s, y
from symnet.target_kinds import ONE_HOT
from symnet.verify import check


def _title(number: int, text: str) -> None:
    print(f"\n== {number}. {text}")


def _derive_and_check() -> None:
    decl = REGISTRY["softmax_ce"]
    _title(1, "derive: softmax cross-entropy, declared in sympy with a stable log-softmax")
    for line in display.render_text(display.describe(derive(decl))):
        print(line)
    _title(2, "prove: the lecture's hand derivations, each with a verdict")
    for verdict in check(decl):
        print(f"  {verdict}")


def _slide_typo() -> None:
    """The slide's line with k != 1 where k != i is meant, checked like any claim."""
    decl = REGISTRY["softmax_ce"]
    m = sp.Symbol("m", integer=True)
    p = Softmax(s, C, k)
    slide = -y[k] * (1 - p) + sp.Sum((1 - sp.KroneckerDelta(m, 1)) * y[m] * p, (m, 0, C - 1))
    typo = Loss("softmax_ce_slide", decl.forward, scores=s, size=C, target=y,
                target_kind=ONE_HOT, constraints=decl.constraints,
                hand=[Gradient(slide, label="L31 as on the slide: sum over k != 1")])
    print("  and the slide's typo (k != 1 where k != i is meant) is caught:")
    for verdict in check(typo):
        print("  " + str(verdict).replace("\n", "\n  "))


def _generate() -> None:
    _title(3, "generate: the numpy module, stable at logits of +-1000")
    _, text = module_file(Source("softmax_ce", REGISTRY["softmax_ce"]))
    body = text[text.index("def loss"):]
    print("\n".join(f"  {line}" for line in body.rstrip().splitlines()))


def cmd_demo(args) -> int:
    _derive_and_check()
    _slide_typo()
    _generate()
    _title(4, "train: a 2-layer ReLU network on the spiral, with generated modules only")
    train_args = argparse.Namespace(
        dataset="spiral", hidden=None, activation="relu", loss="softmax_ce",
        regularizer="l2", lam=None, optimizer=None, lr=None, epochs=None, batch_size=None,
        seed=0, dtype="float64", plot=args.plot, save=None, resume=None, json=False)
    return cmd_train(train_args)


def add_command(commands) -> None:
    demo = commands.add_parser(
        "demo", help="the whole flow once: derive, prove, generate, train (a few seconds)",
        description="Run the whole flow once on the lecture's softmax classifier: derive its "
                    "gradient, prove the hand derivations (and refute the slide's typo), print "
                    "the generated numpy loss, and train a 2-layer ReLU network on the spiral.")
    demo.add_argument("--plot", metavar="DIR", help="also draw the training curves and the "
                                                    "decision boundary into DIR (needs matplotlib)")
    demo.set_defaults(run=cmd_demo)
