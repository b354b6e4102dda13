"""The derive stage's one entry: `derive(declaration)`, computed once per declaration.

`derivation_of` dispatches on the declaration's type. Activations and losses register
their handlers in `symnet.derive.scalar`; layers' (`symnet.matrix.vjp.derive_layer`) and
networks' (`symnet.matrix.network_derive.derive_network`) are registered by the package
`symnet.derive`, which imports them, so that whoever imports any part of the stage finds
every level registered.
"""

from __future__ import annotations

import functools


@functools.singledispatch
def derivation_of(decl):
    """The derivation of a declaration, by the handler its level registered."""
    raise TypeError(f"symnet derives activations, losses, layers and networks, "
                    f"not {type(decl).__name__}")


#: id(declaration) -> (declaration, its derivation): a network's training step derives its
#: layers' activations and its loss again, and declarations are frozen (and compare by
#: identity), so each is derived once per process; the declaration is kept so its id is
#: never reused by another object
_derivations: dict[int, tuple] = {}


def derive(decl):
    """The derivation of any declaration, computed once per declaration object."""
    known = _derivations.get(id(decl))
    if known is not None and known[0] is decl:
        return known[1]
    derivation = derivation_of(decl)
    _derivations[id(decl)] = (decl, derivation)
    return derivation


def forget_derivations() -> None:
    """Drop every remembered derivation (after changing how symnet derives, in a test)."""
    _derivations.clear()
