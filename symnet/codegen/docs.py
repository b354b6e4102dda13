"""The docstrings of generated modules: the formulas symnet derived, in plain text and in
LaTeX (through `symnet.display`'s printers), the kink convention, the shapes.

The rows are chosen here, not taken from `symnet derive`'s page, so that a module's
bytes change only when its own formulas (or the printers) do.
"""

from __future__ import annotations

import sympy as sp

from symnet import display
from symnet.codegen.layout import paragraph
from symnet.derive import ActivationDerivation, softmax_legend
from symnet.matrix import text as matrix_text
from symnet.matrix.display import MatrixFormula
from symnet.matrix.elementwise import ActivationFunction, ActivationPartial
from symnet.matrix.explicit import concrete
from symnet.spec import Activation, Regularizer
from symnet.target_kinds import CLASS_INDEX, DESCRIPTIONS, ONE_HOT, REAL, SIGN

KINKS_NOTE = ("Kinks: [u > 0] is 1 where u > 0 and 0 elsewhere (0 at u = 0); [u >= 0] is 1 at "
              "u = 0. The code compares exactly so; it never uses np.heaviside's 1/2 at a kink.")


def _eq(lhs, rhs) -> sp.Eq:
    return sp.Eq(lhs, rhs, evaluate=False)


def _activation_rows(derivation: ActivationDerivation, used: dict) -> list:
    """(label, formula or None, note) rows; `used` maps an input to the form of its
    derivative that backward computes."""
    decl = derivation.declaration
    call = sp.Function(decl.name)(*decl.inputs)
    rows = [("forward", _eq(sp.Symbol("out"), decl.forward), "")]
    for v, derivative in derivation.derivatives.items():
        slope = sp.Derivative(call, v, evaluate=False)
        rewritten = derivation.in_output[v]
        reused = used[v] is rewritten
        note = "backward computes this" if rewritten is not None and not reused else ""
        rows.append(("derivative", _eq(slope, display.as_cases(derivative)), note))
        if rewritten is not None:
            note = "in terms of out: backward computes this" if reused else "in terms of out"
            rows.append(("", _eq(slope, rewritten), note))
    for kink in decl.kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        for v, value in kink.derivative.items():
            rows.append(("at the kink", _eq(sp.Derivative(call, v, evaluate=False), value),
                         f"at {where}"))
    return rows


def _loss_rows(derivation) -> list:
    decl = derivation.declaration
    value = sp.Symbol("R" if isinstance(decl, Regularizer) else "L")
    rows = [("forward", _eq(value, decl.forward), "")]
    if decl.target is not None:
        rows.append(("target", None, f"{decl.target} is {DESCRIPTIONS[decl.target_kind]}"))
    gradient, legend = softmax_legend(derivation.gradient)
    rows.append(("gradient", _eq(sp.Derivative(value, decl.wrt, evaluate=False), gradient), ""))
    for symbol, meaning in legend.items():
        rows.append(("where", None, f"{symbol} = {meaning}"))
    return rows


def _lines(rows: list, show) -> list[str]:
    width = max(len(label) for label, _, _ in rows)
    lines = []
    for label, formula, note in rows:
        shown = show(formula) if formula is not None else note
        if formula is not None and note:
            shown += f"   ({note})"
        lines += paragraph(f"{label:{width}s}  {shown}", indent="    ")
    return lines


def _has_kinks(derivation) -> bool:
    exprs = list(getattr(derivation, "derivatives", {}).values())
    exprs.append(getattr(derivation, "gradient", sp.S.Zero))
    return any(sp.sympify(e).has(sp.Heaviside) for e in exprs)


def _shapes(decl, names: dict) -> str:
    if isinstance(decl, Activation):
        inputs = ", ".join(names[str(v)] for v in decl.inputs)
        grads = ", ".join("d" + names[str(v)] for v in decl.inputs)
        return (f"Shapes: {inputs}: arrays of one shape, the batch first ((N, D) for N samples "
                f"of width D); out, dout and {grads} have that shape and dtype.")
    vector = names[str(decl.scores)]
    if isinstance(decl, Regularizer):
        return (f"Shapes: {vector} is a weight array of any shape; the penalty is a scalar and "
                f"d{vector} has {vector}'s shape and dtype.")
    target = names[str(decl.target)] if decl.target is not None else None
    if not decl.is_vector:
        labels = f", {target}: (N,) labels" if target else ""
        return f"Shapes: {vector}: (N,) scores{labels}; d{vector}: (N,)."
    kinds = {CLASS_INDEX: f"{target}: (N,) integer class indices in 0..C-1",
             ONE_HOT: f"{target}: (N, C) one-hot rows", REAL: f"{target}: (N, C) reals",
             SIGN: f"{target}: (N, C) labels in {{-1, +1}}"}
    target_text = f", {kinds[decl.target_kind]}" if target else ""
    return (f"Shapes: {vector}: (N, C) scores, one row per sample{target_text}; "
            f"d{vector}: (N, C), the dtype of {vector}.")


