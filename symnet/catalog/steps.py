"""Training steps: a network, its loss and regulariser, and an optimiser's update, fused
into one generated function (`symnet generate` writes generated/networks/NAME.py).

A training step is declared like everything else in symnet: its network is a `Network`
of catalog layers (`symnet.matrix.networks`), and the optimiser is its update rule for one entry
of a parameter, ``new = P - lr*G`` for SGD. Nothing here is derived; `step_plan.py`
derives the step from these declarations and `network_step.py` lowers it.

The networks are the runtime's (`symnet.runtime.network`): affine layers with biases
(W1, b1, W2, b2, ...), the same activation between them, the loss on the scores and the
regulariser on every weight matrix W (not on the biases).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symnet.catalog import activations
from symnet.catalog.layers import affine
from symnet.catalog.losses import l2, softmax_ce
from symnet.errors import DeclarationError
from symnet.matrix.layers import size
from symnet.matrix.networks import Network, use
from symnet.target_kinds import VECTOR_KINDS

P, G = sp.Symbol("P", real=True), sp.Symbol("G", real=True)
lr = sp.Symbol("lr", positive=True)


@dataclass(frozen=True)
class Optimizer:
    """An optimiser without state: the new value of one parameter entry P from its
    gradient G, ``rule`` in P, G and the hyper-parameters (in argument order)."""

    name: str
    rule: sp.Expr
    hyper: tuple
    doc: str = ""

    def __post_init__(self):
        extra = self.rule.free_symbols - {P, G, *self.hyper}
        if extra:
            raise DeclarationError(self.name, f"the update rule uses {sorted(map(str, extra))}, "
                                   f"which are neither P, G nor a hyper-parameter")


sgd = Optimizer("sgd", P - lr * G, hyper=(lr,),
                doc="vanilla gradient descent, P <- P - lr*G (the lecture's update)")


@dataclass(frozen=True, eq=False)
class TrainingStep:
    """One training step of `network` (with its loss and regulariser) by `optimizer`."""

    name: str
    network: Network
    optimizer: Optimizer
    doc: str = ""
    kind = "step"


DEPTHS = {2: "two", 3: "three"}


def runtime_network(activation, depth: int, loss=softmax_ce, regularizer=l2) -> Network:
    """The runtime's network: `depth` affine layers with biases and `activation` between
    them, the loss averaged over the batch, the regulariser on every W."""
    N, D, C = size("N"), size("D"), size("C")
    # the hidden widths: H, or M1, M2, ... (H1, H2 name the hidden layers' outputs)
    widths = [D] + [size(f"M{k}" if depth > 2 else "H") for k in range(1, depth)] + [C]
    X = sp.MatrixSymbol("X", N, D)
    stages, weights = [], []
    for layer in range(1, depth + 1):
        W = sp.MatrixSymbol(f"W{layer}", widths[layer - 1], widths[layer])
        b = sp.MatrixSymbol(f"b{layer}", 1, widths[layer])
        last = layer == depth
        out = sp.MatrixSymbol("S" if last else f"Z{layer}", N, widths[layer])
        stages.append(use(affine, W=W, b=b, out=out))
        if not last:
            stages.append(use(activation, out=sp.MatrixSymbol(f"H{layer}", N, widths[layer])))
        weights.append(W)
    target = sp.MatrixSymbol("Y", N, C) if loss.target_kind in VECTOR_KINDS else None
    name = f"{DEPTHS[depth]}_layer_{activation.name}"
    return Network(name, input=X, stages=stages, loss=loss, target=target,
                   regularizer=regularizer, regularized=tuple(weights),
                   doc=f"{depth} affine layers with biases, {activation.name} between them")


def training_step(activation, depth: int = 2, loss=softmax_ce, regularizer=l2,
                  optimizer=sgd) -> TrainingStep:
    network = runtime_network(activation, depth, loss, regularizer)
    name = f"{network.name}_{loss.name}_{regularizer.name}_{optimizer.name}"
    return TrainingStep(name, network, optimizer,
                        doc=f"{network.doc}; {loss.name} averaged over the batch, "
                            f"{regularizer.name} on each W; {optimizer.doc}")


#: the steps `symnet generate` writes into generated/networks/, in order: what this module
#: adds to the registry (symnet.catalog, whose STEPS gives them by name)
DECLARATIONS = (
    training_step(activations.relu),
    training_step(activations.tanh),
    training_step(activations.sigmoid),
    training_step(activations.leaky_relu),
    training_step(activations.relu, depth=3),
)
