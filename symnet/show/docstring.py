"""The docstrings of generated modules: the rows symnet derived (show.scalar,
show.matrix), rendered in plain text and in LaTeX, then the kink convention and the shapes.

The rows are the same builders' as the page's, in the docstring's choice (a module says
which form its backward computes, not the function's Jacobian), so that a module's bytes
change only when its own formulas (or the printers) do.
"""

from __future__ import annotations

import sympy as sp

from symnet.codegen.layout import paragraph
from symnet.declare.scalar import Activation, Regularizer
from symnet.derive import ActivationDerivation
from symnet.matrix.explicit import concrete
from symnet.notation import Row, latex, text
from symnet.show.matrix import layer_module_rows
from symnet.show.scalar import activation_rows, loss_rows, param_rows
from symnet.target_kinds import CLASS_INDEX, ONE_HOT, REAL, SIGN

KINKS_NOTE = ("Kinks: [u > 0] is 1 where u > 0 and 0 elsewhere (0 at u = 0); [u >= 0] is 1 at "
              "u = 0. The code compares exactly so; it never uses np.heaviside's 1/2 at a kink.")


def docstring_lines(rows: list[Row], show) -> list[str]:
    """The rows as a docstring's indented lines, each formula printed by `show` (text or
    latex) and wrapped at the generated code's width."""
    width = max(len(row.label) for row in rows)
    lines = []
    for row in rows:
        shown = show(row.math) if row.math is not None else row.note
        if row.math is not None and row.note:
            shown += f"   ({row.note})"
        lines += paragraph(f"{row.label:{width}s}  {shown}", indent="    ")
    return lines


def formulas(rows: list[Row]) -> list[str]:
    """The rows in plain text, then the same in LaTeX."""
    return ["", "Derived by symnet (plain text):", *docstring_lines(rows, text),
            "", "The same in LaTeX:", *docstring_lines(rows, latex)]


def notes(paragraphs) -> list[str]:
    lines = []
    for note in paragraphs:
        lines += [""] + paragraph(note)
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
    rows = activation_rows(derivation, used) if isinstance(derivation, ActivationDerivation) \
        else loss_rows(derivation, page=False)
    title = f"{decl.name} ({decl.kind})" + (f": {decl.doc}" if decl.doc else "")
    kinks = [KINKS_NOTE] if _has_kinks(derivation) else []
    return paragraph(title) + formulas(rows + param_rows(decl)) \
        + notes([*kinks, _shapes(decl, names), *extra])


# --- layers --------------------------------------------------------------------------------


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
    """A layer module's docstring: show.matrix's rows of the module (forward, local
    gradients, VJPs in the code's names, legend), kinks, shapes."""
    layer, output = derivation.declaration, derivation.output
    rows = layer_module_rows(derivation, forward, nodes, local, vjps)
    title = f"{layer.name} ({layer.kind})" + (f": {layer.doc}" if layer.doc else "")
    kinks = any(concrete(row.math.expr).has(sp.Heaviside) for row in rows)
    return paragraph(title) + formulas(rows) + notes(
        ([KINKS_NOTE] if kinks else []) + [_layer_shapes(layer, output, upstream)])
