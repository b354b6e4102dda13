"""A dense layer whose bias has the wrong width: b is 1 x K where X*W is N x M. sympy
accepts the sum; symnet names both shapes and the line (exit status 2).

    symnet check examples/bad/shapes.py
"""

import sympy as sp

from symnet.declare.layer import Layer, broadcast, size

N, D, M, K = size("N"), size("D"), size("M"), size("K")
X, W, b = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M), sp.MatrixSymbol("b", 1, K)
dense = Layer("dense", X * W + broadcast(b, N), inputs=(X, W, b))
