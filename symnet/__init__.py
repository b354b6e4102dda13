"""symnet: declare neural-network losses and activations in sympy; symnet derives their
gradients, proves them equal to hand derivations, and emits numpy code.

The public declaration API::

    from symnet import Activation, Loss, Regularizer, Gradient, Jacobian, Identity, Kink
    from symnet import LogSumExp, Softmax, log_softmax
    from symnet.symbols import x, out, s, y, C, i, j, k, t
"""

from symnet.errors import DeclarationError, DerivationError, LoadError, SymnetError
from symnet.primitives import LogSumExp, Softmax, log_softmax
from symnet.spec import Activation, Gradient, Identity, Jacobian, Kink, Loss, Regularizer

__version__ = "0.1.0"

__all__ = [
    "Activation", "Loss", "Regularizer", "Gradient", "Jacobian", "Identity", "Kink",
    "LogSumExp", "Softmax", "log_softmax",
    "SymnetError", "DeclarationError", "DerivationError", "LoadError",
]
