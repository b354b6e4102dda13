"""Computational graphs (lecture section 02): the lecture's circuits L17-L22, reverse mode
against sympy.diff for every gate, the emitted code against both, and the 3x bound."""

import random

import numpy as np
import pytest
import sympy as sp

from symnet.graph import (
    backward_statements,
    build,
    evaluate,
    forward_statements,
    op_counts,
)
from symnet.graph.code import emit, load
from symnet.graph.gates import GATES, ROW_GATES, UNARY, GraphError, Sigmoid, graph_rows
from symnet.graph.parse import parse_expression
from symnet.graph.rewrite import composite, elementary

NEURON = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
NEURON_AT = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
TIGHT = sp.Float(10) ** -40


def graph_of(text, output="f"):
    """The graph of EXPR text, or of a sympy expression (a Piecewise, which EXPR cannot write)."""
    expr = text if isinstance(text, sp.Expr) else parse_expression(text)
    return build(expr, output=output)


def close(a, b, tolerance=TIGHT) -> bool:
    return abs(sp.N(a - b, 50)) < tolerance


def reference(graph, at) -> dict:
    """d output / d input by sympy.diff of the whole expression, at 50 digits."""
    real = {n: sp.Symbol(n, real=True) for n in graph.inputs}
    expr = graph.expr.doit().xreplace({s: real[s.name] for s in graph.expr.free_symbols})
    point = {real[n]: sp.sympify(v) for n, v in at.items()}
    return {n: sp.N(sp.diff(expr, real[n]).subs(point), 50) for n in graph.inputs}


def worst_gradient_error(graph, at) -> sp.Expr:
    got = evaluate(graph, at).gradients
    want = reference(graph, at)
    return max(abs(sp.N(got[n] - want[n], 50)) for n in graph.inputs)


# --- the lecture --------------------------------------------------------------------------


def test_L17_add_then_multiply_exactly():
    graph = graph_of("(x+y)*z")
    result = evaluate(graph, {"x": -2, "y": 5, "z": -4})
    q = graph.node("f").inputs[0]                      # q = x + y, the add gate
    assert graph.node(q).kind == "add"
    assert result.values[q] == 3 and result.value == -12
    assert result.local[q] == (1, 1)                   # dq/dx = dq/dy = 1
    assert result.local["f"] == (-4, 3)                # df/dq = z, df/dz = q
    assert [result.gradients[n] for n in "xyz"] == [-4, -4, 3]
    assert all(result.gradients[n].is_Integer for n in "xyz")  # exact, not rounded


def test_L18_sigmoid_neuron_values_and_gradients_exactly():
    result = evaluate(graph_of(NEURON), NEURON_AT)
    sigma = 1 / (1 + sp.exp(-1))
    assert close(result.value, sigma)
    assert f"{float(result.value):.2f}" == "0.73"
    slope = sigma * (1 - sigma)
    for name, factor in zip(["w0", "x0", "w1", "x1", "w2"], [-1, 2, -2, -3, 1], strict=True):
        assert close(result.gradients[name], factor * slope), name
    rounded = [f"{float(result.gradients[n]):.2f}" for n in NEURON_AT]
    assert rounded == ["-0.20", "0.39", "-0.39", "-0.59", "0.20"]


def test_L18_add_gate_passes_0_2_to_both_inputs():
    graph = graph_of(NEURON)
    result = evaluate(graph, NEURON_AT)
    add_w2 = next(g for g in graph.gates if "w2" in g.inputs)
    assert add_w2.kind == "add"
    assert f"{float(result.gradients[add_w2.name]):.1f}" == "0.2"
    assert result.local[add_w2.name] == (1, 1)
    for name in add_w2.inputs:  # [0.2] x [1] = 0.2, both inputs
        assert result.gradients[name] == result.gradients[add_w2.name]


def _local_in_inputs(gate) -> sp.Expr:
    """The gate's local gradient written in its input alone (its output substituted)."""
    return gate.local_gradient(0).xreplace({gate.symbol: gate.forward}).doit()


@pytest.mark.parametrize("kind, expected", [
    ("exp", lambda u, c: sp.exp(u)),      # f(x) = e^x -> e^x
    ("mul_c", lambda u, c: c),            # f_a(x) = a x -> a
    ("recip", lambda u, c: -1 / u ** 2),  # f(x) = 1/x -> -1/x^2
    ("add_c", lambda u, c: 1),            # f_c(x) = c + x -> 1
])
def test_L18_local_gradient_table(kind, expected):
    gate = next(g for g in graph_of(NEURON).gates if g.kind == kind)
    u = sp.Symbol(gate.inputs[0])
    constant = gate.constant[0] if isinstance(gate.constant, tuple) else gate.constant
    assert sp.simplify(_local_in_inputs(gate) - expected(u, constant)) == 0


