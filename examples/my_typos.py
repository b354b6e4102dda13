"""The declarations of my_declarations.py with the slips a tired person makes in the hand
derivations; `symnet check examples/my_typos.py` refutes both, each with a point where
the derived and the claimed gradient differ (exit status 1).
"""

import sympy as sp

from symnet import Activation, Gradient, Loss, Softmax, log_softmax
from symnet.primitives import Logistic, Softplus
from symnet.symbols import C, i, k, s, x, y

mish = Activation(
    "mish", x * sp.tanh(Softplus(x)), inputs=x,
    hand=[Gradient(sp.tanh(Softplus(x)) + x * Logistic(x),
                   label="mish' with 1 - tanh^2 forgotten")],
)

eps = sp.Symbol("epsilon", positive=True)

smoothed_ce = Loss(
    "smoothed_ce",
    -sp.Sum(((1 - eps) * y[i] + eps / C) * log_softmax(s, C, i), (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind="one_hot",
    constraints=[sp.Eq(sp.Sum(y[i], (i, 0, C - 1)), 1)],
    params={eps: sp.Rational(1, 10)},
    hand=[Gradient(Softmax(s, C, k) - (1 - eps) * y[k],
                   label="dL/ds_k with eps/C forgotten")],
)
