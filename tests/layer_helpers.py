"""What the layer tests share (tests/test_codegen_layers.py, and the user's own layer in
tests/test_user_path.py, float32 in tests/test_trust_numbers.py): sizes to try, inputs drawn
away from the activations' kinks, a layer module run as its calling convention says, sympy's
values of the derived matrix expressions, and central-difference gradient checks."""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.declare.elementwise import Elementwise
from symnet.matrix.explicit import entry_symbol, instantiate, size_symbols
from symnet.matrix.text import applied_function
from tests.helpers import GENERATED, away_from_kinks, load, relative_error

#: (batch N, the other sizes in the order of their names): N = 1 and a width of 1 included
SIZES = [(1, (3, 2)), (4, (2, 3)), (3, (1, 1))]
SQUARE = (4, (3, 3))


def module_path(name: str):
    return GENERATED / "layers" / f"{name}.py"


def generated(name: str):
    return load(module_path(name))


def sizes_of(layer, batch: int, others: tuple) -> dict:
    symbols = size_symbols(layer.forward, layer.upstream)
    values = {s: batch if str(s) == "N" else None for s in symbols}
    for n, symbol in enumerate(s for s in symbols if str(s) != "N"):
        values[symbol] = others[n % len(others)]
    return values


def shape_of(matrix, sizes: dict) -> tuple:
    return tuple(int(sp.sympify(d).xreplace(sizes)) for d in matrix.shape)


# --- sympy's values of the derived matrix expressions --------------------------------------


@cache
def _explicit_function(layer, expr, sizes: tuple):
    """numpy function (entries of the layer's matrices) -> the explicit matrix of expr."""
    sizes = dict(sizes)
    matrices = [*layer.inputs, layer.upstream]
    entries = [entry_symbol(m, i, j) for m in matrices
               for i in range(shape_of(m, sizes)[0]) for j in range(shape_of(m, sizes)[1])]
    return sp.lambdify(entries, instantiate(expr, sizes), "numpy")


def sympy_value(layer, expr, sizes: dict, arrays: dict) -> np.ndarray:
    """expr (a matrix expression in the layer's inputs and upstream G) evaluated by sympy
    on explicit matrices with the entries of `arrays` (by matrix)."""
    function = _explicit_function(layer, expr, tuple(sorted(sizes.items(), key=str)))
    values = [float(v) for m in (*layer.inputs, layer.upstream) for v in arrays[m].ravel()]
    return np.array(function(*values), dtype=float)


# --- inputs away from the activations' kinks -----------------------------------------------


def _activations(expr) -> list:
    """(declaration, argument matrices) of each activation applied in expr."""
    found = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, ElementwiseApplyFunction):
            function = applied_function(node.function)
            if function is not None and hasattr(function, "declaration"):
                found.append((function.declaration, [node.expr]))
        elif isinstance(node, Elementwise):
            found.append((node.function.expr.func.declaration, list(node.matrices)))
    return found


def draw(layer, rng, sizes: dict, dtype=np.float64) -> dict:
    """{matrix: array} for the layer's inputs and its upstream G, each activation's
    arguments away from that activation's kinks (as sympy evaluates them)."""
    for _ in range(200):
        arrays = {m: rng.normal(size=shape_of(m, sizes)) for m in (*layer.inputs,
                                                                   layer.upstream)}
        if all(_away(layer, decl, arguments, sizes, arrays)
               for decl, arguments in _activations(layer.forward)):
            return {m: a.astype(dtype) for m, a in arrays.items()}
    raise AssertionError(f"{layer.name}: no point away from the kinks in 200 draws")


def _away(layer, decl, arguments, sizes, arrays) -> bool:
    values = [sympy_value(layer, a, sizes, arrays) for a in arguments]
    return away_from_kinks(decl, {str(v): x for v, x in zip(decl.inputs, values,
                                                            strict=True)}, {})


# --- running a layer module ----------------------------------------------------------------


def run(layer, module, arrays: dict):
    """(sum(Y .* G), [dL/d input, in the declaration's order]) with G the upstream."""
    Y, cache_ = module.forward(*[arrays[m] for m in layer.inputs])
    grads = module.backward(arrays[layer.upstream], cache_)
    grads = list(grads) if isinstance(grads, tuple) else [grads]
    return np.sum(Y * arrays[layer.upstream]), grads


def central_differences(value, arrays, h=1e-5) -> list:
    """d value() / d each entry of each array (perturbed in place, then restored)."""
    grads = []
    for array in arrays:
        grad = np.zeros_like(array)
        for n in range(array.size):
            old = array.flat[n]
            array.flat[n] = old + h
            above = value()
            array.flat[n] = old - h
            grad.flat[n] = (above - value()) / (2 * h)
            array.flat[n] = old
        grads.append(grad)
    return grads


def gradient_error(layer, module, arrays: dict) -> float:
    """The largest relative error of the module's gradients against central differences
    of sum(Y .* G); a gradient of the wrong shape counts as wrong (inf)."""
    _, analytic = run(layer, module, arrays)
    numerical = central_differences(lambda: run(layer, module, arrays)[0],
                                    [arrays[m] for m in layer.inputs])
    return max(relative_error(a, n) if np.shape(a) == n.shape else np.inf
               for a, n in zip(analytic, numerical, strict=True))
