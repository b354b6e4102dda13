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


class TimeBoundExceeded(BaseException):
    """A BaseException, as KeyboardInterrupt is: sympy catches Exception in places (solve,
    simplify), and swallowed there the bound let a computation run on and on."""


@contextmanager
def time_limit(seconds: float):
    main_thread = threading.current_thread() is threading.main_thread()
    usable = hasattr(signal, "pthread_kill") and main_thread
    if not usable or seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise TimeBoundExceeded

    # The alarm is sent to the main thread by name (pthread_kill from a timer thread), not
    # process-wide by setitimer, where any thread that does not block it (XLA's, after a JAX
    # computation) may take it; and it is sent again every 0.2 s until the block ends, in
    # case one was swallowed. Without both, a bounded solve inside a verdict grew to 18 GB
    # once JAX had run in the same process.
    main, finished = threading.main_thread().ident, threading.Event()

    def alarm():
        if not finished.wait(seconds):
            while not finished.is_set():
                signal.pthread_kill(main, signal.SIGALRM)
                finished.wait(0.2)

    previous = signal.signal(signal.SIGALRM, expire)
    timer = threading.Thread(target=alarm, daemon=True)
    timer.start()
    try:
        yield
    finally:
        finished.set()
        timer.join()
        signal.signal(signal.SIGALRM, previous)


def within(seconds: float, compute: Callable[[], T], fallback: T) -> T:
    """compute(), or `fallback` when it takes longer than `seconds` or gives up."""
    try:
        with time_limit(seconds):
            return compute()
    except (TimeBoundExceeded, RecursionError, NotImplementedError):
        return fallback
