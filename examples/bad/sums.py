"""A layer that repeats X's column sums on every row, Y = ones(N, N)*X: numpy would compute
one row, not N, so symnet refuses to write it (exit status 2) rather than write a wrong
shape.

    symnet generate examples/bad/sums.py:column_sums -o out
"""

import sympy as sp

from symnet.declare.layer import Layer, size

N = size("N")
X = sp.MatrixSymbol("X", N, size("D"))
column_sums = Layer("column_sums", sp.OneMatrix(N, N) * X, inputs=X)
