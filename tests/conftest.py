"""Shared fixtures: derivations and verdicts are computed once per declaration."""

from functools import cache

import pytest

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


@pytest.fixture(autouse=True)
def symnet_cache_off(monkeypatch):
    """Tests compute every result: symnet's cache on disk (symnet.cache, symnet.cli.replay) is
    off, and nothing is written under the user's home, unless a test turns it on with a
    folder of its own (tests/test_cache.py, tests/test_replay.py)."""
    monkeypatch.setenv("SYMNET_NO_CACHE", "1")
