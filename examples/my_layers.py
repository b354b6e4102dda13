"""A layer of your own at matrix level, batch first: a dense layer with tanh, and the
hand derivation of dL/dW that reuses the forward output Y.

    symnet derive examples/my_layers.py:dense_tanh     # the derived VJPs
    symnet check examples/my_layers.py                 # proves the hand derivation
    symnet generate examples/my_layers.py -o out       # out/layers/dense_tanh.py
"""

import sympy as sp

from symnet import Gradient
from symnet.catalog.activations import tanh
from symnet.declare.layer import Layer, broadcast, elementwise, size

N, D, M = size("N"), size("D"), size("M")   # symbolic sizes: the batch, inputs, outputs
X, W = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M)
b, G = sp.MatrixSymbol("b", 1, M), sp.MatrixSymbol("G", N, M)   # a bias row; G = dL/dY
Y = elementwise(tanh, X * W + broadcast(b, N))
dense_tanh = Layer("dense_tanh", Y, inputs=(X, W, b), upstream=G, hand=[
    # tanh' = 1 - tanh^2, so dL/dW is X^T times G .* (1 - Y^2), Y the forward's output
    Gradient(X.T * sp.HadamardProduct(G, sp.OneMatrix(N, M) - sp.HadamardPower(Y, 2)),
             wrt=W, label="dL/dW = X^T (G .* (1 - Y^2))")])
