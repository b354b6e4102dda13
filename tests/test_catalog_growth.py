"""The catalog past the lecture (softplus, silu, huber, bce_logits, l1) and the general
machinery that carries them: the stable primitives Softplus and Logistic derive their own
derivatives, the output form of a derivative is offered only where it is safe, several
kinks of one variable become np.where cases, nested max/min (a clip) derive, comparisons
print the way a person writes them, and L1's convention at 0 is the branch rule. Each new
entry's planted wrong derivation is refuted. (The registry sweeps give every entry the
gradient, stability, dtype and mutation checks.)"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symnet import display
from symnet.algebra import indicator, piecewise_to_steps
from symnet.catalog import REGISTRY
from symnet.codegen.lower import lower
from symnet.codegen.printer import numpy_code
from symnet.codegen.stable import one_variable_cases, top_level_steps
from symnet.declare.scalar import Activation, Gradient, Kink, Loss, Regularizer
from symnet.derive import derive, in_terms_of_output
from symnet.primitives import Logistic, Softplus, in_logistic_terms, naive_form
from symnet.symbols import out, x
from symnet.verify import PROBED, PROVED, REFUTED, check
from symnet.verify.at_point import Evaluator
from tests.conftest import derivation_of
from tests.helpers import generated, load

GROWTH = ["softplus", "silu", "huber", "bce_logits", "l1"]
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise"}


def test_the_catalog_holds_the_new_entries():
    assert set(GROWTH) <= set(REGISTRY)


# --- the stable primitives -----------------------------------------------------------------


def test_softplus_and_sigmoid_differentiate_their_naive_forms_into_primitive_terms():
    assert sp.diff(Softplus(x), x) == Logistic(x)
    assert sp.expand(sp.diff(Logistic(x), x) - Logistic(x) * (1 - Logistic(x))) == 0
    assert sp.diff(Softplus(-2 * x), x) == -2 * Logistic(-2 * x)       # the chain rule
    assert naive_form(Softplus(x) + Logistic(x)) == sp.log(1 + sp.exp(x)) + 1 / (1 + sp.exp(-x))


def test_an_exp_that_does_not_cancel_is_left_as_it_is():
    kept = sp.exp(2 * x) / (1 + sp.exp(x))
    assert in_logistic_terms(kept, x) == kept


def test_primitives_print_by_name_and_lambdify_to_their_overflow_free_forms():
    assert display.text(Softplus(x) * Logistic(x)) == "sigmoid(x)*softplus(x)"
    assert display.latex(Logistic(x)) == r"\sigma\left(x\right)"
    function = sp.lambdify(x, Softplus(x) + Logistic(x), "numpy")
    with np.errstate(**STRICT):
        values = function(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(values, [0.0, np.log(2) + 0.5, 1001.0])


# --- derivatives in terms of the output ----------------------------------------------------


def test_the_output_form_is_offered_only_where_it_is_a_polynomial_in_out():
    sigmoid = 1 / (1 + sp.exp(-x))
    assert in_terms_of_output(sp.diff(sigmoid, x), sigmoid, x) == out * (1 - out)
    assert in_terms_of_output(1 - sp.tanh(x) ** 2, sp.tanh(x), x) == 1 - out ** 2
    naive_softplus = sp.log(1 + sp.exp(x))        # softplus' = 1 - exp(-out) is not offered
    assert in_terms_of_output(sp.diff(naive_softplus, x), naive_softplus, x) is None


# --- what symnet derives for the new entries -----------------------------------------------


@pytest.mark.parametrize("name, derived", [
    ("softplus", "sigmoid(x)"),
    ("silu", "(x*(1 - sigmoid(x)) + 1)*sigmoid(x)"),
    ("bce_logits", "sigmoid(s[k]) - y[k]"),
    ("l1", "lambda*(2*[W[k] >= 0] - 1)"),
])
def test_the_derived_gradient_is_the_closed_form(name, derived):
    derivation = derivation_of(name)
    shown = derivation.derivatives[x] if name in ("softplus", "silu") else derivation.gradient
    assert display.text(shown) == derived


def test_the_huber_gradient_is_the_residual_clipped_to_delta():
    gradient = derivation_of("huber").gradient
    s, y, k = (REGISTRY["huber"].scores, REGISTRY["huber"].target, REGISTRY["huber"].index)
    delta = next(iter(REGISTRY["huber"].params))
    for residual, expected in ((-3, -2), (-2, -2), (-1, -1), (0, 0), (1.5, 1.5), (2, 2), (5, 2)):
        value = gradient.subs({delta: 2, s[k]: residual + 7, y[k]: 7})
        assert value == expected, residual


def test_every_new_entry_is_proved_or_probed_and_bce_and_the_activations_are_proved():
    for name in GROWTH:
        statuses = {v.status for v in check(REGISTRY[name])}
        assert statuses <= {PROVED, PROBED}, name
    for name in ("softplus", "silu", "bce_logits"):
        assert {v.status for v in check(REGISTRY[name])} == {PROVED}, name


def _with_hand(decl, expected):
    """The declaration with one other hand derivation of its gradient."""
    hand = [Gradient(expected, label="planted")]
    if isinstance(decl, Activation):
        return Activation(decl.name, decl.forward, decl.inputs, decl.params, decl.kinks, hand)
    if isinstance(decl, Regularizer):
        return Regularizer(decl.name, decl.forward, decl.scores, decl.size, decl.params, hand)
    return Loss(decl.name, decl.forward, decl.scores, decl.size, decl.target,
                decl.target_kind, decl.constraints, decl.params, hand)


def _planted(name):
    decl = REGISTRY[name]
    if isinstance(decl, Activation):
        wrong = {"softplus": Logistic(-x),                          # the sign of x
                 "silu": Logistic(x) * (1 + x * Logistic(x))}       # sigma for 1 - sigma
        return _with_hand(decl, wrong[name])
    entry, k = decl.scores, decl.index
    delta, lam = sp.Symbol("delta", positive=True), sp.Symbol("lambda", positive=True)
    wrong = {
        "huber": lambda: sp.Max(-delta, sp.Min(delta, (entry[k] - decl.target[k]) / 2)),
        "bce_logits": lambda: Logistic(entry[k]) + decl.target[k],  # the sign of y
        "l1": lambda: 2 * lam * sp.sign(entry[k]),                  # lambda twice
    }
    return _with_hand(decl, wrong[name]())


@pytest.mark.parametrize("name", GROWTH)
def test_a_planted_wrong_derivation_of_each_new_entry_is_refuted(name):
    (verdict,) = [v for v in check(_planted(name)) if v.claim == "planted"]
    assert verdict.status == REFUTED and verdict.counterexample, str(verdict)


# --- L1's convention at its kink -----------------------------------------------------------


def test_l1_takes_the_branch_rule_at_zero_in_the_derivation_and_the_generated_code():
    decl = REGISTRY["l1"]
    lam = next(iter(decl.params))
    assert derivation_of("l1").gradient.subs(decl.wrt, 0) == lam
    assert "+lambda" in decl.doc
    W = np.array([[-2.0, 0.0, 3.0]], dtype=np.float32)
    penalty, dW = generated(decl).penalty(W, lam=0.5)
    assert penalty == 2.5 and dW.dtype == np.float32
    assert dW.tolist() == [[-0.5, 0.5, 0.5]]


# --- the generated code reads like hand-written numpy --------------------------------------


@pytest.mark.parametrize("name, lines", [
    ("softplus", ["out = np.logaddexp(0, x)"]),
    ("bce_logits", ["loss = (np.logaddexp(0, s) - s*y).sum()/N"]),
    ("huber", ["np.where(tmp <= delta, s_minus_y**2/2, delta*(tmp - delta/2))",
               "ds = np.where(s_minus_y < -delta, -delta, np.where(s_minus_y <= delta, "
               "s_minus_y, delta))/N"]),
])
def test_generated_code_of_the_new_entries_reads_as_written(name, lines):
    from tests.helpers import module_path

    source = module_path(REGISTRY[name]).read_text()
    for line in lines:
        assert line in source
    assert ".astype(" not in source


# --- the general machinery -----------------------------------------------------------------

clip = sp.Max(-1, sp.Min(1, x))


def test_nested_max_and_min_derive_with_explicit_steps_and_generate_masks():
    hardtanh = Activation("hardtanh", clip, inputs=x,
                          kinks=[Kink({x: 1}, {x: 0}), Kink({x: -1}, {x: 0})],
                          hand=[Gradient(sp.Piecewise((0, x < -1), (1, x < 1), (0, True)))])
    assert {v.status for v in check(hardtanh)} <= {PROVED, PROBED}
    # the derivative is the product of the two steps ([x + 1 > 0] [1 - x > 0]); the forward
    # saves both as boolean masks and the backward multiplies dout by them (0 at each kink,
    # as the kinks declare)
    assert derive(hardtanh).derivatives[x] == sp.Heaviside(x + 1, 0) * sp.Heaviside(1 - x, 0)
    module = lower(derive(hardtanh))
    assert {"x_lt_1 = 1 - x > 0", "x_gt_minus1 = x + 1 > 0"} <= \
        set(module.functions["forward"].body)
    assert "dx = dout*x_gt_minus1.astype(dout.dtype)*x_lt_1.astype(dout.dtype)" in \
        module.functions["backward"].body
    if_then_else = indicator(sp.ITE(x > 0, x < 1, x < -1))   # (0 < x < 1) or x < -1
    assert [if_then_else.subs(x, v) for v in (-2, -1, -0.5, 0, 0.5, 1, 2)] == [
        1, 0, 0, 0, 1, 0, 0]


def test_cases_keep_each_kinks_own_value_as_a_case_where_no_side_takes_it():
    sign = sp.Heaviside(x, 0) - sp.Heaviside(-x, 0)
    cases = one_variable_cases(sign, top_level_steps(sign), ())
    assert [(value, condition) for value, _, condition in cases] == [
        (-1, x < 0), (0, x <= 0), (1, True)]


def test_cases_need_one_variable_and_thresholds_that_can_be_ordered():
    y, t = sp.Symbol("y", real=True), sp.Symbol("t", real=True)
    two_variables = sp.Heaviside(x, 0) * sp.Heaviside(y, 0)
    unordered = sp.Heaviside(x, 0) * sp.Heaviside(x - t, 0)
    for expr in (two_variables, unordered):
        assert one_variable_cases(expr, top_level_steps(expr), ()) is None


def test_a_comparison_of_an_array_with_a_threshold_prints_array_first():
    delta, r = sp.Symbol("delta", positive=True), sp.Symbol("r", real=True)
    names = {"delta": "delta"}
    assert numpy_code(sp.Ge(delta, sp.Abs(r)), names) == "np.abs(r) <= delta"
    assert numpy_code(sp.Lt(delta, -r), names) == "r < -delta"
    assert numpy_code(sp.Gt(x, 0), {"x": "x"}) == "x > 0"


def test_the_evaluator_takes_a_steps_own_value_at_its_kink():
    evaluate = Evaluator({x: 0}, None, 0)
    assert evaluate(sp.Heaviside(x, 1)) == 1 and evaluate(sp.Heaviside(x, 0)) == 0
    assert evaluate(piecewise_to_steps(sp.Piecewise((2, x >= 0), (3, True)))) == 2


def test_a_generated_loss_built_from_primitives_survives_logits_of_a_thousand(tmp_path):
    module = load(tmp_path / "unused.py", _bce_source())
    s = np.array([[1000.0, -1000.0, 0.0]])
    with np.errstate(**STRICT):
        loss, ds = module.loss(s, np.array([[1.0, 1.0, 0.0]]))
    assert loss == pytest.approx(1000.0 + np.log(2))
    np.testing.assert_allclose(ds, [[0.0, -1.0, 0.5]])


def _bce_source() -> str:
    from tests.helpers import module_path

    return module_path(REGISTRY["bce_logits"]).read_text()


def test_derive_shows_a_gradient_with_several_kinks_of_one_variable_also_as_cases(capsys):
    from symnet.cli import main

    assert main(["derive", "huber"]) == 0
    assert "dL/ds[k] = (-delta if s[k] - y[k] < -delta else s[k] - y[k] if s[k] - y[k] <= " \
           "delta else delta)   (as cases)" in capsys.readouterr().out
    assert main(["derive", "softmax_ce"]) == 0
    assert "as cases" not in capsys.readouterr().out
