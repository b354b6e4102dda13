"""The lecture's claims about activations, losses and gradients, one test per claim id."""

import numpy as np
import pytest
import sympy as sp

from symnet import Activation, Gradient, Kink, Loss, Softmax
from symnet.catalog import REGISTRY
from symnet.declare.scalar import Activation as ActivationType
from symnet.derive import derive_gradient, differentiate
from symnet.loader import resolve
from symnet.primitives import naive_form
from symnet.symbols import C, i, j, k, out, s, x, y
from symnet.verify import PROBED, PROVED, REFUTED, ProbeSpace, check, check_claim

from .concrete import (
    activation_functions,
    central_difference,
    forward_difference,
    loss_functions,
    relative_error,
)
from .conftest import derivation_of, verdict

KD = sp.KroneckerDelta
SLIDE_TYPOS = "examples/slide_typos.py"
m, e = sp.symbols("m e", integer=True)
D = sp.Symbol("D", integer=True, positive=True)
N = sp.Symbol("N", integer=True, positive=True)
n = sp.Symbol("n", integer=True)
W, X = sp.IndexedBase("W", real=True), sp.IndexedBase("X", real=True)


def linear_score(row, sample=None):
    feature = X[m] if sample is None else X[sample, m]
    return sp.Sum(W[row, m] * feature, (m, 0, D - 1))


def test_L01_linear_score_chain_rule_through_W():
    """s = W x: for softmax cross-entropy dL/dW_ke = (p_k - y_k) x_e."""
    decl = REGISTRY["softmax_ce"]
    def in_linear_model(expr):
        return naive_form(expr).replace(lambda a: isinstance(a, sp.Indexed) and a.base == s,
                                        lambda a: linear_score(a.indices[0]))

    derived = derive_gradient(decl, in_linear_model(decl.forward), W[k, e])
    claimed = (in_linear_model(Softmax(s, C, k)) - y[k]) * X[e]
    space = ProbeSpace(one_hot=y, class_index=sp.Symbol("hot", integer=True, nonnegative=True))
    result = check_claim("L01", derived, claimed, space, decl.constraints)
    assert result.status in (PROVED, PROBED), str(result)


def test_L02_svm_gradient_per_score_and_per_row_of_W():
    assert verdict("svm", "L02 dL/ds_k").status == PROVED
    assert verdict("svm", "L02 dL/dW_k").status == PROVED
    t = REGISTRY["svm"].target
    gradient = derivation_of("svm").gradient
    # at a wrong class k != t only k's own margin counts
    assert gradient.subs(KD(k, t), 0) == sp.Heaviside(s[k] - s[t] + 1, 0)


def test_L03_l2_gradient_and_the_full_loss():
    assert verdict("l2", "L03").status == PROVED
    lam = next(iter(REGISTRY["l2"].params))
    Y = sp.IndexedBase("Y", real=True)
    data = sp.Sum((linear_score(i, n) - Y[n, i]) ** 2, (i, 0, C - 1), (n, 0, N - 1)) / N
    full = data + lam * sp.Sum(W[i, m] ** 2, (i, 0, C - 1), (m, 0, D - 1))
    derived = differentiate("full loss", full, W[k, e])
    claimed = (2 / N) * sp.Sum((linear_score(k, n) - Y[n, k]) * X[n, e], (n, 0, N - 1)) \
        + 2 * lam * W[k, e]
    result = check_claim("L03 full", derived, claimed, ProbeSpace(defaults={lam: 0.01}))
    assert result.status in (PROVED, PROBED), str(result)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_L05_analytic_gradient_matches_numerical_gradient(name):
    decl, rng = REGISTRY[name], np.random.default_rng(5)
    for _ in range(5):
        if isinstance(decl, ActivationType):
            derivation = derivation_of(name)
            point = rng.uniform(0.2, 2.0, len(decl.inputs)) * rng.choice([-1, 1], len(decl.inputs))
            f = activation_functions(decl, decl.forward)
            analytic = [activation_functions(decl, derivation.derivatives[v])(*point)
                        for v in decl.inputs]
            numeric = central_difference(lambda p, f=f: f(*p), point)
        else:
            classes = 3
            target, point = _target(decl, classes, rng), rng.normal(0, 2, classes)
            if not decl.is_vector:
                point = point[:1]
            f = loss_functions(decl, decl.forward, classes, target)
            analytic = loss_functions(decl, derivation_of(name).gradient, classes, target)(point)
            numeric = central_difference(f, point)
        assert relative_error(analytic, numeric) < 1e-6


