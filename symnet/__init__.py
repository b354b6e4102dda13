"""symnet: declare neural-network losses and activations in sympy; symnet derives their
gradients, proves them equal to hand derivations, and emits numpy code.

The public declaration API::

    from symnet import Activation, Loss, Regularizer, Gradient, Jacobian, Identity, Kink
    from symnet import LogSumExp, Softmax, log_softmax, Softplus, Logistic
    from symnet.symbols import x, out, s, y, C, i, j, k, t

The names are imported on first use, so that `symnet.runtime` (numpy only) can be
imported without paying for sympy.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "Activation": "symnet.spec", "Loss": "symnet.spec", "Regularizer": "symnet.spec",
    "Gradient": "symnet.spec", "Jacobian": "symnet.spec", "Identity": "symnet.spec",
    "Kink": "symnet.spec",
    "LogSumExp": "symnet.primitives", "Softmax": "symnet.primitives",
    "log_softmax": "symnet.primitives", "Softplus": "symnet.primitives",
    "Logistic": "symnet.primitives",
    "SymnetError": "symnet.errors", "DeclarationError": "symnet.errors",
    "DerivationError": "symnet.errors", "LoadError": "symnet.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'symnet' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
