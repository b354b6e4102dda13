"""Adam's fused step makes as few passes over each weight as numpy's ufuncs and BLAS level 1
allow: the l2 term in the gradient's gemm (W copied in, beta = 2*lambda), v's square in the
spent gradient buffer, the bias corrections as scalars outside the square root (eps kept
exactly: sqrt(v/c) + eps = (sqrt(v) + eps*sqrt(c))/sqrt(c)), and the parameter's rule in the
gradient buffer, so the workspace holds no scratch array of a weight's size."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from symnet.catalog import STEPS
from symnet.codegen.step.elementwise import scalar_out_of_roots
from tests.fused_helpers import assert_same_run
from tests.helpers import GENERATED, load

ADAM = sorted(name for name, step in STEPS.items() if step.optimizer.name == "adam")


def source(name: str) -> str:
    return (GENERATED / "networks" / f"{name}.py").read_text()


def passes_after_gradient(code: str, weight: str) -> list[str]:
    """The statements between the gemm of `weight`'s gradient and the next gemm: each one
    ufunc or axpy, one pass over arrays of the weight's shape."""
    lines = [line.strip() for line in code.split("def step(", 1)[1].splitlines()]
    start = next(k for k, line in enumerate(lines)
                 if re.match(rf"gemm\([^)]*, d{weight}\b", line))
    rest = lines[start + 1:]
    end = next((k for k, line in enumerate(rest)
                if line.startswith(("gemm(", "np.copyto(d", "return "))), len(rest))
    return [line for line in rest[:end] if line and not line.startswith("#")]


@pytest.mark.parametrize("name", ADAM)
def test_adams_rules_make_nine_passes_after_the_gradient_gemm(name):
    """m: scale, axpy; v: scale, square (in place in dW), axpy; P: sqrt, + eps', divide,
    axpy: nine passes (eleven before: the l2 axpy after the gemm and v/c before the root);
    no line divides v by its bias correction."""
    code = source(name)
    passes = passes_after_gradient(code, "W1")
    assert len(passes) == 9, passes
    assert code.count("np.copyto(dW1, W1)") == 1
    assert "gemm(X.T, dZ1, dW1, beta=2*lam)" in code
    assert "np.divide(second_W1" not in code


@pytest.mark.parametrize("name", ADAM)
def test_adams_workspace_has_no_scratch_array_of_a_weights_size(name):
    """The parameter's rule runs in its spent gradient buffer: 4 arrays of W1's size in
    play (W1, dW1, first, second), not 5."""
    code = source(name)
    workspace = code.split("def workspace(", 1)[1].split("def step(", 1)[0]
    assert "_scratch" not in workspace
    assert "np.square(dW1, out=dW1)" in code and "np.sqrt(second_W1, out=dW1)" in code


def test_the_scalars_of_the_rule_stay_python_floats():
    """np.sqrt of a scalar is a float64 scalar, which numpy 2 does not cast down to a float32
    array before the ufunc: the bias corrections' roots are printed as **0.5."""
    code = source("two_layer_relu_softmax_ce_l2_adam")
    assert "np.sqrt(1 - beta2**t)" not in code
    assert "eps*(1 - beta2**t)**0.5" in code


def test_the_root_rearrangement_is_exact_in_real_arithmetic():
    # as the catalog declares them: v real (a state entry), c = 1 - beta2^t of unknown sign
    v, c = sp.Symbol("v", real=True), sp.Symbol("c")
    lr, eps = sp.symbols("lr eps", positive=True)
    rule = lr / (sp.sqrt(v / c) + eps)
    moved = scalar_out_of_roots(rule, {"v"})
    assert moved != rule and not moved.has(sp.sqrt(v / c))
    # equal where c > 0 (Adam's 1 - beta2^t for 0 < beta2 < 1 and t >= 1)
    positive = sp.Symbol("c", positive=True)
    assert sp.simplify((moved - rule).subs(c, positive)) == 0
    # numbers spread over the range Adam sees: the two forms agree to rounding
    rng = np.random.default_rng(0)
    values = {v: 10.0 ** rng.uniform(-20, 2, 200), lr: 1e-3, c: 1 - 0.999 ** 3, eps: 1e-8}
    before, after = (sp.lambdify(list(values), e, "numpy")(*values.values())
                     for e in (rule, moved))
    np.testing.assert_allclose(after, before, rtol=1e-14)


def test_a_root_of_two_arrays_or_of_an_array_alone_is_left_alone():
    v, w, c, eps = sp.Symbol("v", real=True), sp.Symbol("w", real=True), sp.Symbol("c"), \
        sp.Symbol("eps", positive=True)
    for expr in (1 / (sp.sqrt(v * w / c) + eps), 1 / (sp.sqrt(v) + eps),
                 1 / (sp.sqrt(v / c) + w)):
        assert scalar_out_of_roots(expr, {"v", "w"}) == expr


@pytest.mark.parametrize("right, wrong", [
    ("eps*(1 - beta2**t)**0.5", "eps"),               # the usual rearrangement: eps changes
    ("gemm(X.T, dZ1, dW1, beta=2*lam)", "gemm(X.T, dZ1, dW1, beta=lam)"),
    ("-lr*(1 - beta2**t)**0.5/(1 - beta1**t)", "-lr/(1 - beta1**t)"),
])
def test_a_planted_mistake_in_the_rearranged_passes_is_caught(right, wrong):
    name = "two_layer_relu_softmax_ce_l2_adam"
    code = source(name)
    assert right in code
    planted = load(GENERATED / "networks" / "planted.py", code.replace(right, wrong))
    with pytest.raises(AssertionError):
        assert_same_run(planted, STEPS[name], steps=5)
