"""Layers and networks as derivation pages: the rows `symnet derive` prints.

Rows are `symnet.display.Row`s; their formulas are `MatrixFormula` objects, which print
through `symnet.matrix.text` whichever page (text or LaTeX) shows them, so the renames
(colsum(G), G .* relu'(X), ones(N, 1)*b) hold everywhere.
"""

from __future__ import annotations

import sympy as sp

from symnet.display import Row
from symnet.matrix import text as matrix_text
from symnet.matrix.elementwise import Elementwise
from symnet.matrix.layers import activation_layer, shape_text
from symnet.matrix.network_derive import NetworkDerivation, lifted_penalty
from symnet.matrix.vjp import (
    LayerDerivation,
    derive_layer,
    output_symbol,
    reusing_output,
    tidy_matrix,
)
from symnet.target_kinds import CLASS_INDEX, SIGN


class MatrixFormula(sp.Basic):
    """``lhs = expr`` for a page, printed by symnet's matrix printers."""

    def __new__(cls, lhs: str, expr, lhs_latex: str | None = None):
        formula = sp.Basic.__new__(cls)
        formula.lhs, formula.expr, formula.lhs_latex = lhs, expr, lhs_latex or lhs
        return formula

    def _sympystr(self, printer) -> str:
        return f"{self.lhs} = {matrix_text.text(self.expr)}"

    def _latex(self, printer) -> str:
        return f"{self.lhs_latex} = {matrix_text.latex(self.expr)}"


def _gradient_name(matrix) -> tuple[str, str]:
    return f"dL/d{matrix}", rf"\frac{{\partial L}}{{\partial {sp.latex(matrix)}}}"


def _shapes_note(matrices) -> str:
    return ", ".join(f"{m}: {shape_text(m)}" for m in matrices)


def _vjp_rows(vjps: dict, reusing: dict, output, named: dict | None = None) -> list[Row]:
    rows, named = [], named or {}
    for number, (matrix, vjp) in enumerate(vjps.items()):
        name, tex = _gradient_name(matrix)
        summed = matrix_text.column_sum_of(vjp) is not None
        note = shape_text(matrix) + (": a column sum, over the batch" if summed else "")
        rows.append(Row("VJP" if number == 0 else "",
                        MatrixFormula(name, tidy_matrix(vjp).xreplace(named), tex), note))
        if reusing.get(matrix) is not None:
            rows.append(Row("", MatrixFormula(name, reusing[matrix], tex),
                            f"reuses the forward output {output}"))
    return rows


def activation_legend(exprs) -> list[Row]:
    """What relu' and friends stand for: the activation's own derived derivative."""
    from symnet.matrix.elementwise import ActivationPartial
    from symnet.matrix.explicit import concrete

    rows, seen = [], set()
    for expr in exprs:
        for application in sp.preorder_traversal(expr):
            if isinstance(application, ActivationPartial) and application.func not in seen:
                seen.add(application.func)
                variables = application.declaration.inputs
                call = application.func(*variables)
                rows.append(Row("where", MatrixFormula(matrix_text.text(call), concrete(call)),
                                f"the derivative derived from {application.declaration.name}'s "
                                f"declaration, entry by entry"))
    return rows


def _named_arguments(layer) -> dict:
    """The composite inputs of an activation of several inputs, named A, B, ... for the
    page (maxout(A, B) with A = X*W1 + ones(N, 1)*b1)."""
    if not isinstance(layer.forward, Elementwise):
        return {}
    taken = {str(m) for m in layer.inputs} | {str(layer.upstream)}
    letters = [c for c in "ABCDEFPQRSTUV" if c not in taken]
    composite = [m for m in layer.forward.matrices if not isinstance(m, sp.MatrixSymbol)]
    return {m: sp.MatrixSymbol(letter, *m.shape)
            for m, letter in zip(composite, letters, strict=False)}


def layer_rows(derivation: LayerDerivation) -> list[Row]:
    layer = derivation.declaration
    output, upstream = derivation.output, layer.upstream
    named = _named_arguments(layer)
    rows = [Row("forward", MatrixFormula(str(output), layer.forward.xreplace(named)))]
    rows += [Row("", MatrixFormula(str(symbol), value)) for value, symbol in named.items()]
    rows.append(Row("shapes", None, f"{_shapes_note(layer.inputs)}; {output} and the upstream "
                                    f"{upstream} = dL/d{output}: {shape_text(output)}"))
    rows += _vjp_rows(derivation.vjps, derivation.reusing, output, named)
    rows += activation_legend(derivation.vjps.values())
    rows.append(Row("no Jacobian", None, "each VJP is a product of matrices of rank 2 "
                                         "(L25); see symnet check"))
    return rows


def activation_layer_rows(decl) -> list[Row]:
    """The rows an activation adds as a layer, applied entry by entry to a matrix."""
    derivation = derive_layer(activation_layer(decl))
    layer = derivation.declaration
    rows = [Row("as a layer", MatrixFormula(str(derivation.output), layer.forward),
                f"{_shapes_note(layer.inputs)}; {derivation.output}, G: "
                f"{shape_text(derivation.output)}")]
    return rows + [Row("", row.math, row.note) for row in
                   _vjp_rows(derivation.vjps, derivation.reusing, derivation.output)]


