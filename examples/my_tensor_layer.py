"""A tensor layer of your own, in index notation: layer normalisation, each row of X
normalised by its own mean and variance over the features (a statistic over the feature
axis), then scaled and shifted per feature.

    symnet derive examples/my_tensor_layer.py:layernorm
    symnet check examples/my_tensor_layer.py:layernorm
    symnet generate examples/my_tensor_layer.py:layernorm -o out
"""

import sympy as sp

from symnet.declare.tensor import IndexLayer, indices, over, size, tensors

N, D = size("N"), size("D")
n, d = indices("n d")
X, Y, gamma, beta, mu, var, sigma, x_hat = tensors("X Y gamma beta mu var sigma x_hat")
eps = sp.Symbol("eps", positive=True)

layernorm = IndexLayer(
    "layernorm", Y[n, d], gamma[d] * x_hat[n, d] + beta[d],
    inputs=(X[n, d], gamma[d], beta[d]), ranges={n: N, d: D},
    statistics={mu[n]: over(X[n, d], d, D) / D,
                var[n]: over((X[n, d] - mu[n]) ** 2, d, D) / D,
                sigma[n]: sp.sqrt(var[n] + eps),
                x_hat[n, d]: (X[n, d] - mu[n]) / sigma[n]},
    params={eps: sp.Float("1e-5")},
    doc="Layer normalisation: each row normalised over its features.",
)
