"""The lecture's activation functions (L10), then more, each with its hand derivations.

To add one: declare it here (or in your own file) as an `Activation`; derivation,
verification, the command line and the tests pick it up from the registry.
"""

import sympy as sp

from symnet.declare.scalar import Activation, Gradient, Identity, Kink
from symnet.primitives import Logistic, Softplus
from symnet.symbols import a, b, out, x

slope = sp.Symbol("slope", real=True)
alpha = sp.Symbol("alpha", real=True)

sigmoid = Activation(
    "sigmoid", 1 / (1 + sp.exp(-x)), inputs=x,
    hand=[
        Gradient(sp.exp(-x) / (1 + sp.exp(-x)) ** 2, label="L19 sigma' = e^-x / (1 + e^-x)^2"),
        Gradient(out * (1 - out), label="L19 sigma' = (1 - sigma) sigma"),
    ],
    doc="The logistic sigmoid 1 / (1 + e^-x).",
)

tanh = Activation(
    "tanh", sp.tanh(x), inputs=x,
    hand=[Gradient(1 - out ** 2, label="tanh' = 1 - tanh^2")],
    doc="The hyperbolic tangent.",
)

relu = Activation(
    "relu", sp.Max(0, x), inputs=x,
    kinks=[Kink({x: 0}, {x: 0})],
    hand=[Gradient(sp.Heaviside(x, 0), label="L24 relu' = 1 where x > 0, else 0")],
    doc="The rectified linear unit max(0, x).",
)

leaky_relu = Activation(
    "leaky_relu", sp.Piecewise((x, x > 0), (slope * x, True)), inputs=x,
    params={slope: sp.Rational(1, 10)},
    kinks=[Kink({x: 0}, {x: slope})],
    hand=[
        Gradient(sp.Piecewise((1, x > 0), (slope, True)), label="leaky' = 1 or the slope"),
        Identity(sp.Max(x / 10, x),
                 sp.Piecewise((x, x > 0), (x / 10, True)),
                 label="L10 max(0.1x, x) is the leaky ReLU with slope 0.1"),
    ],
    doc="The leaky ReLU: x where x > 0, slope * x elsewhere (the lecture's max(0.1x, x)).",
)

elu = Activation(
    "elu", sp.Piecewise((x, x >= 0), (alpha * (sp.exp(x) - 1), True)), inputs=x,
    params={alpha: 1},
    kinks=[Kink({x: 0}, {x: 1})],
    hand=[
        Gradient(sp.Piecewise((1, x >= 0), (alpha * sp.exp(x), True)),
                 label="elu' = 1 or alpha e^x"),
        Gradient(sp.Piecewise((1, x >= 0), (out + alpha, True)),
                 label="elu' = 1 or elu + alpha"),
    ],
    doc="The exponential linear unit: x for x >= 0, alpha (e^x - 1) for x < 0.",
)

maxout = Activation(
    "maxout", sp.Max(a, b), inputs=(a, b),
    kinks=[Kink({a: 0, b: 0}, {a: 1, b: 0})],
    hand=[
        Gradient(sp.Heaviside(a - b, 1), wrt=a, label="L21 max routes the gradient to a"),
        Gradient(sp.Heaviside(b - a, 0), wrt=b, label="L21 max routes the gradient to b"),
    ],
    doc="Maxout's max(a, b) of two pre-activations; a tie routes the gradient to a.",
)


# --- past the lecture: smooth activations declared with the stable primitives ------------

softplus = Activation(
    "softplus", Softplus(x), inputs=x,
    hand=[
        Gradient(Logistic(x), label="softplus' = sigmoid"),
        Gradient(sp.exp(x) / (1 + sp.exp(x)), label="softplus' = e^x / (1 + e^x)"),
        Identity(Softplus(x) - Softplus(-x), x, label="softplus(x) - softplus(-x) = x"),
    ],
    doc="The softplus log(1 + e^x), a smooth ReLU, finite for any x.",
)

silu = Activation(
    "silu", x * Logistic(x), inputs=x,
    hand=[
        Gradient(Logistic(x) * (1 + x * (1 - Logistic(x))),
                 label="silu' = sigma(x) (1 + x (1 - sigma(x)))"),
        Gradient(out + Logistic(x) * (1 - out), label="silu' = silu + sigma(x) (1 - silu)"),
    ],
    doc="The sigmoid-weighted linear unit (SiLU, swish with beta = 1): x sigma(x).",
)
