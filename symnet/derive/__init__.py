"""The derivation stage: `derive(declaration)` gives its derivatives in the closed form a
person writes, computed once per declaration.

    dispatch.py   derive(), the one entry, dispatching on the declaration's type
    scalar.py     activations and losses (registered there)

Layers are derived in symnet.matrix.vjp, networks in symnet.matrix.network_derive, tensor
layers in symnet.index.derive: their
handlers are registered here, where the stage is imported, and not from their modules,
which would import this package while they are half loaded (whichever of them is imported
first) and so fail. symnet.show.page registers the page Jupyter shows of a derivation;
it is imported here so that every derivation displays. (symnet/__init__.py keeps `from
symnet import derive` the function.)
"""

from symnet.declare.layer import Layer
from symnet.declare.network import Network
from symnet.declare.tensor import IndexLayer
from symnet.derive.dispatch import derivation_of, derive, forget_derivations
from symnet.derive.scalar import (
    ActivationDerivation,
    LossDerivation,
    check_continuous,
    closed_form,
    derive_activation,
    derive_gradient,
    derive_jacobian,
    derive_loss,
    differentiate,
    free_indices,
    in_terms_of_output,
    softmax_legend,
    sum_deltas,
    tidy,
)
from symnet.index.derive import derive_index_layer
from symnet.matrix.network_derive import derive_network
from symnet.matrix.vjp import derive_layer
from symnet.notation import ShowsAsLatex

derivation_of.register(Layer, derive_layer)
derivation_of.register(Network, derive_network)
derivation_of.register(IndexLayer, derive_index_layer)

import symnet.show.page  # noqa: E402, F401, I001  (registers the page of a derivation for Jupyter)

__all__ = ["ActivationDerivation", "LossDerivation", "ShowsAsLatex", "check_continuous",
           "closed_form", "derivation_of", "derive", "derive_activation", "derive_gradient",
           "derive_jacobian", "derive_loss", "differentiate", "forget_derivations",
           "free_indices", "in_terms_of_output", "softmax_legend", "sum_deltas", "tidy"]
