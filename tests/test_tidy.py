"""The derived gradient reads as a person writes it (issue 18): no longer than half as much
again as the shortest hand derivation of the same gradient, for every declaration of the
catalog and of examples/ that carries one, and a product of powers comes out factored."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp

from symnet.algebra import (
    absorb_sign,
    clean_steps,
    kinks_to_piecewise,
    piecewise_to_steps,
    signs_to_piecewise,
)
from symnet.catalog import CATALOG
from symnet.codegen.stable import one_variable_cases, top_level_steps
from symnet.declare.network import Network
from symnet.declare.scalar import Activation, Gradient, Jacobian
from symnet.derive import derive, derive_gradient
from symnet.loader import load_file
from symnet.primitives import Logistic
from symnet.symbols import k, out, s, x, y
from symnet.tidy import by_jumps, in_own_terms

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BOUND = sp.Rational(3, 2)

#: (file, declaration) -> why its hand derivations are not in the sweep
NOT_SWEPT = {
    ("my_typos.py", "mish"): "its hand derivation is the slip the file shows (refuted): "
                             "d/dx of x tanh(softplus(x)) without the chain rule's factor",
    ("my_typos.py", "smoothed_ce"): "its hand derivation is the slip the file shows "
                                    "(refuted): the -epsilon/C term is missing",
    ("slide_typos.py", "softmax_ce_slide"): "its hand derivation is the slide's typo "
                                            "(refuted): a sum over k != 1",
}


def _declarations():
    found = [("catalog", d) for d in CATALOG.values()]
    for path in sorted(EXAMPLES.glob("*.py")):
        found += [(path.name, d) for d in load_file(str(path)).values()]
    return [(where, d) for where, d in found
            if any(isinstance(r, (Gradient, Jacobian)) for r in d.hand)]


def ops(expr) -> int:
    """Operations of a formula with its kinks written as symnet writes them, as steps:
    count_ops counts a Piecewise (or sign) by its conditions alone, so Piecewise((1,
    x > 0), (slope, True)) would weigh 1 against slope*(1 - [x > 0]) + [x > 0]'s 5."""
    if getattr(expr, "is_Matrix", False):
        return sp.count_ops(expr)
    return sp.count_ops(clean_steps(piecewise_to_steps(kinks_to_piecewise(
        signs_to_piecewise(expr)))))


def _gradients(decl):
    """(the gradient's name, its derived form, each hand form of it) per gradient; an
    activation's hand form in terms of `out` is set against the derived form in terms of
    out where symnet offers one."""
    derivation = derive(decl)
    found: dict = {}
    for record in decl.hand:
        if not isinstance(record, (Gradient, Jacobian)):
            continue
        if isinstance(record, Jacobian):
            derived = next(d for r, d in derivation.jacobians if r is record)
            key = f"d {record.function} / d s[{record.col}]"
        elif isinstance(decl, Activation):
            wrt = decl.wrt_of(record)
            in_output = derivation.in_output[wrt] if record.expected.has(out) else None
            derived = derivation.derivatives[wrt] if in_output is None else in_output
            key = f"d/d{wrt}" + (" in terms of out" if in_output is not None else "")
        elif isinstance(decl, Network):
            derived = derivation.gradients.get(record.wrt, derivation.intermediates.get(
                record.wrt))
            derived, record = decl.expand_outputs(derived), Gradient(
                decl.expand_outputs(record.expected), wrt=record.wrt)
            key = f"dL/d{record.wrt}"
        elif getattr(decl, "kind", "") in ("layer", "tensor layer"):
            derived, key = derivation.vjps[record.wrt], f"dL/d{record.wrt}"
        elif isinstance(record, Gradient) and (record.of is not None or record.wrt is not None):
            derived = derive_gradient(decl, record.of, record.wrt)
            key = f"d/d{record.wrt}"
        else:
            derived, key = derivation.gradient, "d/ds[k]"
        found.setdefault(key, (derived, []))[1].append(record.expected)
    return [(key, derived, hands) for key, (derived, hands) in found.items()]


SWEPT = [pytest.param(d, id=f"{where}:{d.name}") for where, d in _declarations()
         if (where, d.name) not in NOT_SWEPT]


@pytest.mark.parametrize("decl", SWEPT)
def test_the_derived_gradient_is_no_longer_than_the_hand_derivation_by_half(decl):
    for key, derived, hands in _gradients(decl):
        shortest = min(ops(h) for h in hands)
        assert ops(derived) <= BOUND * shortest, \
            f"{decl.name} {key}: {ops(derived)} operations in {derived}, the hand's {shortest}"


