"""A time bound for sympy calls that may run for minutes (simplify, solve, equals).

sympy cannot be interrupted from another thread, so the bound is a SIGALRM timer: it
works in the main thread on POSIX systems; elsewhere the call simply runs unbounded.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class TimeBoundExceeded(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise TimeBoundExceeded

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def within(seconds: float, compute: Callable[[], T], fallback: T) -> T:
    """compute(), or `fallback` when it takes longer than `seconds` or gives up."""
    try:
        with time_limit(seconds):
            return compute()
    except (TimeBoundExceeded, RecursionError, NotImplementedError):
        return fallback
