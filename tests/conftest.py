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
from pathlib import Path

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


@pytest.fixture(scope="session")
def session_cache_home(tmp_path_factory) -> Path:
    """One SYMNET_CACHE folder for the whole run (shared_cache, and the README's blocks in
    tests/test_readme.py): under pytest-xdist in the run's folder that every worker's own
    temporary folder is in, so what one worker computed serves the others (entries are
    written atomically: two workers computing the same one at once both write whole files).
    Entries are keyed by content, so sharing serves nothing but the exact input that made
    an entry, and a command prints the same whether it computed or read its results."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return shared / "symnet-cache-home"       # created private (0700) by symnet


@pytest.fixture
def shared_cache(symnet_cache_off, monkeypatch, session_cache_home):
    """symnet's cache on, in one folder for the whole test session: for tests that run the
    same whole-catalog command in this process several times and test what it prints or
    writes, not the cache (the first such run in a session computes everything; tests of
    the cache itself use folders of their own)."""
    monkeypatch.delenv("SYMNET_NO_CACHE")
    monkeypatch.setenv("SYMNET_CACHE", str(session_cache_home))