def test_L20_sigmoid_as_one_gate_and_as_four_gates_give_the_same_gradients():
    four = graph_of(NEURON)
    one = build(composite(parse_expression(NEURON)))
    assert [g.kind for g in one.gates].count("sigmoid") == 1
    assert len(four.gates) - len(one.gates) == 3       # *-1, exp, +1, 1/x -> sigmoid
    a, b = evaluate(four, NEURON_AT), evaluate(one, NEURON_AT)
    assert close(a.value, b.value)
    assert all(close(a.gradients[n], b.gradients[n]) for n in NEURON_AT)
    back = build(elementary(composite(parse_expression(NEURON))))
    assert [g.kind for g in back.gates] == [g.kind for g in four.gates]


@pytest.mark.parametrize("row", graph_rows(), ids=lambda row: row.name)
def test_every_row_of_the_table_is_one_gate_by_composite_and_its_formula_by_elementary(row):
    """composite and elementary read the table's rows: each row's naive formula (as sympy
    writes it) is one gate, written back as the same formula, with the same numbers."""
    x = sp.Symbol("x")
    naive = row.naive(row.arguments[0]).xreplace({row.arguments[0]: x})
    one = build(composite(naive))
    assert [g.kind for g in one.gates] == [UNARY[ROW_GATES[row.name]]]
    back = elementary(composite(naive))
    assert composite(back) == composite(naive)
    at = {"x": sp.Rational(-3, 7)}     # in every row's domain (expm1's is u <= 0)
    want = sp.N(sp.diff(naive, x).subs(at), 50)
    for graph in (one, build(back)):
        result = evaluate(graph, at)
        assert close(result.value, naive.subs(at)) and close(result.gradients["x"], want)


def test_the_rows_no_graph_holds_are_the_vector_ones_and_a_case_split():
    """A row added to the table of one real argument is a gate (the sweep above takes it);
    only these are not: a score vector's, and log_or_zero's naive formula, which is itself
    a case split at t = 0 that no gate compares."""
    from symnet.primitives import TABLE

    assert set(TABLE) - {row.name for row in graph_rows()} == {
        "logsumexp", "softmax", "log_softmax", "log_or_zero"}


def test_L20_the_sigmoid_gate_uses_the_catalog_derivation_of_its_local_gradient():
    from symnet.symbols import out, x
    from tests.conftest import derivation_of
    gate = graph_of("sigmoid(x)").node("f")
    derived = derivation_of("sigmoid").in_output[x]
    assert sp.simplify(gate.local_gradient(0) - derived.xreplace({out: gate.symbol})) == 0


def _statement(graph, target):
    return next(s for s in backward_statements(graph) if s.target == target)


@pytest.mark.parametrize("pattern, text, at, expected", [
    ("add distributes", "3*(x + y)", {"x": 1, "y": 2}, {"x": 3, "y": 3}),
    ("mul swaps", "x*y", {"x": 3, "y": -4}, {"x": -4, "y": 3}),
    ("copy adds", "x*y + x", {"x": 3, "y": -4}, {"x": -3, "y": 3}),
    ("max routes", "2*max(x, y)", {"x": 4, "y": 2}, {"x": 2, "y": 0}),
    ("max routes", "2*max(x, y)", {"x": 2, "y": 4}, {"x": 0, "y": 2}),
])
def test_L21_gradient_patterns(pattern, text, at, expected):
    got = evaluate(graph_of(text), at).gradients
    assert {n: got[n] for n in expected} == expected


def test_L21_add_passes_upstream_unchanged_and_mul_swaps_in_the_code():
    add = graph_of("(x + y)*z")
    assert str(_statement(add, "grad_x").rhs) == "grad_s0"
    assert str(_statement(add, "grad_y").rhs) == "grad_s0"
    mul = graph_of("x*y")
    assert str(_statement(mul, "grad_x").rhs) == "grad_f*y"
    assert str(_statement(mul, "grad_y").rhs) == "grad_f*x"


def test_L21_copy_gate_sums_the_contributions_of_each_use():
    graph = graph_of("x*y + x")
    rhs = _statement(graph, "grad_x").rhs
    assert rhs.is_Add and len(rhs.args) == 2


