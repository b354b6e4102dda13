"""symnet: declare neural-network losses and activations in sympy; symnet derives their
gradients, proves them equal to hand derivations, and emits numpy code.

The public declaration API (what a declaration is lives in symnet/declare/, one module
per level; the stable primitives in symnet/primitives.py)::

    from symnet import Activation, Loss, Regularizer, Gradient, Jacobian, Identity, Kink
    from symnet import LogSumExp, Softmax, log_softmax, Softplus, Logistic
    from symnet import derive                       # derive(declaration) -> its derivation
    from symnet.symbols import x, out, s, y, C, i, j, k, t
    from symnet.declare.layer import Layer, broadcast, elementwise, size
    from symnet.declare.network import Network, use
    from symnet.declare.tensor import IndexLayer, indices, over, size, tensors

The names are imported on first use, so that `symnet.runtime` (numpy only) can be
imported without paying for sympy.
"""

import sys
from importlib import import_module
from types import ModuleType

__version__ = "0.1.0"

_SCALAR = "symnet.declare.scalar"
_PUBLIC = {
    "Activation": _SCALAR, "Loss": _SCALAR, "Regularizer": _SCALAR, "Gradient": _SCALAR,
    "Jacobian": _SCALAR, "Identity": _SCALAR, "Kink": _SCALAR,
    "LogSumExp": "symnet.primitives", "Softmax": "symnet.primitives",
    "log_softmax": "symnet.primitives", "Softplus": "symnet.primitives",
    "Logistic": "symnet.primitives",
    "SymnetError": "symnet.errors", "DeclarationError": "symnet.errors",
    "DerivationError": "symnet.errors", "LoadError": "symnet.errors",
    "derive": "symnet.derive",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'symnet' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)


class _Package(ModuleType):
    """symnet itself, whose attribute `derive` stays the function derive(declaration).

    The package symnet/derive/ has the function's name, and the import system sets a
    package's attribute to each submodule it loads: whichever code imports
    `symnet.derive` first (every command does) would leave `from symnet import derive`
    giving the package. The package is still `sys.modules["symnet.derive"]`, so
    `from symnet.derive import ...` is unchanged."""

    def __setattr__(self, name: str, value) -> None:
        if name == "derive" and isinstance(value, ModuleType) \
                and value.__name__ == "symnet.derive":
            value = value.derive
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
