"""The gradient helpers of tests/helpers.py catch what they must: a planted wrong gradient,
a point at relu's kink, a relative error that is zero only for equal arrays."""

import numpy as np
import pytest

from tests.helpers import away_from_kinks, gradient_error, relative_error


class _VectorLoss:
    """Just enough of a loss declaration for `run`: a score array and a real target."""

    is_vector, target_kind = True, "real"


def test_gradient_error_catches_a_planted_wrong_gradient():
    class Right:
        @staticmethod
        def loss(s, y):
            return np.sum((s - y) ** 2) / s.shape[0], 2 * (s - y) / s.shape[0]

    class Wrong:  # the sign of y flipped in the gradient only
        @staticmethod
        def loss(s, y):
            return Right.loss(s, y)[0], 2 * (s + y) / s.shape[0]

    rng = np.random.default_rng(0)
    wrt, fixed = {"s": rng.normal(size=(3, 2))}, {"target": rng.normal(size=(3, 2))}
    assert gradient_error(_VectorLoss(), Right, wrt, fixed) < 1e-8
    assert gradient_error(_VectorLoss(), Wrong, wrt, fixed) > 0.1


def test_away_from_kinks_sees_relu_at_zero():
    from symnet.catalog import REGISTRY

    relu = REGISTRY["relu"]
    assert not away_from_kinks(relu, {"x": np.array([1.0, 1e-5])}, {})
    assert away_from_kinks(relu, {"x": np.array([1.0, -0.5])}, {})


@pytest.mark.parametrize("value", [1e-300, 0.0])
def test_relative_error_is_zero_only_for_equal_arrays(value):
    assert relative_error([value, 1.0], [value, 1.0]) == 0.0
    assert relative_error([value, 1.0], [value, 1.1]) > 0.01