def test_every_declaration_left_out_of_the_sweep_is_one_its_file_shows_refuted():
    from symnet.verify import REFUTED, check

    left_out = [(where, d) for where, d in _declarations() if (where, d.name) in NOT_SWEPT]
    assert {(where, d.name) for where, d in left_out} == set(NOT_SWEPT)
    for _, decl in left_out:
        assert REFUTED in {v.status for v in check(decl)}


# --- products of powers ------------------------------------------------------------------

T = sp.tanh(x)
PRODUCTS = {
    "x^3 (2 - x)^4 (1 + x)^2": x ** 3 * (2 - x) ** 4 * (1 + x) ** 2,
    "x^4 (1 - x)^5 (1 + x)^3": x ** 4 * (1 - x) ** 5 * (1 + x) ** 3,
    "(1 - tanh)^2 (1 + tanh)^3": (1 - T) ** 2 * (1 + T) ** 3,
    "x^2 (1 - x)^3": x ** 2 * (1 - x) ** 3,
}


@pytest.mark.parametrize("forward", PRODUCTS.values(), ids=PRODUCTS.keys())
def test_the_derivative_of_a_product_of_powers_comes_out_factored(forward):
    derived = derive(Activation("bump", forward, inputs=x)).derivatives[x]
    assert sp.expand(derived - sp.diff(forward, x)) == 0
    generator = T if forward.has(sp.tanh) else x
    held = derived.xreplace({T: sp.Symbol("t")}) if generator == T else derived
    variable = sp.Symbol("t") if generator == T else x
    # a product whose every factor is a power of a first-degree polynomial in the variable
    assert x not in held.free_symbols or variable == x
    for factor in sp.Mul.make_args(held):
        base = factor.as_base_exp()[0]
        assert sp.Poly(base, variable).degree() <= 1, f"{factor} of {derived}"


def test_a_product_of_powers_is_factored_as_a_person_writes_it():
    derived = derive(Activation("bump", x ** 2 * (1 - x) ** 3, inputs=x)).derivatives[x]
    assert derived == x * (1 - x) ** 2 * (2 - 5 * x)


def test_sympy_s_cosh_is_written_back_as_tanh_s_derivative():
    """simplify writes 1/cosh(u)^2 where the chain rule wrote 1 - tanh(u)^2: tidy writes it
    back (its result is otherwise refused, as a function the derivative did not use)."""
    u = Logistic(x)
    assert in_own_terms(x / sp.cosh(u) ** 2) == x * (1 - sp.tanh(u) ** 2)
    assert in_own_terms(sp.cosh(u) ** -4) == (1 - sp.tanh(u) ** 2) ** 2


def test_a_minus_sign_is_absorbed_by_a_factor_with_a_negative_constant():
    assert absorb_sign(-3 * x * (5 * x - 2)) == 3 * x * (2 - 5 * x)
    assert absorb_sign(-x * (x - 1) ** 3) == x * (1 - x) ** 3
    assert absorb_sign(-x / (1 + sp.exp(x))) == -x / (1 + sp.exp(x))   # not a denominator


# --- kinks --------------------------------------------------------------------------------


def test_huber_s_gradient_is_minus_delta_plus_a_jump_at_each_kink():
    gradient = derive(CATALOG["huber"]).gradient
    steps = gradient.atoms(sp.Heaviside)
    assert len(steps) == 2 and ops(gradient) <= 15
    assert not any(isinstance(t, sp.Mul) and len(t.atoms(sp.Heaviside)) > 1
                   for t in sp.Add.make_args(sp.expand(gradient)))


def test_huber_s_jumps_lower_to_the_three_cases_of_the_residual():
    """Neither of the two steps is r = s - y alone: code generation finds the r they
    share (delta + r, delta - r), so huber.py keeps its np.where on r < -delta, r <= delta."""
    gradient = derive(CATALOG["huber"]).gradient
    cases = one_variable_cases(gradient, top_level_steps(gradient), ())
    r, delta = s[k] - y[k], sp.Symbol("delta", positive=True)
    assert [(value, condition) for value, _, condition in cases] == [
        (-delta, r < -delta), (r, r <= delta), (delta, sp.true)]


def test_a_jump_keeps_the_derivative_s_value_at_its_kink():
    """relu' is 0 at 0 ([x > 0]); its mirror image 1 - [-x >= 0]... is 1 at 0 ([x >= 0])."""
    for at_zero in (0, 1):
        step = sp.Heaviside(x, at_zero)
        expr = 3 * step + 2 * (1 - step) * Logistic(x)
        rebuilt = by_jumps(expr)
        assert rebuilt is not None
        assert rebuilt.subs(x, 0) == expr.subs(x, 0)
        for value in (-2, sp.Rational(1, 3), 5):
            assert sp.simplify(rebuilt.subs(x, value) - expr.subs(x, value)) == 0
