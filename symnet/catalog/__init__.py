"""The registry: every declaration of the catalog, by name, in a fixed order.

A declaration is registered by being declared in one of the catalog's modules; the
registry collects them, so adding an entry touches one place.
"""

from __future__ import annotations

from types import ModuleType

from symnet.catalog import activations, layers, losses
from symnet.index import IndexLayer
from symnet.matrix.layers import Layer
from symnet.matrix.networks import Network
from symnet.spec import Activation, Loss

#: what a module may declare
DECLARATION_TYPES = (Activation, Loss, Layer, Network, IndexLayer)


def declarations_in(module: ModuleType) -> dict:
    """The declarations a module defines, by their own names, in definition order."""
    found = {}
    for value in vars(module).values():
        if isinstance(value, DECLARATION_TYPES) and value.name not in found:
            found[value.name] = value
    return found


REGISTRY: dict = {**declarations_in(activations), **declarations_in(losses)}

# Layers and networks (matrix level) have their own registry: every activation is also a
# layer under its own name (LAYER_REGISTRY["relu"]), and the stages that handle only
# activations and losses (code generation) keep iterating REGISTRY. CATALOG is every name
# the command line knows; an activation's name gives its declaration, which symnet derives
# and checks at both levels.
LAYER_REGISTRY: dict = {**layers.LAYERS, **layers.NETWORKS}
CATALOG: dict = {**REGISTRY, **{n: d for n, d in LAYER_REGISTRY.items() if n not in REGISTRY},
                 **layers.TENSOR_LAYERS}   # tensor layers: index notation, symnet.index


def names() -> list[str]:
    return list(REGISTRY)
