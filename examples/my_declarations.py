"""Declarations of your own: an activation, a loss and a layer, each with the derivative
you worked out by hand. symnet is not edited; this file is all there is.

    symnet derive examples/my_declarations.py:mish          # the derived gradient
    symnet check examples/my_declarations.py                # your derivations: proved?
    symnet generate examples/my_declarations.py -o my_modules
    symnet derive examples/my_declarations.py:smoothed_ce --report smoothed_ce.md

Write the forward with symnet's stable primitives (Softplus, Logistic, LogSumExp, Softmax,
log_softmax) where it has an exp or a log: symnet then derives a stable backward too, and
the generated numpy never overflows. Your hand derivation may use them as well.
"""

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet import Activation, Gradient, Loss, Softmax, log_softmax
from symnet.declare.layer import Layer, broadcast, elementwise, size
from symnet.primitives import Logistic, Softplus
from symnet.symbols import C, i, k, s, x, y

# --- an activation: Mish, x tanh(softplus(x)) ---------------------------------------------

_tanh_softplus = sp.tanh(Softplus(x))
#: by the product rule, with softplus' = sigmoid and tanh' = 1 - tanh^2
mish_prime = _tanh_softplus + x * Logistic(x) * (1 - _tanh_softplus ** 2)

mish = Activation(
    "mish", x * sp.tanh(Softplus(x)), inputs=x,
    hand=[Gradient(mish_prime, label="my mish' by the product rule")],
    doc="Mish: x tanh(softplus(x)), smooth and non-monotonic.",
)

# --- a loss over scores and a one-hot target: cross-entropy with label smoothing ---------

eps = sp.Symbol("epsilon", positive=True)

smoothed_ce = Loss(
    "smoothed_ce",
    -sp.Sum(((1 - eps) * y[i] + eps / C) * log_softmax(s, C, i), (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind="one_hot",
    constraints=[sp.Eq(sp.Sum(y[i], (i, 0, C - 1)), 1)],     # y is one-hot: it sums to 1
    params={eps: sp.Rational(1, 10)},
    hand=[Gradient(Softmax(s, C, k) - (1 - eps) * y[k] - eps / C,
                   label="my dL/ds_k = p_k - (1 - eps) y_k - eps/C")],
    doc="Cross-entropy against the one-hot target smoothed towards uniform: "
        "(1 - epsilon) y + epsilon / C.",
)

# --- a layer: dense, then Mish, batch first -----------------------------------------------

N, D, M = size("N"), size("D"), size("M")
X, W, b = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M), sp.MatrixSymbol("b", 1, M)
G = sp.MatrixSymbol("G", N, M)        # the upstream gradient dL/dY
A = X * W + broadcast(b, N)           # the bias row repeated over the batch


def entrywise(expr, matrix):
    """expr (a formula in x) applied to each entry of matrix, for hand derivations."""
    return ElementwiseApplyFunction(sp.Lambda(x, expr), matrix)


dense_mish = Layer(
    "dense_mish", elementwise(mish, A), inputs=(X, W, b), upstream=G,
    hand=[Gradient(X.T * sp.HadamardProduct(G, entrywise(mish_prime, A)), wrt=W,
                   label="my dL/dW = X^T (G .* mish'(X W + b))")],
    doc="A dense layer with the Mish activation: Y = mish(X W + b).",
)
