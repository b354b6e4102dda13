"""The registry: every declaration of the catalog, by name, in a fixed order.

A declaration is registered by being declared in one of the catalog's modules (with the
classes of symnet/declare/, which say what each kind of declaration is); one `Catalog`
collects them all, so adding an entry touches one place:

    activations.py  the activations (each is also a layer under its own name)
    losses.py       the losses and regularisers
    layers.py       the layers and networks at matrix level, and the tensor layers
    steps.py        the optimisers and the fused training steps `symnet generate` writes
                    (generated/networks/)

The old names are views of it by kind: REGISTRY (activations, losses, regularisers: the
scalar and per-sample level), LAYER_REGISTRY (layers, every activation as a layer, and
networks), CATALOG (every name the command line lists and checks: an activation's name
gives the activation) and STEPS (the training steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import ModuleType

from symnet.catalog import activations, layers, losses, steps
from symnet.declare.layer import Layer
from symnet.declare.network import Network
from symnet.declare.scalar import Activation, Loss
from symnet.declare.tensor import IndexLayer

#: what a user's module may declare (symnet.loader)
DECLARATION_TYPES = (Activation, Loss, Layer, Network, IndexLayer)
#: the catalog's modules, in the order their entries are listed
MODULES = (activations, losses, layers, steps)
#: the kinds `symnet list` and `symnet check` show (a training step is generated only)
LISTED_KINDS = ("activation", "loss", "regularizer", "layer", "network",
                "tensor layer")


def declarations_in(module: ModuleType) -> dict:
    """The declarations a module defines, by their own names, in definition order."""
    found = {}
    for value in vars(module).values():
        if isinstance(value, DECLARATION_TYPES) and value.name not in found:
            found[value.name] = value
    return found


def registered(module: ModuleType) -> list:
    """A catalog module's declarations, in order: its DECLARATIONS where it lists them (it
    makes some that have no name in the module, such as every activation as a layer),
    else every declaration it defines by name."""
    listed = getattr(module, "DECLARATIONS", None)
    return list(listed) if listed is not None else list(declarations_in(module).values())


class Catalog(Mapping):
    """Declarations in a fixed order, by name; where several share a name (the activation
    relu and relu as a layer) the name gives the first, and a view by kind the others."""

    def __init__(self, declarations: Iterable):
        self.declarations = tuple(declarations)
        self._by_name = self.of_kind()

    def of_kind(self, *kinds: str) -> dict:
        """name -> the first declaration of one of `kinds` (any kind if none) by that name."""
        found = {}
        for decl in self.declarations:
            if not kinds or decl.kind in kinds:
                found.setdefault(decl.name, decl)
        return found

    def __getitem__(self, name: str):
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


#: the one registry
DECLARATIONS = Catalog(decl for module in MODULES for decl in registered(module))

REGISTRY: dict = DECLARATIONS.of_kind("activation", "loss", "regularizer")
LAYER_REGISTRY: dict = DECLARATIONS.of_kind("layer", "network")
CATALOG: dict = DECLARATIONS.of_kind(*LISTED_KINDS)
STEPS: dict = DECLARATIONS.of_kind("step")


def names() -> list[str]:
    return list(REGISTRY)
