"""The overflow rule for activations: a module's forward and backward, computed by their
printed numpy code in float64 with every input at +-EXTREME (parameters at their defaults),
hold no inf, else the declaration is refused with one line that names the
smallest subexpression that overflows and the stable form to declare instead.

The rewrites of `stable.py` come first: ``log(1 + exp(x))`` is already ``np.logaddexp``,
``log(cosh(x))`` is ``|x| + softplus(-2|x|) - log(2)``, ELU's ``exp(x)`` is computed on x
clamped to its branch; what is left and still overflows (``cosh(x)``, ``exp(x) - 1``,
``(x**2 + 1)**60``) has no stable form symnet knows. Every node is checked, not only the
result: numpy computes both sides of an ``np.where``, and an inf on the discarded side
still raises under ``np.errstate(over="raise")``.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from symnet.codegen.array_ops import Expm1
from symnet.codegen.errors import CodegenError
from symnet.codegen.printer import numpy_code
from symnet.symbols import out as OUT

#: the inputs at which an activation's module must compute no inf in float64
#: (the stability tests' extremes): exp(1000), cosh(1000) and x**200 at 1000 are inf,
#: x**3 at 1000 is 1e9
EXTREME = 1000.0
#: how to declare what overflows so that it does not, by function
STABLE_SPELLINGS = {
    sp.exp: "Softplus(u) for log(1 + exp(u)) and Logistic(u) for 1/(1 + exp(-u)) "
            "(symnet.primitives), or exp on the side of a kink where it is bounded "
            "(ELU's Piecewise)",
    sp.cosh: "tanh(u) = sinh(u)/cosh(u), or log(cosh(u)), which is lowered as |u| + "
             "softplus(-2|u|) - log(2)",
    sp.sinh: "tanh(u) = sinh(u)/cosh(u), or asinh",
}


def _values(expr: sp.Expr, names: dict, dtype_of: str, point: dict):
    """expr computed at `point` (identifier -> value) by its printed numpy code, exactly
    what the module runs, in float64; None where it is no array expression (a condition,
    a branch's pair) or cannot be run on its own."""
    if not isinstance(expr, sp.Expr):
        return None
    try:
        code = numpy_code(expr, names, dtype_of)
        with np.errstate(all="ignore"):
            return np.asarray(eval(code, {"np": np}, dict(point)), dtype=float)
    except (CodegenError, NameError, TypeError, ValueError, AttributeError):
        return None


def first_overflow(exprs, names: dict, dtype_of: str, point: dict):
    """The smallest subexpression of `exprs` that numpy computes as +-inf at `point`, or
    None. Only inf counts: a NaN that follows from one (inf - inf) is found at the inf,
    and a NaN of its own is a domain (sqrt, log of a negative), not an overflow."""
    seen = set()
    for expr in exprs:
        for node in sp.postorder_traversal(expr):
            if node in seen or isinstance(node, sp.Symbol):
                continue
            seen.add(node)
            values = _values(node, names, dtype_of, point)
            if values is not None and np.any(np.isinf(values)):
                return node
    return None


def _extremes(decl, names: dict) -> list:
    """Every input at +EXTREME or -EXTREME, the parameters at their defaults, dout 1."""
    defaults = {names[str(p)]: float(v) for p, v in decl.params.items()} | {"dout": 1.0}
    return [{**defaults, **{names[str(v)]: np.array([sign * EXTREME]) for v, sign
                            in zip(decl.inputs, signs, strict=True)}}
            for signs in itertools.product((1, -1), repeat=len(decl.inputs))]


def check_finite(decl, names: dict, forward: sp.Expr, backward: list) -> None:
    """The overflow rule: an activation's lowered forward and backward must compute no inf
    in float64 with every input at +-EXTREME, else the declaration is refused, naming what
    overflows and how to declare it instead."""
    dtype_of = names[str(decl.inputs[0])]
    for point in _extremes(decl, names):
        point[names[str(OUT)]] = _values(forward, names, dtype_of, point)
        for what, exprs in (("forward", [forward]), ("backward", backward)):
            node = first_overflow(exprs, names, dtype_of, point)
            if node is not None:
                _refuse(decl, names, what, node, point)


def _refuse(decl, names: dict, what: str, node: sp.Expr, point: dict):
    shown = node.replace(lambda e: isinstance(e, Expm1), lambda e: sp.exp(e.args[0]) - 1)
    function = next((f for f in STABLE_SPELLINGS if shown.atoms(f)), None)
    at = ", ".join(f"{v} = {point[names[str(v)]][0]:g}" for v in decl.inputs)
    how = STABLE_SPELLINGS.get(function, "a form that stays finite there: a low power (x**3 "
                               "is 1e9 at 1000), tanh, or symnet.primitives' Logistic and "
                               "Softplus")
    raise CodegenError(decl.name, f"the {what} computes {shown}, which overflows float64 at "
                       f"{at}; declare it with {how}")
