"""The registry: every declaration of the catalog, by name, in a fixed order.

A declaration is registered by being declared in one of the catalog's modules; the
registry collects them, so adding an entry touches one place.
"""

from __future__ import annotations

from types import ModuleType

from symnet.catalog import activations, losses
from symnet.spec import Activation, Loss


def declarations_in(module: ModuleType) -> dict:
    """The declarations a module defines, by their own names, in definition order."""
    found = {}
    for value in vars(module).values():
        if isinstance(value, (Activation, Loss)) and value.name not in found:
            found[value.name] = value
    return found


REGISTRY: dict = {**declarations_in(activations), **declarations_in(losses)}


def names() -> list[str]:
    return list(REGISTRY)
