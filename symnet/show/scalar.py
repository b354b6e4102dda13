"""The rows of an activation's and a loss's derivation, the one set that every output
reads: the page (`symnet derive`, Jupyter, the report) and a generated module's docstring.
An output chooses the renderer; the few rows that differ between a page and a docstring
are chosen here, by an argument, so that both are built from the same code.
"""

from __future__ import annotations

import sympy as sp

from symnet.cases import one_variable_cases
from symnet.derive.scalar import softmax_legend
from symnet.notation import Row, as_cases, text
from symnet.target_kinds import DESCRIPTIONS


def _eq(lhs, rhs) -> sp.Eq:
    return sp.Eq(lhs, rhs, evaluate=False)


def _derivative_notes(rewritten, used) -> tuple[str, str]:
    """The notes of a derivative's row and of its form in terms of out: a page says the
    backward reuses the output; a docstring (`used`: the form the code computes) says
    which of the two forms its backward computes."""
    if used is None:
        return "", "in terms of out: backward reuses the forward output"
    if rewritten is not None and used is rewritten:
        return "", "in terms of out: backward computes this"
    return ("backward computes this" if rewritten is not None else ""), "in terms of out"


def activation_rows(derivation, used: dict | None = None) -> list[Row]:
    """forward, each derivative (as cases where that reads better), its form in terms of
    out, the kinks. `used` maps each input to the form of its derivative that a generated
    backward computes (a module's docstring, whose forward is out = formula); None for a
    page, whose forward names the function: out = f(x), f(x) = formula."""
    decl = derivation.declaration
    out, call = sp.Symbol("out"), sp.Function(decl.name)(*decl.inputs)
    rows = [Row("forward", _eq(out, call)), Row("", _eq(call, decl.forward))] \
        if used is None else [Row("forward", _eq(out, decl.forward))]
    for variable, derivative in derivation.derivatives.items():
        slope = sp.Derivative(call, variable, evaluate=False)
        rewritten = derivation.in_output[variable]
        note, rewritten_note = _derivative_notes(
            rewritten, None if used is None else used[variable])
        rows.append(Row("derivative", _eq(slope, as_cases(derivative)), note))
        if rewritten is not None:
            rows.append(Row("", _eq(slope, rewritten), rewritten_note))
    for kink in decl.kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        for variable, value in kink.derivative.items():
            slope = sp.Derivative(call, variable, evaluate=False)
            rows.append(Row("at the kink", _eq(slope, value), f"at {where}"))
    return rows


def _target_note(decl, constraints: bool) -> str:
    note = f"{decl.target} is {DESCRIPTIONS[decl.target_kind]}"
    if constraints and decl.constraints:
        note += "; the derivation may use " + "; ".join(
            f"{text(c.lhs)} = {text(c.rhs)}" for c in decl.constraints)
    return note


def _jacobian_rows(derivation, legend: dict) -> list[Row]:
    """Each distinct function of the scores' Jacobian entry, adding to `legend`."""
    decl, rows, seen = derivation.declaration, [], set()
    for record, jacobian in derivation.jacobians:
        if record.function in seen:
            continue
        seen.add(record.function)
        shown, more = softmax_legend(jacobian)
        legend.update(more)
        f = sp.Function("f")(record.row)
        entry = sp.Derivative(f, decl.scores[record.col], evaluate=False)
        rows += [Row("Jacobian", _eq(entry, shown)), Row("", _eq(f, record.function))]
    return rows


def loss_rows(derivation, page: bool = True) -> list[Row]:
    """forward, target, gradient, the legend of its softmax. The page adds the
    constraints the derivation may use, the Jacobian and the legend as formulas; a
    module's docstring (page False) keeps its legend in words."""
    decl = derivation.declaration
    name = sp.Symbol("R" if decl.kind == "regularizer" else "L")
    rows = [Row("forward", _eq(name, decl.forward))]
    if decl.target is not None:
        rows.append(Row("target", None, _target_note(decl, constraints=page)))
    gradient, legend = softmax_legend(derivation.gradient)
    rows.append(Row("gradient", _eq(sp.Derivative(name, decl.wrt, evaluate=False), gradient)))
    if not page:
        return rows + [Row("where", None, f"{symbol} = {meaning}")
                       for symbol, meaning in legend.items()]
    rows += _jacobian_rows(derivation, legend)
    return rows + [Row("where", _eq(symbol, sp.Function(meaning.split("(")[0])(decl.scores)))
                   for symbol, meaning in legend.items()]


def param_rows(decl) -> list[Row]:
    return [Row("param", _eq(symbol, default), "default")
            for symbol, default in decl.params.items()]


def with_cases(rows: list[Row], derivation) -> list[Row]:
    """A loss's rows with its gradient also as cases, where its steps are all of one
    variable (Huber: -delta, r or delta): a sum of products of steps is hard to read."""
    gradient = getattr(derivation, "gradient", None)
    if gradient is None or gradient.has(sp.Sum) or not gradient.has(sp.Heaviside):
        return rows
    steps = sorted(gradient.atoms(sp.Heaviside), key=sp.default_sort_key)
    cases = one_variable_cases(gradient, steps, ())
    if not cases or len(cases) < 2:
        return rows
    shown = sp.Piecewise(*[(value, condition) for value, _, condition in cases],
                         evaluate=False)
    at = next(n for n, row in enumerate(rows) if row.label == "gradient")
    same = Row("", _eq(rows[at].math.lhs, shown), "as cases")
    return rows[:at + 1] + [same] + rows[at + 1:]
