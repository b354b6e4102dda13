"""The rows of a layer's and a network's derivation, the one set that every output reads:
the page (`symnet derive`, Jupyter, the report) and the docstrings of generated layer and
step modules.

Rows are `symnet.notation.Row`s; their formulas are `symnet.matrix.text.MatrixFormula`s,
which print through the matrix printers whichever renderer (text or LaTeX) shows them, so
the renames (colsum(G), G .* relu'(X), ones(N, 1)*b) hold everywhere. symnet.show.page's
`describe` gives a layer's derivation `layer_rows`, a network's `network_rows`.
"""

from __future__ import annotations

import sympy as sp

from symnet import notation
from symnet.declare.elementwise import ActivationFunction, ActivationPartial, Elementwise
from symnet.declare.layer import activation_layer, shape_text, shapes_note
from symnet.declare.network import forward_rows, total_loss_row
from symnet.derive.scalar import softmax_legend

# explicit's module, not its function: explicit imports the derive stage, which imports
# this module (through show.page) while explicit is half loaded, if explicit came first
from symnet.matrix import explicit
from symnet.matrix import text as matrix_text
from symnet.matrix.network_derive import NetworkDerivation, lifted_penalty
from symnet.matrix.text import MatrixFormula
from symnet.matrix.vjp import LayerDerivation, derive_layer, reusing_output, tidy_matrix
from symnet.notation import Row


def _gradient_name(matrix) -> tuple[str, str]:
    return f"dL/d{matrix}", rf"\frac{{\partial L}}{{\partial {sp.latex(matrix)}}}"


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
    """What relu' and friends stand for on a page: the activation's own derived
    derivative."""
    rows, seen = [], set()
    for expr in exprs:
        for application in sp.preorder_traversal(expr):
            if isinstance(application, ActivationPartial) and application.func not in seen:
                seen.add(application.func)
                variables = application.declaration.inputs
                call = application.func(*variables)
                formula = MatrixFormula(matrix_text.text(call), explicit.concrete(call))
                rows.append(Row("where", formula,
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
    rows.append(Row("shapes", None, f"{shapes_note(layer.inputs)}; {output} and the upstream "
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
                f"{shapes_note(layer.inputs)}; {derivation.output}, G: "
                f"{shape_text(derivation.output)}")]
    return rows + [Row("", row.math, row.note) for row in
                   _vjp_rows(derivation.vjps, derivation.reusing, derivation.output)]


# --- networks ---------------------------------------------------------------------------------


def loss_rows(network, loss_gradient, scale, upstream=None) -> list[Row]:
    """A network's loss rows: L (the batch's sum or mean of the loss, plus each weight's
    penalty), each penalty, and the upstream gradient `upstream` (the network's G by
    default) as the loss's own derived gradient times `scale`."""
    loss, output = network.loss, network.composed.steps[-1][0]
    G = network.upstream if upstream is None else upstream
    output = output if output is not None else "S"
    rows = [total_loss_row(network)]
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
    rows = forward_rows(network)
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


# --- a generated layer module's docstring ------------------------------------------------------


def _code_gradient(name: str, expr) -> MatrixFormula:
    """dL/dW1 = expr, in text and LaTeX, for a name of the generated code."""
    tex = rf"\frac{{\partial L}}{{\partial {sp.latex(sp.MatrixSymbol(name, 1, 1))}}}"
    return MatrixFormula(f"dL/d{name}", expr, tex)


def _applications(exprs, kind) -> list:
    """The distinct activation applications of `kind` in exprs, in reading order."""
    found = []
    for expr in exprs:
        for node in sp.preorder_traversal(expr):
            if isinstance(node, kind) and node.func not in [f.func for f in found]:
                found.append(node)
    return found


def module_legend(forward, backward) -> list[Row]:
    """What maxout(A, B) and dmaxout/da(A, B) stand for in a generated module, and the
    kink conventions (its docstring names each function the code calls)."""
    rows, kinks = [], []
    for node in _applications([forward], ActivationFunction) + \
            _applications(backward, ActivationPartial):
        decl = node.declaration
        call = node.func(*decl.inputs)
        if notation.text(explicit.concrete(call)) == notation.text(call):   # tanh(x) = tanh(x)
            continue
        source = "derived from" if isinstance(node, ActivationPartial) else "declared in"
        rows.append(Row("where", MatrixFormula(matrix_text.text(call), explicit.concrete(call),
                                               matrix_text.latex(call)),
                        f"{source} {decl.name}"))
        if isinstance(node, ActivationPartial):
            kinks += [(k, node.func, call) for k in decl.kinks if node.variable in k.derivative]
    for kink, partial, call in kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        rows.append(Row("at the kink", MatrixFormula(matrix_text.text(call),
                                                     kink.derivative[partial.variable],
                                                     matrix_text.latex(call)), f"at {where}"))
    return rows


def layer_module_rows(derivation, forward, nodes: dict, local: dict, vjps: dict) -> list[Row]:
    """A generated layer module's rows: the forward and its named parts, the local
    gradients and the VJPs the backward computes (in the code's names), the legend."""
    output = derivation.output
    rows = [Row("forward", MatrixFormula(str(output), forward))]
    rows += [Row("", MatrixFormula(str(n), v)) for n, v in nodes.items()]
    rows += [Row("local" if k == 0 else "", _code_gradient(str(s)[1:], g), f"the code's {s}")
             for k, (s, g) in enumerate(local.items())]
    for k, (matrix, vjp) in enumerate(vjps.items()):
        note = f"{matrix.shape[0]} x {matrix.shape[1]}"
        if matrix_text.column_sum_of(vjp) is not None:
            note += ": a column sum, over the batch"
        rows.append(Row("VJP" if k == 0 else "", _code_gradient(str(matrix), vjp), note))
    layer = derivation.declaration
    return rows + module_legend(layer.forward, [*local.values(), *vjps.values()])
