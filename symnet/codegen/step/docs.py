"""The docstring of a training step's module: what each statement computes, as the
derivations give it (forward, loss, backward VJPs, gradients, updates), in plain text and
in LaTeX, then the shapes, the kink convention and how the updates are computed."""

from __future__ import annotations

import re

import sympy as sp

from symnet import notation
from symnet.codegen.layout import paragraph
from symnet.codegen.step.plan import Elementwise, StepPlan
from symnet.declare.layer import shape_text
from symnet.derive import derive
from symnet.matrix import text as matrix_text
from symnet.matrix.explicit import concrete
from symnet.matrix.text import MatrixFormula
from symnet.notation import Row

# the module, not its functions: show.docstring imports this package (its paragraph),
# so imported first it is still half loaded here
from symnet.show import docstring
from symnet.show.matrix import activation_legend, loss_rows

UPDATES = ("Updates: an update beta*P + alpha*A*B (the optimiser's rule on P and its "
           "gradient, expanded) is one gemm(A, B, P, alpha, beta): with scipy installed, one "
           "BLAS call scales P and adds the product in place, with no gradient array; with "
           "numpy alone, the same in a product and two passes over P.")
RULES = ("Rules entry by entry: the optimiser's other rules (and a gradient's terms after its "
         "gemm) are written in place, one numpy ufunc or axpy (y += a*x, BLAS with scipy) "
         "per operation, into the state arrays, which the caller owns and passes in, and "
         "into scratch buffers of the workspace; scalars such as Adam's bias corrections "
         "are computed once per step.")
BUFFERS = ("Buffers: workspace() allocates the arrays step() writes in place, masks and "
           "scratch arrays for the elementwise operations among them; a step reuses them, so "
           "training allocates only small temporaries (the loss's rows of C scores).")


def _rows(p: StepPlan) -> list:
    network = p.network
    rows = [Row("forward" if k == 0 else "", MatrixFormula(n.name, e))
            for k, (n, e) in enumerate(p.forward)]
    scale = 1 / network.input.shape[0] if network.reduction == "mean" else 1
    rows += loss_rows(network, derive(network.loss).gradient, scale, p.upstream)
    rows += [Row("backward" if k == 0 else "", MatrixFormula(n.name, e), "the layer's VJP")
             for k, (n, e) in enumerate(p.backward)]
    for k, (param, gradient) in enumerate(p.gradients.items()):
        rows.append(Row("gradient" if k == 0 else "", MatrixFormula(f"dL/d{param}", gradient),
                        shape_text(param)))
    for k, u in enumerate(p.updates):
        if isinstance(u, Elementwise):
            rows.append(Row("update" if k == 0 else "", Rule(u), "entry by entry"))
        else:
            rows.append(Row("update" if k == 0 else "", Update(u),
                            "one gemm" if u.product is not None else ""))
    return rows + activation_legend([e for _, e in p.backward] + list(p.gradients.values()))


class Update(sp.Basic):
    """``P <- beta*P + alpha*A*B + rest`` for a page, the coefficients as derived."""

    def __new__(cls, update):
        formula = sp.Basic.__new__(cls)
        formula.update = update
        return formula

    def _show(self, scalar, matrix, arrow: str, times: str) -> str:
        u = self.update
        terms = [] if u.beta == 0 else \
            [matrix(u.param) if u.beta == 1 else f"({scalar(u.beta)}){times}{matrix(u.param)}"]
        if u.product is not None:
            alpha, A, B = u.product
            terms.append(matrix(alpha * A * B))
        if u.rest is not None:
            terms.append(matrix(u.rest))
        text = re.sub(r"\+ -\s*", "- ", " + ".join(terms))
        return f"{matrix(u.param)} {arrow} {text}"

    def _sympystr(self, printer) -> str:
        return self._show(notation.text, matrix_text.text, "<-", "*")

    def _latex(self, printer) -> str:
        return self._show(notation.latex, matrix_text.latex, r"\leftarrow", " ")


class Rule(sp.Basic):
    """``T <- value`` for a page: an optimiser's rule entry by entry, as declared."""

    def __new__(cls, rule):
        formula = sp.Basic.__new__(cls)
        formula.rule = rule
        return formula

    def _sympystr(self, printer) -> str:
        return f"{self.rule.target} <- {notation.text(self.rule.value)}"

    def _latex(self, printer) -> str:
        return (rf"{matrix_text.latex(self.rule.target)} \leftarrow "
                rf"{notation.latex(self.rule.value)}")


def _shapes(p: StepPlan) -> str:
    network = p.network
    matrices = [network.input, *([network.target] if network.target is not None else []),
                *p.params, *p.state]
    shown = ", ".join(f"{m}: {shape_text(m)}" for m in matrices)
    if p.labels is not None:
        shown = shown.replace(", ", f", {p.labels}: N class indices, ", 1)
    return (f"Shapes: {shown}, the batch N first; every array keeps the parameters' dtype "
            f"(float32 in, float32 out).")


def step_docstring(p: StepPlan) -> list[str]:
    step = p.step
    rows = _rows(p)
    lines = paragraph(f"{step.name} (training step): {step.doc}.") + docstring.formulas(rows)
    kinks = any(concrete(e).has(sp.Heaviside) for _, e in p.backward)
    rules = [RULES] if any(isinstance(u, Elementwise) for u in p.updates) else []
    kinks_note = [docstring.KINKS_NOTE] if kinks else []
    return lines + docstring.notes(kinks_note + [_shapes(p), UPDATES, *rules, BUFFERS])
