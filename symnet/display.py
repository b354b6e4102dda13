"""The page of a derivation: the rows `symnet derive` prints and Jupyter shows.

The printers and the rows are `symnet.notation`'s (re-exported here, where the command
line and the code generator have always found them). `describe` dispatches on the
derivation's type: activations and losses here, layers and networks through
`symnet.matrix.display`. Importing this module registers `derivation_latex` as the
Jupyter display of every derivation (`symnet.derive` imports it, so it always is).
"""

from __future__ import annotations

import functools

import sympy as sp

from symnet.derive.scalar import ActivationDerivation, LossDerivation, softmax_legend
from symnet.index.derive import IndexDerivation
from symnet.index.page import describe_index
from symnet.matrix.display import activation_layer_rows, layer_rows, network_rows
from symnet.matrix.network_derive import NetworkDerivation
from symnet.matrix.vjp import LayerDerivation
from symnet.notation import (  # noqa: F401  (re-exported: the printers' old home)
    Row,
    ShowsAsLatex,
    TexPrinter,
    TextPrinter,
    as_cases,
    latex,
    render_latex_block,
    render_text,
    text,
)
from symnet.target_kinds import DESCRIPTIONS

# --- derivations as a page -----------------------------------------------------------------


def _target_note(decl) -> str:
    note = f"{decl.target} is {DESCRIPTIONS[decl.target_kind]}"
    if decl.constraints:
        note += "; the derivation may use " + "; ".join(
            f"{text(c.lhs)} = {text(c.rhs)}" for c in decl.constraints)
    return note


def _activation_rows(derivation) -> list[Row]:
    decl = derivation.declaration
    out = sp.Symbol("out")
    call = sp.Function(decl.name)(*decl.inputs)
    rows = [Row("forward", sp.Eq(out, call, evaluate=False), ""),
            Row("", sp.Eq(call, decl.forward, evaluate=False))]
    for variable, derivative in derivation.derivatives.items():
        name = sp.Derivative(call, variable, evaluate=False)
        rows.append(Row("derivative", sp.Eq(name, as_cases(derivative), evaluate=False)))
        rewritten = derivation.in_output[variable]
        if rewritten is not None:
            rows.append(Row("", sp.Eq(name, rewritten, evaluate=False),
                            "in terms of out: backward reuses the forward output"))
    for kink in decl.kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        for variable, value in kink.derivative.items():
            slope = sp.Derivative(call, variable, evaluate=False)
            rows.append(Row("at the kink", sp.Eq(slope, value, evaluate=False), f"at {where}"))
    return rows


def _loss_rows(derivation) -> list[Row]:
    decl = derivation.declaration
    name = sp.Symbol("R" if decl.kind == "regularizer" else "L")
    rows = [Row("forward", sp.Eq(name, decl.forward, evaluate=False))]
    if decl.target is not None:
        rows.append(Row("target", None, _target_note(decl)))
    gradient, legend = softmax_legend(derivation.gradient)
    rows.append(Row("gradient", sp.Eq(sp.Derivative(name, decl.wrt, evaluate=False), gradient,
                                      evaluate=False)))
    seen = set()
    for record, jacobian in derivation.jacobians:
        if record.function in seen:
            continue
        seen.add(record.function)
        shown, more = softmax_legend(jacobian)
        legend.update(more)
        entry = sp.Derivative(sp.Function("f")(record.row), decl.scores[record.col],
                              evaluate=False)
        rows.append(Row("Jacobian", sp.Eq(entry, shown, evaluate=False)))
        rows.append(Row("", sp.Eq(sp.Function("f")(record.row), record.function,
                                  evaluate=False)))
    for symbol, meaning in legend.items():
        rows.append(Row("where", sp.Eq(symbol, sp.Function(meaning.split("(")[0])(
            decl.scores), evaluate=False)))
    return rows


@functools.singledispatch
def describe(derivation) -> list[Row]:
    """The rows of a derivation's page: forward, derivatives, kinks, legend, params."""
    raise TypeError(f"no page for {type(derivation).__name__}")


def _with_params(rows: list[Row], decl) -> list[Row]:
    return rows + [Row("param", sp.Eq(symbol, default, evaluate=False), "default")
                   for symbol, default in decl.params.items()]


@describe.register
def _(derivation: ActivationDerivation) -> list[Row]:
    decl = derivation.declaration
    return _with_params(_activation_rows(derivation) + activation_layer_rows(decl), decl)


@describe.register
def _(derivation: LossDerivation) -> list[Row]:
    return _with_params(_loss_rows(derivation), derivation.declaration)


describe.register(LayerDerivation, layer_rows)
describe.register(NetworkDerivation, network_rows)
describe.register(IndexDerivation, describe_index)


def declaration_latex(decl) -> str:
    """A declaration as Jupyter shows it (each renders itself through symnet.notation)."""
    return decl._repr_latex_()


def derivation_latex(derivation) -> str:
    return f"$${render_latex_block(describe(derivation))}$$"


ShowsAsLatex.render_with(derivation_latex)
