"""A whole MLP with batch norm as a network declaration: affine, batchnorm, relu, affine,
with softmax cross-entropy on its scores. Each stage is derived and proved on its own, for
every size, and the network's gradients are the chain rule at the stage boundaries; one
generated module runs it, and `symnet train --network` trains it.

    symnet derive examples/my_network.py:mlp_bn
    symnet check examples/my_network.py:mlp_bn
    symnet generate examples/my_network.py:mlp_bn -o out
    symnet train --network examples/my_network.py:mlp_bn --dataset digits
"""

import sympy as sp

from symnet.catalog.activations import relu
from symnet.catalog.layers import affine, batchnorm
from symnet.catalog.losses import softmax_ce
from symnet.declare.layer import size
from symnet.declare.network import Network, use

N, D, H, C = size("N"), size("D"), size("H"), size("C")
X, T = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("T", N, C)     # T: one-hot targets
W1, b1 = sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol("b1", 1, H)
g1, be1 = sp.MatrixSymbol("g1", 1, H), sp.MatrixSymbol("be1", 1, H)
W2, b2 = sp.MatrixSymbol("W2", H, C), sp.MatrixSymbol("b2", 1, C)

mlp_bn = Network(
    "mlp_bn", input=X,
    stages=[use(affine, W=W1, b=b1), use(batchnorm, gamma=g1, beta=be1), use(relu),
            use(affine, W=W2, b=b2)],
    loss=softmax_ce, target=T,
    doc="A two-layer perceptron with batch norm before its ReLU.",
)
