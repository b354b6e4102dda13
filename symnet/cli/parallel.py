"""Independent CPU-bound jobs (checking one declaration each) on one process per core.

sympy holds the GIL, so threads would take turns; forked processes inherit the imported
modules and the declarations (even those loaded from a user's file), so a job is sent as
its index alone and only its result is pickled back. A job that fails in a worker is run
again in this process, where its error is raised as usual (symnet's errors then name the
declaration, as they do without workers); where fork is missing, or the pool breaks, the
jobs run here one after another. The results come back in the jobs' order either way.

`kept_or_computed` runs only the jobs whose results symnet's cache (symnet.cache) lacks:
`symnet check`, `list` and `generate` call it. It lives here, with the command line, and
not in symnet.cache, which the loader (an earlier stage) imports.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

_JOBS: tuple = ()      # (function, items) for the forked workers to read
#: modules the jobs import on first use (sympy's simplify imports its units, 0.2 s):
#: imported once before forking rather than once in every worker
PRELOAD = ("sympy.physics.units",)


def _run(index: int) -> tuple[bool, object]:
    """(True, the job's result), or (False, None) if it failed: the parent then runs it
    again and raises its error with its own traceback."""
    function, items = _JOBS
    try:
        return True, function(items[index])
    except Exception:
        return False, None


def workers(jobs: int) -> int:
    """Processes worth starting for `jobs` jobs: one per core, no more than jobs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1
    return max(1, min(cores, jobs))


def run_all(function: Callable, items: Sequence, processes: int | None = None) -> list:
    """[function(item) for item in items], on `processes` forked processes (default: one
    per core)."""
    global _JOBS
    processes = workers(len(items)) if processes is None else processes
    if processes <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [function(item) for item in items]
    for name in PRELOAD:
        importlib.import_module(name)
    _JOBS = (function, items)
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) \
                as pool:
            # the longest jobs are not known in advance: hand them out one at a time
            results = list(pool.map(_run, range(len(items)), chunksize=1))
    except Exception:           # jobs' own errors stay in _run: this is the pool's
        # no pool here (BrokenProcessPool, OSError), or a result that cannot be pickled
        # back: one after another instead
        results = [(False, None)] * len(items)
    finally:
        _JOBS = ()
    return [result if done else function(item)
            for item, (done, result) in zip(items, results, strict=True)]


def kept_or_computed(items: list, kept: Callable, keep: Callable, compute: Callable,
                     first=None) -> list:
    """[compute(item) for item in items], each result taken from the cache when `kept(item)`
    has it; the others computed on one process per core (run_all), `first(item)`
    ordering them (the costliest first), and kept with `keep(item, result)`."""
    found = [kept(item) for item in items]
    pending = [n for n, result in enumerate(found) if result is None]
    if first is not None:
        pending.sort(key=lambda n: first(items[n]))
    for n, result in zip(pending, run_all(compute, [items[n] for n in pending]), strict=True):
        keep(items[n], result)
        found[n] = result
    return found
