"""The docstrings of generated modules: the formulas symnet derived (plain text and
LaTeX, through `symnet.display`), the kink convention, the shapes. Lines of text."""

from __future__ import annotations

import sympy as sp

from symnet import display
from symnet.codegen.layout import paragraph
from symnet.spec import Activation, Regularizer

STEPS = ("Kinks: [u > 0] is 1 where u > 0 and 0 elsewhere (0 at u = 0); [u >= 0] is 1 at "
         "u = 0. The code compares exactly so; it never uses np.heaviside's 1/2 at a kink.")


def _rows(derivation, as_latex: bool) -> list[str]:
    # display.render_text aligns the labels already (lines start with two spaces)
    lines = []
    for line in display.render_text(display.describe(derivation), as_latex=as_latex):
        lines += paragraph(line[2:].rstrip(), indent="    ")
    return lines


def _has_steps(derivation) -> bool:
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
    if not decl.is_vector:
        target = names[str(decl.target)] if decl.target is not None else None
        labels = f", {target}: (N,) labels" if target else ""
        return f"Shapes: {vector}: (N,) scores{labels}; d{vector}: (N,)."
    target = names[str(decl.target)] if decl.target is not None else None
    kinds = {"class_index": f"{target}: (N,) integer class indices in 0..C-1",
             "one_hot": f"{target}: (N, C) one-hot rows", "real": f"{target}: (N, C) reals",
             "sign": f"{target}: (N, C) labels in {{-1, +1}}"}
    target_text = f", {kinds[decl.target_kind]}" if target else ""
    return (f"Shapes: {vector}: (N, C) scores, one row per sample{target_text}; "
            f"d{vector}: (N, C), the dtype of {vector}.")


def module_docstring(derivation, names: dict, extra: tuple = ()) -> list[str]:
    """The module docstring's lines: title, formulas, kinks, shapes, then `extra`."""
    decl = derivation.declaration
    title = f"{decl.name} ({decl.kind})" + (f": {decl.doc}" if decl.doc else "")
    lines = paragraph(title)
    lines += ["", "Derived by symnet (plain text):"] + _rows(derivation, as_latex=False)
    lines += ["", "The same in LaTeX:"] + _rows(derivation, as_latex=True)
    notes = ([STEPS] if _has_steps(derivation) else []) + [_shapes(decl, names), *extra]
    for note in notes:
        lines += [""] + paragraph(note)
    return lines
