"""Shared fixtures: derivations and verdicts are computed once per declaration."""

from functools import cache

from symnet.catalog import REGISTRY
from symnet.derive import derive
from symnet.verify import check


@cache
def derivation_of(name: str):
    return derive(REGISTRY[name])


@cache
def verdicts_of(name: str) -> tuple:
    return tuple(check(REGISTRY[name]))


def verdict(name: str, label_start: str):
    """The one verdict of entry `name` whose claim starts with `label_start`."""
    found = [v for v in verdicts_of(name) if v.claim.startswith(label_start)]
    assert len(found) == 1, f"{name}: expected one claim starting {label_start!r}, got {found}"
    return found[0]
