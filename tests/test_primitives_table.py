"""The table of stable primitives (symnet.primitives.TABLE), swept row by row: each row's
identity naive == stable is proved (symbolically, or at 50 digits at many points), and its
numpy spelling is finite and equal to the naive formula, evaluated exactly with mpmath, at
+-1000 in float64 and +-100 in float32. A planted wrong row is caught by both."""

from __future__ import annotations

import dataclasses
import re

import mpmath
import numpy as np
import pytest
import sympy as sp

from symnet.codegen import array_ops
from symnet.codegen.printer import numpy_code
from symnet.graph.gates import Sigmoid, Softplus
from symnet.primitives import TABLE, naive_form
from symnet.stable_rows import named_operands
from symnet.verify import PROVED, REFUTED
from symnet.verify.claims import ProbeSpace, row_verdicts

#: the largest magnitude probed in each dtype: exp of it overflows there
SCALES = {np.float64: 1000.0, np.float32: 100.0}
#: digits of the exact values: log(1 + e^-1000) must not round to 0
PRECISION = 1000
#: rows whose value is a logarithm, compared to their absolute rounding error (log cosh's
#: stable form cancels near 0: at u = 1e-6 it has 4 correct digits of 5e-13, to 1e-16)
LOG_VALUED = {"logsumexp", "log_softmax", "softplus", "log_or_zero", "log_cosh"}


def is_vector(row) -> bool:
    return isinstance(row.arguments[0], sp.IndexedBase)


def scalar_points(row, scale: float) -> list[float]:
    """Both ends, small and unit magnitudes and zero, where the row's domain holds them."""
    candidates = [-scale, -1.0, -1e-6, 0.0, 1e-6, 1.0, scale]
    return [p for p in candidates if row.domain.contains(sp.Float(p)) is sp.true]


def score_rows(scale: float) -> np.ndarray:
    """Score vectors whose exp overflows (and underflows) in the dtype of that scale."""
    return np.array([[scale, scale - 1, -scale], [-scale, 0.0, scale / 2], [0.0, 0.0, 0.0]])


def exact(row, argument: np.ndarray) -> list:
    """The naive formula at `argument` (a number, or a row of scores) with mpmath at
    PRECISION digits: each entry where the row has a position (softmax(s)_i)."""
    if not is_vector(row):
        values = [sp.lambdify(row.arguments, row.naive(*row.arguments), "mpmath")]
        scores = [float(argument)]
    else:
        s, C = row.arguments[0], sp.Integer(argument.size)
        entries = [s[j] for j in range(argument.size)]
        naive = [row.naive(s, C)] if len(row.arguments) == 2 else \
            [row.naive(s, C, j) for j in range(argument.size)]
        values = [sp.lambdify(entries, e.doit(), "mpmath") for e in naive]
        scores = [float(v) for v in argument]
    with mpmath.workdps(PRECISION):
        return [value(*map(mpmath.mpf, scores)) for value in values]


