"""The proof by cases: a difference whose steps are linear in one variable, with breakpoints
the assumptions order, is zero when each piece between the breakpoints is. It turns the
Huber loss's hand gradients (a Piecewise and a clip) from probed into proved, and must not
prove a claim that is wrong on one interval only, nor split where the order of the
breakpoints is unknown."""

from __future__ import annotations

import sympy as sp

from symnet.algebra import split_at_steps
from symnet.catalog import REGISTRY
from symnet.verify.claims import (
    PROVED,
    REFUTED,
    ProbeSpace,
    _canonical,
    _exp_minus_one,
    _proof,
    check,
    check_claim,
    prove,
)

x = sp.Symbol("x", real=True)
y = sp.Symbol("y", real=True)
delta = sp.Symbol("delta", positive=True)
CLIP = sp.Max(-delta, sp.Min(delta, x))


def test_the_huber_gradients_are_proved_by_cases_on_the_residual():
    verdicts = check(REGISTRY["huber"])
    assert [v.status for v in verdicts] == [PROVED, PROVED]
    assert all("by cases on s[k] - y[k] at -delta < delta" in v.detail for v in verdicts)


def test_a_clip_equals_its_three_cases():
    cases = sp.Piecewise((-delta, x < -delta), (x, x <= delta), (delta, True))
    assert _proof(CLIP, cases) == ("symbolic by cases on x at -delta < delta", False)


def test_a_clip_is_split_at_its_two_ordered_breakpoints():
    split = split_at_steps(_canonical(CLIP))
    assert split.variable == x and split.breakpoints == (-delta, delta)
    assert [sp.expand(piece) for piece in split.pieces] == [-delta, x, delta]


def test_a_claim_wrong_on_the_last_interval_only_is_not_proved_and_is_refuted():
    wrong = sp.Piecewise((-delta, x < -delta), (x, x <= delta), (-delta, True))
    assert not prove(CLIP, wrong)
    verdict = check_claim("wrong clip", CLIP, wrong, ProbeSpace())
    assert verdict.status == REFUTED


def test_breakpoints_without_a_known_order_are_not_split():
    a, b = sp.Symbol("a", real=True), sp.Symbol("b", real=True)
    assert split_at_steps(_canonical(sp.Max(a, sp.Min(b, x)))) is None


def test_a_step_nonlinear_in_every_variable_is_not_split():
    assert split_at_steps(sp.Heaviside(x ** 2 - 1, 0) * x) is None


def test_steps_in_two_variables_are_split_one_after_the_other():
    cases = sp.Piecewise((-delta, x < -delta), (x, x <= delta), (delta, True))
    lhs, rhs = CLIP + CLIP.subs(x, y), cases + cases.subs(x, y)
    assert prove(lhs, rhs)
    assert not prove(lhs, cases + cases.subs(x, 2 * y))


def test_a_sign_is_a_kink_so_l1_sign_gradient_is_proved_by_cases():
    verdict = check(REGISTRY["l1"])[0]
    assert verdict.status == PROVED and "by cases on W[k] at 0" in verdict.detail
    assert prove(sp.sign(x), 2 * sp.Heaviside(x) - 1)
    assert not prove(sp.sign(x), sp.Heaviside(x))


def test_a_parameter_written_as_its_default_is_refuted():
    """delta's default is 1: a gradient clipped to [-1, 1] agrees with huber's at delta = 1
    only, so parameters are probed near their defaults, never at them."""
    from dataclasses import replace

    from symnet.declare.scalar import Gradient

    huber = REGISTRY["huber"]
    r = huber.scores[sp.Symbol("k", integer=True)] - huber.target[sp.Symbol("k", integer=True)]
    slip = replace(huber, hand=[Gradient(sp.Max(-1, sp.Min(1, r)), label="clipped at 1")])
    [verdict] = check(slip)
    assert verdict.status == REFUTED and "delta" in verdict.counterexample["point"]


# --- a difference of logarithms: exp is one-to-one on the reals --------------------------

p = sp.Symbol("p", positive=True)
LOG_COSH_STABLE = sp.Abs(x) + sp.log(1 + sp.exp(-2 * sp.Abs(x))) - sp.log(2)


def test_log_cosh_equals_its_stable_form_on_each_side_of_zero():
    """simplify alone leaves log(cosh(p)) - log(1 + e^(-2p)) - p + log 2; its exp is 1."""
    for side in (p, -p):
        assert prove(sp.log(sp.cosh(side)), LOG_COSH_STABLE.subs(x, side))


def test_a_wrong_log_identity_is_not_proved_through_its_exp():
    assert not prove(sp.log(sp.cosh(p)), p - sp.log(2))
    assert check_claim("wrong", sp.log(sp.cosh(p)), p - sp.log(2), ProbeSpace()).status == REFUTED


def test_exp_is_taken_only_of_a_difference_known_to_be_real():
    """log(x**2) - 2 log(x) is complex for x < 0: its exp is 1 there all the same."""
    assert _exp_minus_one(sp.log(x**2) - 2 * sp.log(x)) == sp.log(x**2) - 2 * sp.log(x)


# --- sums over the same range, taken in either order ---------------------------------------


def _quadratic_form_layer():
    from symnet.declare.tensor import IndexLayer, index, over
    n, d, e = index("n"), index("d"), index("e")
    N, D = sp.Symbol("N", integer=True, positive=True), sp.Symbol("D", integer=True, positive=True)
    X, Q, Y = sp.IndexedBase("X"), sp.IndexedBase("Q"), sp.IndexedBase("Y")
    layer = IndexLayer("quadratic_form", Y[n], over(over(X[n, d] * Q[d, e] * X[n, e], d, D), e, D),
                       inputs=(X[n, d], Q[d, e]), ranges={n: N, d: D, e: D})
    return layer, (X, Q, n, d, e, D)


def test_nested_sums_over_one_range_compare_equal_in_either_order():
    from symnet.algebra import canonical_dummies
    _, (X, Q, n, d, e, D) = _quadratic_form_layer()
    body = X[n, d] * Q[d, e] * X[n, e] ** 2
    one = sp.Sum(sp.Sum(body, (d, 0, D - 1)), (e, 0, D - 1))
    other = sp.Sum(sp.Sum(body, (e, 0, D - 1)), (d, 0, D - 1))
    assert canonical_dummies(one) == canonical_dummies(other)


def test_a_sum_in_the_other_order_is_proved_for_every_size_and_a_wrong_one_is_not():
    from symnet.index.check import zero_for_every_size
    layer, (X, Q, n, d, e, D) = _quadratic_form_layer()
    body = X[n, d] * Q[d, e] * X[n, e] ** 2
    one = sp.Sum(sp.Sum(body, (d, 0, D - 1)), (e, 0, D - 1))
    other = sp.Sum(sp.Sum(body, (e, 0, D - 1)), (d, 0, D - 1))
    assert zero_for_every_size(layer, one, other)
    transposed = sp.Sum(sp.Sum(X[n, d] * Q[e, d] * X[n, e] ** 2, (e, 0, D - 1)), (d, 0, D - 1))
    assert not zero_for_every_size(layer, one, transposed)


def test_log_of_a_product_is_split_only_where_its_factors_are_positive():
    """log(x**2) = 2 log(x) holds for x > 0 only: proved there, not for a real x (a real
    x < 0 gives log(x**2) real and 2 log(x) complex)."""
    assert prove(sp.log(p**2), 2 * sp.log(p))
    assert not prove(sp.log(x**2), 2 * sp.log(x))
