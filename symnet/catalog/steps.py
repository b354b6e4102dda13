"""The catalog's training steps: the optimisers SGD, momentum and Adam, the runtime's
networks, and the fused steps `symnet generate` writes into generated/networks/NAME.py.

What a training step and an optimiser are is declared in symnet/declare/step.py; here
are the entries: each optimiser's update rule for one entry of a parameter and of its
state, ``P <- P - lr*G`` for SGD, ``V <- mu*V - lr*G, P <- P + V`` for momentum, Adam's
moments with bias correction.

The networks are the runtime's (`symnet.runtime.network`): affine layers with biases
(W1, b1, W2, b2, ...), the same activation between them, the loss on the scores and the
regulariser on every weight matrix W (not on the biases).
"""

from __future__ import annotations

import sympy as sp

from symnet.catalog import activations
from symnet.catalog.layers import affine
from symnet.catalog.losses import l2, softmax_ce
from symnet.declare.layer import size
from symnet.declare.network import Network, use
from symnet.declare.step import G, Optimizer, P, TrainingStep
from symnet.target_kinds import VECTOR_KINDS

lr = sp.Symbol("lr", positive=True)
mu = sp.Symbol("mu", positive=True)
beta1, beta2 = sp.Symbol("beta1", positive=True), sp.Symbol("beta2", positive=True)
eps = sp.Symbol("eps", positive=True)
#: one entry of a state array of the parameter's shape, named as the runtime's optimiser
#: keeps it (symnet.runtime.optim: its dicts velocity, first, second)
velocity, first, second = (sp.Symbol(name, real=True) for name in ("velocity", "first",
                                                                    "second"))
#: Adam's count of steps, advanced by one before its rules (they see t = 1 at the first step)
t = sp.Symbol("t", positive=True, integer=True)

sgd = Optimizer("sgd", ((P, P - lr * G),), hyper=(lr,),
                doc="vanilla gradient descent, P <- P - lr*G (the lecture's update)")
momentum = Optimizer("momentum", ((velocity, mu * velocity - lr * G), (P, P + velocity)),
                     hyper=(lr, mu), state=(velocity,),
                     doc="momentum, V <- mu*V - lr*G then P <- P + V")
#: Adam with bias correction: the moments' estimates divided by 1 - beta^t
adam = Optimizer("adam", (
    (first, beta1 * first + (1 - beta1) * G),
    (second, beta2 * second + (1 - beta2) * G ** 2),
    (P, P - lr * (first / (1 - beta1 ** t)) / (sp.sqrt(second / (1 - beta2 ** t)) + eps)),
), hyper=(lr, beta1, beta2, eps), state=(first, second), counter=t,
    doc="Adam, m <- beta1*m + (1 - beta1)*G, v <- beta2*v + (1 - beta2)*G^2, "
        "P <- P - lr*(m/(1 - beta1^t))/(sqrt(v/(1 - beta2^t)) + eps)")
OPTIMIZERS = {o.name: o for o in (sgd, momentum, adam)}


DEPTHS = dict(enumerate(("one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                         "ten"), 1))


def depth_name(depth: int) -> str:
    """two_layer, three_layer, ...: the word for the depth of a network's name."""
    return f"{DEPTHS[depth]}_layer" if depth in DEPTHS else f"depth{depth}_layer"


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
    name = f"{depth_name(depth)}_{activation.name}"
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


#: the networks whose steps `symnet generate` writes into generated/networks/, with each
#: optimiser: (activation, depth)
COMMITTED = ((activations.relu, 2), (activations.tanh, 2), (activations.sigmoid, 2),
             (activations.leaky_relu, 2), (activations.relu, 3))
#: the steps `symnet generate` writes into generated/networks/, in order: what this module
#: adds to the registry (symnet.catalog, whose STEPS gives them by name)
DECLARATIONS = tuple(training_step(activation, depth=depth, optimizer=optimizer)
                     for optimizer in (sgd, momentum, adam) for activation, depth in COMMITTED)
