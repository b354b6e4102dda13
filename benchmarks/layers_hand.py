"""The careful hand-written numpy layers benchmarks/layers.py measures the generated ones
against.

Each a layer as cs231n writes one, and as the generated module is: forward(...) -> (Y,
cache), backward(dY, cache) -> the gradients. (A hand version that did forward and
backward in one call, its intermediates local variables, skipped work the generated layer
must do, a cache built, returned and read: at 64 x 100 dropout takes 7 us, and that is
0.3 us of it.) batchnorm's cache also holds the batch's mu and var, as the generated
one's does for the running averages.
"""

from __future__ import annotations

import numpy as np

#: batch norm's eps and dropout's p, as the generated layers' defaults
EPS, P = 1e-5, 0.5


def numpy_batchnorm_forward(X, gamma, beta):
    n = X.shape[0]
    ones = np.ones(n, dtype=X.dtype)
    mu = (ones @ X) / n                              # column sums as BLAS products
    x_hat = X - mu
    var = np.einsum("nd,nd->d", x_hat, x_hat) / n    # no squared temporary
    inv_sigma = 1 / np.sqrt(var + EPS)
    x_hat *= inv_sigma                               # the centred buffer, reused
    Y = x_hat * gamma
    Y += beta
    return Y, (x_hat, gamma, inv_sigma, ones, mu, var)


def numpy_batchnorm_backward(dY, cache):
    # cs231n's compact backward: dX = gamma/(N sigma) (N dY - colsum(dY) - x_hat colsum(dY x_hat))
    x_hat, gamma, inv_sigma, ones = cache[:4]
    n = dY.shape[0]
    dbeta = ones @ dY
    dgamma = np.einsum("nd,nd->d", dY, x_hat)
    dX = x_hat * (-dgamma / n)
    dX += dY
    dX -= dbeta / n
    dX *= gamma * inv_sigma
    return dX, dgamma, dbeta


def numpy_softmax_rows_forward(X):
    Y = X - X.max(axis=1, keepdims=True)
    np.exp(Y, out=Y)
    Y /= Y.sum(axis=1, keepdims=True)
    return Y, (Y,)


def numpy_softmax_rows_backward(dY, cache):
    Y, = cache
    dX = dY - np.einsum("nc,nc->n", dY, Y)[:, None]
    dX *= Y
    return dX


def numpy_dropout_forward(X, M):
    Y = X * M
    Y *= 1 / (1 - P)
    return Y, (M,)


def numpy_dropout_backward(dY, cache):
    M, = cache
    dX = dY * M
    dX *= 1 / (1 - P)
    return dX


def numpy_bilinear_forward(X1, X2, W, b):
    n, d = X1.shape
    k, _, e = W.shape
    U = (X1 @ W.transpose(1, 0, 2).reshape(d, k * e)).reshape(n, k, e)   # X1 W, per k
    Y = np.einsum("nke,ne->nk", U, X2) + b
    return Y, (X1, X2, W, U)


def numpy_bilinear_backward(dY, cache):
    X1, X2, W, U = cache
    n, d = X1.shape
    k, _, e = W.shape
    dX2 = np.einsum("nk,nke->ne", dY, U)
    V = (dY[:, :, None] * X2[:, None, :]).reshape(n, k * e)             # dY (x) X2
    dX1 = V @ W.transpose(0, 2, 1).reshape(k * e, d)
    dW = (V.T @ X1).reshape(k, e, d).transpose(0, 2, 1)
    return dX1, dX2, dW, dY.sum(axis=0)


HAND = {layer: (globals()[f"numpy_{layer}_forward"], globals()[f"numpy_{layer}_backward"])
        for layer in ("batchnorm", "softmax_rows", "dropout", "bilinear")}
