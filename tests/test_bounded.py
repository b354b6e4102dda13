"""The time bound that keeps a hard simplify from hanging a check."""

import time

from symnet.bounded import within


def test_a_computation_past_its_bound_gives_the_fallback_quickly():
    def forever():
        while True:
            pass

    started = time.monotonic()
    assert within(0.2, forever, "gave up") == "gave up"
    assert time.monotonic() - started < 2


def test_a_quick_computation_gives_its_value():
    assert within(5, lambda: 6 * 7, None) == 42
