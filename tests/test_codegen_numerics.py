"""The generated code, not only the algebra: every module of generated/ passes a float64
central-difference gradient check (L05), agrees with sympy's own lambdified derivative,
follows its declared kink convention exactly, and a mutation planted in its backward
code is caught."""

from __future__ import annotations

import ast

import numpy as np
import pytest
import sympy as sp

from symnet.catalog import REGISTRY
from symnet.declare.scalar import Activation, Regularizer
from tests.concrete import activation_functions, loss_functions
from tests.conftest import derivation_of
from tests.helpers import (
    MUTATIONS,
    FirstOnly,
    draw_away_from_kinks,
    flip_sign,
    generated,
    gradient_error,
    kind_of,
    load,
    module_path,
    run,
)

SEEDS = (0, 1, 2)
#: batch shapes per kind of declaration, including N = 1 and C = 2
SHAPES = {"activation": [(1, 1), (1, 3), (4, 2)], "vector loss": [(1, 2), (4, 3), (3, 5)],
          "scalar loss": [(1,), (6,)], "regularizer": [(2,), (1, 2), (3, 4)]}
NAMES = list(REGISTRY)


def cases():
    for name in NAMES:
        for shape in SHAPES[kind_of(REGISTRY[name])]:
            for seed in SEEDS:
                size = "x".join(map(str, shape))
                yield pytest.param(name, shape, seed, id=f"{name}-{size}-{seed}")


@pytest.mark.parametrize("name, shape, seed", list(cases()))
def test_L05_generated_gradient_matches_central_differences(name, shape, seed):
    decl = REGISTRY[name]
    module = generated(decl)
    wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(seed), shape)
    assert gradient_error(decl, module, wrt, fixed) <= 1e-7


# --- agreement with sympy's lambdify -------------------------------------------------------


def _lambdified(decl, wrt, fixed):
    """(value, [gradients]) from sympy's lambdify of the declaration and its derivation."""
    derivation = derivation_of(decl.name)
    if isinstance(decl, Activation):
        arrays = [wrt[str(v)] for v in decl.inputs]
        out = activation_functions(decl, decl.forward)(*arrays)
        grads = [activation_functions(decl, derivation.derivatives[v])(*arrays) * fixed["dout"]
                 for v in decl.inputs]
        return np.sum(out * fixed["dout"]), grads
    scores = wrt["W"] if isinstance(decl, Regularizer) else wrt["s"]
    rows = [scores.reshape(-1)] if isinstance(decl, Regularizer) else list(scores)
    targets = fixed.get("target")
    values, grads = [], []
    for n, row in enumerate(rows):
        target = targets[n] if targets is not None else None
        size = row.size if decl.is_vector else None
        values.append(np.sum(loss_functions(decl, decl.forward, size, target)(row)))
        grads.append(loss_functions(decl, derivation.gradient, size, target)(row))
    batch = len(rows)
    return sum(values) / batch, [np.reshape(grads, scores.shape) / batch]


@pytest.mark.parametrize("name", NAMES)
def test_generated_code_agrees_with_sympy_lambdify(name):
    decl = REGISTRY[name]
    module = generated(decl)
    shape = SHAPES[kind_of(decl)][-1]
    for seed in SEEDS:
        wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(seed), shape)
        value, grads = run(decl, module, wrt, fixed)
        expected_value, expected_grads = _lambdified(decl, wrt, fixed)
        np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
        for got, expected in zip(grads, expected_grads, strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# --- kinks ---------------------------------------------------------------------------------


def _kinks():
    for name in NAMES:
        for n, kink in enumerate(getattr(REGISTRY[name], "kinks", ())):
            yield pytest.param(name, kink, id=f"{name}-{n}")


@pytest.mark.parametrize("name, kink", list(_kinks()))
def test_generated_backward_follows_the_declared_kink_convention(name, kink):
    decl = REGISTRY[name]
    module = generated(decl)
    inputs = [np.array([float(kink.at[v])]) for v in decl.inputs]
    _, cache = module.forward(*inputs)
    grads = module.backward(np.ones(1), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for v, grad in zip(decl.inputs, grads, strict=True):
        assert grad[0] == float(sp.sympify(kink.derivative[v]).subs(decl.params))


def test_a_gradient_check_straddling_the_generated_relu_kink_sees_the_mismatch():
    relu = generated(REGISTRY["relu"])
    x, h = np.zeros(1), 1e-5
    numerical = (relu.forward(x + h)[0] - relu.forward(x - h)[0]) / (2 * h)
    analytic = relu.backward(np.ones(1), relu.forward(x)[1])
    assert numerical[0] == pytest.approx(0.5) and analytic[0] == 0.0


def test_L24_relu_backward_through_the_generated_module():
    relu = generated(REGISTRY["relu"])
    x = np.array([1.0, -2.0, 3.0, -1.0])
    y, cache = relu.forward(x)
    assert y.tolist() == [1.0, 0.0, 3.0, 0.0]
    assert relu.backward(np.array([4.0, -1.0, 5.0, 9.0]), cache).tolist() == [4.0, 0.0, 5.0, 0.0]


# --- mutations planted in the generated backward -------------------------------------------


def _gradient_statements(tree: ast.Module, decl) -> list:
    """The statements that compute only the gradient: an activation's backward after
    unpacking the cache; a loss's statements after the loss value."""
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    if isinstance(decl, Activation):
        return functions["backward"].body[2:-1]   # docstring, unpacking ... return
    name = "penalty" if isinstance(decl, Regularizer) else "loss"
    body = functions[name].body
    value_at = next(n for n, s in enumerate(body) if isinstance(s, ast.Assign)
                    and getattr(s.targets[0], "id", None) == name)
    return body[value_at + 1:-1]


def mutated(decl, change):
    """The generated module's source with `change` planted in its gradient code, or None
    when the gradient code has no place for it."""
    path = module_path(decl)
    tree = ast.parse(path.read_text())
    mutation = FirstOnly(change)
    for statement in _gradient_statements(tree, decl):
        mutation.visit(statement)
    if not mutation.done:
        return None
    return load(path, ast.unparse(ast.fix_missing_locations(tree)))


def _plantable() -> list[tuple[str, str]]:
    """(entry, mutation) for every mutation that has a place in the entry's gradient code
    (relu's has no added term to drop): only these are tests, none that could only skip."""
    return [(name, mutation) for name in NAMES for mutation, change in MUTATIONS.items()
            if mutated(REGISTRY[name], change) is not None]


PLANTABLE = _plantable()


@pytest.mark.parametrize("name, mutation", PLANTABLE,
                         ids=[f"{name}-{mutation}" for name, mutation in PLANTABLE])
def test_a_mutation_planted_in_the_generated_backward_is_caught(name, mutation):
    decl = REGISTRY[name]
    module = mutated(decl, MUTATIONS[mutation])
    wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(0),
                                      SHAPES[kind_of(decl)][-1])
    assert gradient_error(decl, module, wrt, fixed) > 1e-3


def test_every_kind_of_mutation_is_planted_somewhere():
    assert {mutation for _, mutation in PLANTABLE} == set(MUTATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_the_sign_flip_can_be_planted_in_every_module(name):
    assert mutated(REGISTRY[name], flip_sign) is not None