def _target(decl, classes, rng):
    if decl.target_kind == "class_index":
        return int(rng.integers(classes))
    if decl.target_kind == "one_hot":
        return np.eye(classes)[rng.integers(classes)]
    if decl.target_kind == "sign":
        return int(rng.choice([-1, 1]))
    return rng.normal(size=classes)


def test_L05_numerical_gradient_is_approximate_and_a_wrong_analytic_one_is_caught():
    f = activation_functions(REGISTRY["sigmoid"], REGISTRY["sigmoid"].forward)
    exact = f(0.7) * (1 - f(0.7))
    one_sided = forward_difference(f, [0.7], h=1e-4)[0]
    centred = central_difference(f, [0.7], h=1e-4)[0]
    assert abs(one_sided - exact) > 100 * abs(centred - exact)   # O(h) against O(h^2)
    wrong = f(0.7) * (1 + f(0.7))                                 # a planted wrong derivation
    assert relative_error(wrong, centred) > 1e-2


LECTURE_ACTIVATIONS = {
    "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(0, v),
    "leaky_relu": lambda v: np.maximum(0.1 * v, v),
    "elu": lambda v: np.where(v >= 0, v, 1.0 * (np.exp(v) - 1)),
}


@pytest.mark.parametrize("name", sorted(LECTURE_ACTIVATIONS))
def test_L10_activation_is_the_lecture_formula(name):
    points = np.linspace(-3, 3, 13)
    f = activation_functions(REGISTRY[name], REGISTRY[name].forward)
    assert np.allclose([f(v) for v in points], LECTURE_ACTIVATIONS[name](points))


def test_L10_maxout_is_max_of_two_preactivations():
    f = activation_functions(REGISTRY["maxout"], REGISTRY["maxout"].forward)
    assert f(1.5, -2.0) == 1.5 and f(-1.0, 0.25) == 0.25


def test_L10_leaky_relu_is_max_of_tenth_x_and_x():
    assert verdict("leaky_relu", "L10").status == PROVED


def test_L16_slide_typo_is_refuted_and_the_correction_proved():
    (typo,) = check(resolve(f"{SLIDE_TYPOS}:svm_slide"))
    assert typo.status == REFUTED
    assert typo.counterexample["lhs"] != typo.counterexample["rhs"]
    (fixed,) = check(resolve(f"{SLIDE_TYPOS}:svm_corrected"))
    assert fixed.status == PROVED


@pytest.mark.parametrize("label", ["L19 sigma' = e^-x", "L19 sigma' = (1 - sigma) sigma"])
def test_L19_sigmoid_local_gradient(label):
    assert verdict("sigmoid", label).status == PROVED


def test_L19_sigmoid_derivative_reuses_the_forward_output():
    assert derivation_of("sigmoid").in_output[x] == out * (1 - out)
    assert derivation_of("tanh").in_output[x] == 1 - out ** 2


def test_L23_derivative_gradient_and_jacobian_shapes():
    # scalar -> scalar: a derivative with no free index
    assert not any(a.is_integer for a in derivation_of("sigmoid").derivatives[x].free_symbols)
    # vector -> scalar: a gradient with one entry per class, equal to sympy's
    decl, classes = REGISTRY["softmax_ce"], 4
    target = np.eye(classes)[1]
    gradient = loss_functions(decl, derivation_of("softmax_ce").gradient, classes, target)
    point = np.array([0.3, -1.0, 2.0, 0.5])
    assert gradient(point).shape == (classes,)
    # vector -> vector: the softmax Jacobian, a C x C matrix, equal to sympy's own
    (record, jacobian), *_ = derivation_of("softmax_ce").jacobians
    scores = sp.symbols(f"s0:{classes}", real=True)
    concrete = {s[a]: scores[a] for a in range(classes)}
    probabilities = sp.Matrix([sp.exp(v) / sum(sp.exp(w) for w in scores) for v in scores])
    reference = probabilities.jacobian(scores)
    derived = sp.Matrix(classes, classes, lambda r, c: Softmax(s, C, r).naive() * (
        KD(r, c) - Softmax(s, C, c).naive()))
    assert jacobian == Softmax(s, C, i) * (KD(i, j) - Softmax(s, C, j))
    at = dict(zip(scores, point, strict=True))
    numeric = derived.xreplace({C: classes}).doit().xreplace(concrete).evalf(subs=at)
    assert reference.shape == numeric.shape == (classes, classes)
    assert np.allclose(np.array(numeric, dtype=float), np.array(reference.evalf(subs=at),
                                                                   dtype=float))