def test_L21_max_gate_routes_a_tie_to_the_input_written_first():
    at = {"x": 1, "y": 1}
    assert evaluate(graph_of("max(x, y)"), at).gradients["x"] == 1
    assert evaluate(graph_of("max(y, x)"), at).gradients["x"] == 0
    assert evaluate(graph_of("relu(x)"), {"x": 0}).gradients["x"] == 0  # relu'(0) = 0


SLIDE_FORWARD = """
s0 = w0 * x0
s1 = w1 * x1
s2 = s0 + s1
s3 = s2 + w2
L = sigmoid(s3)
"""
SLIDE_BACKWARD = """
grad_L = 1.0
grad_s3 = grad_L * (1 - L) * L
grad_w2 = grad_s3
grad_s2 = grad_s3
grad_s0 = grad_s2
grad_s1 = grad_s2
grad_w1 = grad_s1 * x1
grad_x1 = grad_s1 * w1
grad_w0 = grad_s0 * x0
grad_x0 = grad_s0 * w0
"""


def _slide(text) -> dict:
    lines = [line.split(" = ") for line in text.strip().splitlines()]
    return {t: sp.sympify(rhs, locals={"sigmoid": Sigmoid}) for t, rhs in lines}


def test_L22_emitted_statements_are_the_slides():
    graph = graph_of("sigmoid(w0*x0 + w1*x1 + w2)", output="L")
    for ours, slide in ((forward_statements(graph), SLIDE_FORWARD),
                        (backward_statements(graph), SLIDE_BACKWARD)):
        expected = _slide(slide)
        assert [s.target for s in ours] == list(expected)   # the same names, in the same order
        for s in ours:
            assert sp.simplify(s.rhs.doit() - expected[s.target]) == 0, s.target


def test_L22_emitted_code_runs_to_the_slides_numbers():
    graph = graph_of("sigmoid(w0*x0 + w1*x1 + w2)", output="L")
    code = emit(graph)
    assert "    grad_s3 = grad_L*(1 - L)*L\n" in code and "    s0 = w0*x0\n" in code
    value, grads = load(code)(**{k: float(v) for k, v in NEURON_AT.items()})
    slide = {"sigmoid": lambda v: 1 / (1 + np.exp(-v)), **NEURON_AT}
    exec(SLIDE_FORWARD + SLIDE_BACKWARD, slide)   # the slide's own code, as written
    assert value == pytest.approx(slide["L"], rel=1e-14)
    for name in NEURON_AT:
        assert grads[name] == pytest.approx(slide[f"grad_{name}"], rel=1e-14)
    assert f"{value:.2f}" == "0.73"


# --- reverse mode against sympy.diff, gate by gate --------------------------------------------

CASES = [  # (expression, point): together they use every kind of gate
    ("x - y", {"x": 3, "y": 5}),
    ("x*y/z", {"x": 3, "y": 5, "z": -2}),
    ("2.5*x + 1", {"x": 3}),
    ("x**3 - x^2 + sqrt(y)", {"x": "0.7", "y": 2}),
    ("x**-2 + x**1.5", {"x": "1.3"}),
    ("log(x*y) + exp(-x)", {"x": "0.5", "y": 3}),
    ("tanh(w*x) + sigmoid(x - w)", {"w": "0.3", "x": "-1.2"}),
    ("sin(x)*cos(y) + abs(x - y)", {"x": "0.4", "y": "1.9"}),
    ("max(x, y) + min(x, y*y)", {"x": "0.4", "y": "-1.5"}),
    ("relu(x) + max(x, 2) + min(1, y) + min(y, 0)", {"x": "0.6", "y": "-0.5"}),
    ("x**y + 2**x", {"x": "1.5", "y": "0.5"}),
    ("exp(x)*y + exp(x) + (x*y)*(x*y)", {"x": "0.2", "y": "-0.7"}),
    (NEURON, NEURON_AT),
    ("softplus(x*y) + silu(y)", {"x": "0.8", "y": "-1.3"}),
    (sp.Piecewise((sp.Symbol("x") * sp.Symbol("y"), sp.Symbol("x") > sp.Symbol("y")), (2, True)),
     {"x": "0.4", "y": "-1.5"}),
    # the gates of the table's rows (log_cosh, expm1), which composite makes
    (composite(parse_expression("log(cosh(x*y)) + (exp(y) - 1) + sinh(x)*cosh(y)")),
     {"x": "0.6", "y": "-0.8"}),
]


def _point(at) -> dict:
    return {k: sp.Rational(v) for k, v in at.items()}