# --- networks ---------------------------------------------------------------------------------


def forward_rows(decl) -> list[Row]:
    """A layer's or a network's declaration as rows: its forward and its shapes (what
    Jupyter shows of it; its derivation shows the rest)."""
    if decl.kind == "network":
        return _forward_rows(decl) + ([_total_loss(decl)] if decl.loss is not None else [])
    output = output_symbol(decl)
    return [Row("forward", MatrixFormula(str(output), decl.forward)),
            Row("shapes", None, f"{_shapes_note(decl.inputs)}; {output}: "
                                f"{shape_text(output)}")]



def _forward_rows(network) -> list[Row]:
    rows = []
    final = "S" if network.loss is not None else "Y"
    for number, (name, expr) in enumerate(network.composed.steps):
        rows.append(Row("forward" if number == 0 else "",
                        MatrixFormula(str(name) if name is not None else final, expr)))
    matrices = [network.input, *network.weights]
    rows.append(Row("shapes", None, f"{_shapes_note(matrices)}; output: "
                                    f"{shape_text(network.forward)}"))
    return rows


def _total_loss(network) -> Row:
    """L = 1/N sum_n softmax_ce(S[n, :], Y[n, :]) + l2(W1) + ..."""
    loss, output = network.loss, network.composed.steps[-1][0]
    output = output if output is not None else "S"
    mean = "1/N sum_n" if network.reduction == "mean" else "sum_n"
    target = {CLASS_INDEX: f", {loss.target}[n]", SIGN: f", {loss.target}[n]"}.get(
        loss.target_kind, f", {network.target}[n, :]" if network.target is not None else "")
    terms = [f"{mean} {loss.name}({output}[n, :]{target})"]
    terms += [f"{network.regularizer.name}({w})" for w in network.regularized]
    return Row("loss", None, "L = " + " + ".join(terms))


def loss_rows(network, loss_gradient, scale, upstream=None) -> list[Row]:
    """A network's loss rows: L (the batch's sum or mean of the loss, plus each weight's
    penalty), each penalty, and the upstream gradient `upstream` (the network's G by
    default) as the loss's own derived gradient times `scale`."""
    from symnet.derive import softmax_legend

    loss, output = network.loss, network.composed.steps[-1][0]
    G = network.upstream if upstream is None else upstream
    output = output if output is not None else "S"
    rows = [_total_loss(network)]
    for weight in network.regularized:
        penalty = tidy_matrix(lifted_penalty(network.regularizer, weight))
        rows.append(Row("", MatrixFormula(f"{network.regularizer.name}({weight})", penalty)))
    gradient, legend = softmax_legend(loss_gradient)
    scale = "" if scale == 1 else f"{matrix_text.text(scale)} * "
    rows.append(Row("upstream", MatrixFormula(f"{G}[n, {loss.index}]", gradient),
                    f"{G} = dL/d{output}, {scale}{loss.name}'s own derived gradient at "
                    f"{loss.scores} = {output}[n, :]"))
    for symbol, meaning in legend.items():
        rows.append(Row("where", None, f"{symbol} = {meaning}"))
    return rows


def network_rows(derivation: NetworkDerivation) -> list[Row]:
    network = derivation.declaration
    rows = _forward_rows(network)
    if network.loss is not None:
        rows += loss_rows(network, derivation.loss_gradient, derivation.scale)
    else:
        rows.append(Row("upstream", None, f"{network.upstream} = dL/d(output)"))
    named = {value: name for name, value in network.outputs.items()}
    for number, (weight, gradient) in enumerate(derivation.gradients.items()):
        name, tex = _gradient_name(weight)
        shown = gradient.xreplace(named)
        rows.append(Row("gradient" if number == 0 else "", MatrixFormula(name, shown, tex),
                        shape_text(weight)))
        reusing = reusing_output(gradient).xreplace(named)
        if reusing != shown:
            rows.append(Row("", MatrixFormula(name, reusing, tex),
                            "reuses the forward outputs"))
    routes = sorted({derivation.routes[w] for w in network.weights})
    rows.append(Row("derived by", None, "; ".join(routes) + "; symnet check proves it "
                                        "equal to the chain of the layers' VJPs"))
    rows += activation_legend(derivation.gradients.values())
    if derivation.linear is not None:
        weight, bias = derivation.linear
        single = f"{network.input}*({matrix_text.text(weight)})" + (
            f" + ones(N, 1)*({matrix_text.text(bias)})" if bias is not None else "")
        rows.append(Row("linear map", None, f"no activation: the output is {single}, one "
                                            f"linear map: a linear classifier again (L09)"))
    return rows


def describe_matrix(derivation) -> list[Row]:
    """The rows of a layer's or a network's page."""
    if isinstance(derivation, NetworkDerivation):
        return network_rows(derivation)
    return layer_rows(derivation)