def test_L27_binary_hinge_gradient():
    assert verdict("hinge", "L27").status == PROVED


def test_L28_softmax_loss_equals_its_naive_form():
    assert verdict("softmax_ce", "L28").status == PROVED


@pytest.mark.parametrize("label", ["L29 dp_i/da_j", "L29 p_i (1 - p_j)"])
def test_L29_softmax_jacobian(label):
    assert verdict("softmax_ce", label).status == PROVED


@pytest.mark.parametrize("label", ["L30 cross-entropy with a one-hot", "L30 H(p, q)"])
def test_L30_cross_entropy_identities(label):
    assert verdict("softmax_ce", label).status == PROVED


def test_L31_softmax_cross_entropy_gradient_is_p_minus_y():
    assert derivation_of("softmax_ce").gradient == Softmax(s, C, k) - y[k]
    assert verdict("softmax_ce", "L31 dL/do_i").status == PROVED
    assert verdict("softmax_ce", "L31 -y_i").status == PROVED


def test_L31_slide_typo_is_refuted_and_the_correction_proved():
    (typo,) = check(resolve(f"{SLIDE_TYPOS}:softmax_ce_slide"))
    assert typo.status == REFUTED and typo.counterexample
    (fixed,) = check(resolve(f"{SLIDE_TYPOS}:softmax_ce_corrected"))
    assert fixed.status == PROVED


# --- planted wrong derivations are caught ------------------------------------------------


def test_planted_wrong_activation_derivative_is_refuted():
    wrong = Activation("sigmoid_wrong", 1 / (1 + sp.exp(-x)), inputs=x,
                       hand=[Gradient(out * (1 + out), label="planted sigma(1 + sigma)")])
    (result,) = [v for v in check(wrong) if v.claim.startswith("planted")]
    assert result.status == REFUTED
    point, lhs, rhs = (result.counterexample[key] for key in ("point", "lhs", "rhs"))
    assert "x" in point and abs(lhs - rhs) > 1e-3


def test_planted_wrong_loss_gradient_is_refuted():
    decl = REGISTRY["softmax_ce"]
    wrong = Loss("ce_wrong", decl.forward, scores=s, size=C, target=y, target_kind="one_hot",
                 constraints=decl.constraints,
                 hand=[Gradient(Softmax(s, C, k) + y[k], label="planted p + y")])
    (result,) = check(wrong)
    assert result.status == REFUTED


def test_planted_wrong_kink_convention_is_refuted():
    wrong = Activation("relu_wrong_kink", sp.Max(0, x), inputs=x, kinks=[Kink({x: 0}, {x: 1})])
    (result,) = check(wrong)
    assert result.status == REFUTED and "kink" in result.claim


def test_gradient_check_straddling_a_kink_sees_the_mismatch():
    """At relu's kink the central difference averages the two sides (0.5) while the
    declared convention says relu'(0) = 0: a check sitting on a kink must fail, which
    is why probes and gradient checks sample away from kinks."""
    decl = REGISTRY["relu"]
    f = activation_functions(decl, decl.forward)
    derivative = activation_functions(decl, derivation_of("relu").derivatives[x])
    assert derivative(0.0) == 0
    assert relative_error(derivative(0.0), central_difference(f, [0.0])[0]) > 0.5
    for point in (-0.3, 0.3):
        assert relative_error(derivative(point), central_difference(f, [point])[0]) < 1e-8