def test_the_cases_use_every_kind_of_gate():
    used = {g.kind for text, _ in CASES for g in graph_of(text).gates}
    assert used == set(GATES)


@pytest.mark.parametrize("text, at", CASES, ids=[str(c[0]) for c in CASES])
def test_reverse_mode_equals_sympy_diff(text, at):
    assert worst_gradient_error(graph_of(text), _point(at)) < TIGHT


@pytest.mark.parametrize("text, at", CASES, ids=[str(c[0]) for c in CASES])
def test_emitted_code_gives_the_graphs_numbers_and_passes_a_gradient_check(text, at):
    graph = graph_of(text)
    point = _point(at)
    result = evaluate(graph, point)
    run = load(emit(graph))
    floats = {k: float(v) for k, v in point.items()}
    value, grads = run(**floats)
    assert value == pytest.approx(float(result.value), rel=1e-12)
    for name in graph.inputs:
        assert grads[name] == pytest.approx(float(result.gradients[name]), rel=1e-9, abs=1e-12)
        h = 1e-6
        up = run(**{**floats, name: floats[name] + h})[0]
        down = run(**{**floats, name: floats[name] - h})[0]
        numeric = (up - down) / (2 * h)
        assert grads[name] == pytest.approx(numeric, rel=1e-6, abs=1e-7), name


def test_a_planted_wrong_local_gradient_is_caught(monkeypatch):
    tanh = GATES["tanh"]
    wrong = type(tanh)(tanh.kind, tanh.label, tanh.forward,
                       lambda ins, out, c: ((1 - out,),), tanh.lecture)  # 1 - tanh, not 1 - tanh^2
    monkeypatch.setitem(GATES, "tanh", wrong)
    # the check test_reverse_mode_equals_sympy_diff makes fails, by far
    assert worst_gradient_error(graph_of("tanh(w*x)"), {"w": 1, "x": sp.Rational(1, 2)}) > 0.1


def test_a_shared_subexpression_is_one_node_visited_once():
    graph = graph_of("exp(x)*y + exp(x)")
    exps = [g for g in graph.gates if g.kind == "exp"]
    assert len(exps) == 1
    rhs = _statement(graph, f"grad_{exps[0].name}").rhs
    assert rhs.is_Add and len(rhs.args) == 2     # its two consumers, summed once


def test_graph_of_an_evaluated_sympy_expression():
    x, y = sp.symbols("x y", real=True)
    graph = build(sp.exp(x * y) / (1 + x ** 2))
    assert worst_gradient_error(graph, {"x": sp.Rational(1, 3), "y": 2}) < TIGHT


# --- the cost of reverse mode ----------------------------------------------------------------


def nested_tanh(depth):
    f = sp.Symbol("x")
    for w in sp.symbols(f"w1:{depth + 1}"):
        f = sp.tanh(w * f)
    return f


@pytest.mark.parametrize("depth", range(2, 25))
def test_backward_costs_at_most_three_times_the_forward_for_nested_tanh(depth):
    ops = op_counts(build(nested_tanh(depth)))
    assert ops["forward"] == 2 * depth
    assert ops["backward"] <= 3 * ops["forward"]


def _random_expression(rng, depth, names):
    unary = ["exp({})", "log({})", "tanh({})", "sigmoid({})", "sin({})", "cos({})", "abs({})",
             "sqrt({})", "relu({})", "-({})", "({})**2", "({})**3", "1/({})", "({})^-2"]
    binary = ["({}) + ({})", "({}) - ({})", "({}) * ({})", "({}) / ({})", "max({}, {})",
              "min({}, {})", "({})**({})", "2*({})+{}", "({}) + 1 + ({})"]
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(names)
    if rng.random() < 0.5:
        return rng.choice(unary).format(_random_expression(rng, depth - 1, names))
    return rng.choice(binary).format(*(_random_expression(rng, depth - 1, names)
                                       for _ in range(2)))


def test_backward_costs_at_most_three_times_the_forward_for_random_expressions():
    rng = random.Random(6)
    pools = [["x"], ["x", "y"], ["x", "y", "z"], ["x", "0.5", "3"]]
    checked = 0
    for _ in range(400):
        text = _random_expression(rng, rng.randint(1, 6), rng.choice(pools))
        try:
            graph = graph_of(text)
        except GraphError:  # a constant part that is not real (log(sin(3))), or no gate at all
            continue
        ops = op_counts(graph)
        assert ops["backward"] <= 3 * ops["forward"], (text, ops)
        checked += 1
    assert checked > 300
