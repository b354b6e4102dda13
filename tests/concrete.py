"""Test helpers: a declaration's expressions at a concrete number of classes, as numpy
functions (sympy's own lambdify, independent of symnet's evaluator)."""

import numpy as np
import sympy as sp

from symnet.primitives import naive_form


def activation_functions(decl, expr):
    """numpy function of the inputs, parameters at their defaults."""
    bound = sp.sympify(expr).xreplace(decl.params)
    return sp.lambdify(decl.inputs, bound, "numpy")


def loss_functions(decl, expr, classes: int, target):
    """numpy function of the score vector (length `classes`) for one fixed target;
    `expr` may hold the free gradient index, giving one entry per class."""
    expr = naive_form(sp.sympify(expr)).xreplace(decl.params)
    if decl.target_kind == "class_index":
        expr = expr.xreplace({decl.target: target})
    elif decl.target_kind == "sign":
        expr = expr.xreplace({decl.target: target})
    if not decl.is_vector:
        return sp.lambdify([decl.scores], expr, "numpy")
    expr = expr.xreplace({decl.size: classes})
    entries = [expr.xreplace({decl.index: n}).doit() for n in range(classes)] \
        if expr.has(decl.index) else [expr.doit()]
    if decl.target_kind in ("one_hot", "real"):
        values = {decl.target[n]: target[n] for n in range(classes)}
        entries = [e.xreplace(values) for e in entries]
    scores = [decl.scores[n] for n in range(classes)]
    functions = [sp.lambdify([scores], e, "numpy") for e in entries]
    return lambda s: np.array([float(f(list(s))) for f in functions])


def central_difference(f, point, h=1e-6):
    point = np.asarray(point, dtype=float)
    grad = np.zeros_like(point)
    for n in range(point.size):
        step = np.zeros_like(point)
        step.flat[n] = h
        grad.flat[n] = (np.sum(f(point + step)) - np.sum(f(point - step))) / (2 * h)
    return grad


def forward_difference(f, point, h=1e-6):
    point = np.asarray(point, dtype=float)
    grad = np.zeros_like(point)
    for n in range(point.size):
        step = np.zeros_like(point)
        step.flat[n] = h
        grad.flat[n] = (np.sum(f(point + step)) - np.sum(f(point))) / h
    return grad


def relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