def spelled(row, argument: np.ndarray) -> np.ndarray:
    source = row.spell("numpy", named_operands(["u"]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        return np.asarray(eval(source, {"np": np, "u": argument}))


def spelling_errors(row, dtype) -> list[str]:
    """Where the row's numpy spelling, computed in `dtype`, is not finite, changes the dtype
    or differs from the naive formula by more than a few rounding errors."""
    scale, info = SCALES[dtype], np.finfo(dtype)
    if is_vector(row):
        arguments = [r.astype(dtype) for r in score_rows(scale)]
    else:
        arguments = [np.array(p, dtype=dtype) for p in scalar_points(row, scale)]
    cases = [(argument, exact(row, argument)) for argument in arguments]
    errors = []
    for argument, wanted in cases:
        try:
            got = np.atleast_1d(spelled(row, argument))
        except FloatingPointError as error:
            errors.append(f"{row.name}({argument}): {error}")
            continue
        if got.dtype != dtype or not np.all(np.isfinite(got)):
            errors.append(f"{row.name}({argument}) = {got} ({got.dtype})")
            continue
        # a log-valued row is exact to its absolute rounding error: log(1 + 1e-22) is 0
        log_scale = 1 if row.name in LOG_VALUED else 0
        for value, want in zip(got, wanted, strict=True):
            with mpmath.workdps(PRECISION):
                error = abs(mpmath.mpf(float(value)) - want)
                allowed = 64 * info.eps * (abs(want) + log_scale) + info.tiny
            if error > allowed:
                errors.append(f"{row.name}({argument}) = {value}, exactly {mpmath.nstr(want, 17)}")
    return errors


def identity_statuses(row) -> list[str]:
    """The verdicts on naive == stable: on each side of 0 for a form with max, |u| or cases,
    and at 0 itself where the domain holds it."""
    applied = row.naive(*row.arguments)
    verdicts = row_verdicts(row, ProbeSpace(), applied=applied)
    statuses = [v.status for v in verdicts]
    if row.by_sides and row.domain.contains(0) is sp.true:
        u = row.arguments[0]
        at_zero = sp.simplify(naive_form(applied - row.stable(*row.arguments)).subs(u, 0))
        statuses.append(PROVED if at_zero == 0 else REFUTED)
    return statuses


@pytest.mark.parametrize("name", TABLE)
def test_each_row_is_proved_equal_to_its_naive_formula(name):
    statuses = identity_statuses(TABLE[name])
    assert statuses and set(statuses) == {PROVED}, statuses


@pytest.mark.parametrize("dtype", SCALES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", TABLE)
def test_each_numpy_spelling_is_finite_and_exact(name, dtype):
    assert spelling_errors(TABLE[name], dtype) == []


def test_every_row_has_a_numpy_spelling_and_its_arguments():
    for row in TABLE.values():
        assert "numpy" in row.spelling and "{0" in row.spelling["numpy"], row.name
        assert len(row.arguments) in (1, 2, 3), row.name


# --- a planted wrong row is caught -----------------------------------------------------------


def _argument_negated(row):
    swapped = {"{0}": "(-{0})", "{0:neg}": "{0}"}
    spelling = re.sub(r"\{0(:neg)?\}", lambda m: swapped[m[0]], row.spelling["numpy"])
    return dataclasses.replace(row, spelling={"numpy": spelling})


def _is_even(row) -> bool:
    """f(-u) = f(u): the argument's sign cannot be told from the value (log cosh)."""
    if is_vector(row):
        return False
    u = row.arguments[0]
    return sp.simplify(row.naive(-u) - row.naive(u)) == 0


@pytest.mark.parametrize("name", [n for n, row in TABLE.items() if not _is_even(row)])
def test_a_spelling_with_the_argument_sign_swapped_is_caught(name):
    planted = _argument_negated(TABLE[name])
    assert spelling_errors(planted, np.float64) or spelling_errors(planted, np.float32)


@pytest.mark.parametrize("name", TABLE)
def test_a_spelling_with_its_sign_swapped_is_caught(name):
    row = TABLE[name]
    planted = dataclasses.replace(row, spelling={"numpy": f"-({row.spelling['numpy']})"})
    assert spelling_errors(planted, np.float64) and spelling_errors(planted, np.float32)


@pytest.mark.parametrize("name", TABLE)
def test_a_stable_form_with_its_sign_swapped_is_refuted(name):
    row = TABLE[name]
    planted = dataclasses.replace(row, stable=lambda *a: -row.stable(*a))
    assert REFUTED in identity_statuses(planted)


def test_the_naive_formula_as_spelling_is_caught_where_it_overflows():
    naive = dataclasses.replace(TABLE["softplus"], spelling={"numpy": "np.log(1 + np.exp({0}))"})
    assert spelling_errors(naive, np.float64) and spelling_errors(naive, np.float32)
    assert spelling_errors(TABLE["softplus"], np.float64) == []


# --- the places that know a primitive read its row ------------------------------------------


def test_the_printer_spells_a_stable_form_as_its_row_says(monkeypatch):
    z = sp.Symbol("z", real=True)
    assert numpy_code(array_ops.Softplus(z)) == "np.logaddexp(0, z)"
    assert numpy_code(array_ops.Logistic(z - 1)) == "np.exp(-np.logaddexp(0, 1 - z))"
    planted = dataclasses.replace(TABLE["softplus"], spelling={"numpy": "planted({0})"})
    monkeypatch.setattr(array_ops.Softplus, "row", planted)
    assert numpy_code(array_ops.Softplus(z)) == "planted(z)"


def test_the_graph_gates_take_their_formula_from_the_row():
    u = sp.Symbol("u", real=True)
    assert Sigmoid(u).rewrite(sp.exp) == TABLE["sigmoid"].naive(u)
    assert Softplus(u).rewrite(sp.exp) == TABLE["softplus"].naive(u)
    assert Sigmoid(sp.Float(2)) == TABLE["sigmoid"].naive(sp.Float(2))
