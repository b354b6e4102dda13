"""Shared fixtures: derivations and verdicts are computed once per declaration."""
# ruff: noqa: E402 (the BLAS threads are set before the imports that load numpy)

import os

# One BLAS thread, set before numpy is first imported (below, by symnet.catalog) and inherited
# by every subprocess a test starts: the tests' arrays are small, and on 2 cores shared with
# other work OpenBLAS's threads wait on each other. L12's 2000 steps of 64x1000x100 took
# 329 s with the default threads and 16 s with one, at load 5 (the same losses to rtol 1e-8).
for _threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

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