def module_docstring(derivation, names: dict, used=None, extra: tuple = ()) -> list[str]:
    """The module docstring's lines: title, formulas, kinks, shapes, then `extra`."""
    decl = derivation.declaration
    rows = _activation_rows(derivation, used) if isinstance(derivation, ActivationDerivation) \
        else _loss_rows(derivation)
    rows += [("param", _eq(p, default), "default") for p, default in decl.params.items()]
    title = f"{decl.name} ({decl.kind})" + (f": {decl.doc}" if decl.doc else "")
    lines = paragraph(title)
    lines += ["", "Derived by symnet (plain text):"] + _lines(rows, display.text)
    lines += ["", "The same in LaTeX:"] + _lines(rows, display.latex)
    notes = ([KINKS_NOTE] if _has_kinks(derivation) else []) + [_shapes(decl, names), *extra]
    for note in notes:
        lines += [""] + paragraph(note)
    return lines


# --- layers --------------------------------------------------------------------------------


def _gradient_formula(name: str, expr) -> MatrixFormula:
    """dL/dW1 = expr, in text and LaTeX."""
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


def _legend_rows(forward, backward) -> list:
    """What maxout(A, B) and dmaxout/da(A, B) stand for, and the kink conventions."""
    rows, kinks = [], []
    for node in _applications([forward], ActivationFunction) + \
            _applications(backward, ActivationPartial):
        decl = node.declaration
        call = node.func(*decl.inputs)
        if display.text(concrete(call)) == display.text(call):   # tanh(x) = tanh(x)
            continue
        source = "derived from" if isinstance(node, ActivationPartial) else "declared in"
        rows.append(("where", MatrixFormula(matrix_text.text(call), concrete(call),
                                            matrix_text.latex(call)), f"{source} {decl.name}"))
        if isinstance(node, ActivationPartial):
            kinks += [(k, node.func, call) for k in decl.kinks if node.variable in k.derivative]
    for kink, partial, call in kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        rows.append(("at the kink", MatrixFormula(matrix_text.text(call),
                                                  kink.derivative[partial.variable],
                                                  matrix_text.latex(call)), f"at {where}"))
    return rows


def _layer_shapes(layer, output, upstream) -> str:
    def shape(matrix) -> str:
        return f"({matrix.shape[0]}, {matrix.shape[1]})"

    inputs = ", ".join(f"{m}: {shape(m)}" for m in layer.inputs)
    grads = ", ".join(f"d{m}" for m in layer.inputs)
    return (f"Shapes: {inputs}, the batch N first; {output} and {upstream} = dL/d{output}: "
            f"{shape(output)}; {grads} have the shapes of {', '.join(map(str, layer.inputs))}. "
            f"The dtype of {layer.inputs[0]} is kept throughout (float32 in, float32 out).")


def layer_docstring(derivation, forward, nodes: dict, local: dict, vjps: dict,
                    upstream) -> list[str]:
    """A layer module's docstring: the forward and its named parts, the local gradients
    and the VJPs the backward computes (in the code's names), legend, kinks, shapes."""
    layer, output = derivation.declaration, derivation.output
    rows = [("forward", MatrixFormula(str(output), forward), "")]
    rows += [("", MatrixFormula(str(n), v), "") for n, v in nodes.items()]
    rows += [("local" if k == 0 else "", _gradient_formula(str(s)[1:], g), f"the code's {s}")
             for k, (s, g) in enumerate(local.items())]
    for k, (matrix, vjp) in enumerate(vjps.items()):
        note = f"{matrix.shape[0]} x {matrix.shape[1]}"
        if matrix_text.column_sum_of(vjp) is not None:
            note += ": a column sum, over the batch"
        rows.append(("VJP" if k == 0 else "", _gradient_formula(str(matrix), vjp), note))
    rows += _legend_rows(layer.forward, [*local.values(), *vjps.values()])
    title = f"{layer.name} ({layer.kind})" + (f": {layer.doc}" if layer.doc else "")
    lines = paragraph(title)
    lines += ["", "Derived by symnet (plain text):"] + _lines(rows, display.text)
    lines += ["", "The same in LaTeX:"] + _lines(rows, display.latex)
    kinks = any(concrete(f.expr).has(sp.Heaviside) for _, f, _ in rows)
    notes = ([KINKS_NOTE] if kinks else []) + [_layer_shapes(layer, output, upstream)]
    for note in notes:
        lines += [""] + paragraph(note)
    return lines
