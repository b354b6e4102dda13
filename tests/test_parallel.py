"""symnet.cli.parallel: jobs on one process per core give what they give one after another."""

from __future__ import annotations

import os

import pytest

from symnet.cli.parallel import run_all, workers
from symnet.errors import DeclarationError


def square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def test_results_come_back_in_order_from_other_processes():
    results = run_all(square_and_pid, list(range(6)), processes=2)
    assert [square for square, _ in results] == [n * n for n in range(6)]
    assert {pid for _, pid in results} != {os.getpid()}      # computed in the workers


def refuse_three(n: int) -> int:
    if n == 3:
        raise DeclarationError("three", "a problem only the third job has")
    return n


def test_a_failing_job_raises_its_own_error_here():
    with pytest.raises(DeclarationError, match="three.*a problem only the third job has"):
        run_all(refuse_three, [1, 2, 3, 4], processes=2)


def a_function_of(n: int):
    return lambda: n                       # cannot be pickled back from a worker


def test_results_that_cannot_travel_are_computed_here():
    results = run_all(a_function_of, [5, 7], processes=2)
    assert [f() for f in results] == [5, 7]


def test_no_more_workers_than_jobs():
    assert workers(1) == 1 and workers(0) == 1 and workers(10**6) <= (os.cpu_count() or 1)
