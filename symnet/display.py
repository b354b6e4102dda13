"""How formulas are shown to people: plain text and LaTeX.

One printer class per output; special cases are `_print_X` methods. A step function
prints as an Iverson bracket, [x > 0], so the value at the kink is on the page.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter


def _step_relation(step: sp.Heaviside) -> tuple[sp.Expr, str]:
    u = step.args[0]
    at_zero = step.args[1] if len(step.args) > 1 else sp.Rational(1, 2)
    if at_zero == 0:
        return u, ">"
    if at_zero == 1:
        return u, ">="
    raise ValueError(f"the step {step} has the value {at_zero} at 0; symnet uses 0 or 1")


class TextPrinter(StrPrinter):
    def _print_Heaviside(self, expr):
        u, relation = _step_relation(expr)
        return f"[{self._print(u)} {relation} 0]"

    def _print_KroneckerDelta(self, expr):
        i, j = expr.args
        return f"delta({self._print(i)}, {self._print(j)})"


class TexPrinter(LatexPrinter):
    def _print_Heaviside(self, expr, exp=None):
        u, relation = _step_relation(expr)
        symbol = ">" if relation == ">" else r"\geq"
        tex = rf"\left[{self._print(u)} {symbol} 0\right]"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


def text(expr) -> str:
    return TextPrinter().doprint(expr)


def latex(expr) -> str:
    return TexPrinter().doprint(expr)


# --- derivations as a page -----------------------------------------------------------------


def _target_line(decl) -> str | None:
    if decl.target is None:
        return None
    kinds = {"one_hot": "one-hot vector", "class_index": "class index in 0..C-1",
             "real": "real vector", "sign": "label in {-1, +1}"}
    line = f"{decl.target}: {kinds[decl.target_kind]}"
    if decl.constraints:
        shown = "; ".join(f"{text(c.lhs)} = {text(c.rhs)}" for c in decl.constraints)
        line += f"  (constraint: {shown})"
    return line


def describe(derivation, as_latex: bool = False) -> list[tuple[str, str]]:
    """(label, formula) rows for a derivation: forward, derivatives, legend."""
    from symnet.derive import ActivationDerivation, softmax_legend

    show = latex if as_latex else text
    decl = derivation.declaration
    rows = []
    if isinstance(derivation, ActivationDerivation):
        inputs = ", ".join(str(v) for v in decl.inputs)
        rows.append(("forward", f"out = {decl.name}({inputs}) = {show(decl.forward)}"))
        for variable, derivative in derivation.derivatives.items():
            rows.append((f"d out/d{variable}", show(derivative)))
            rewritten = derivation.in_output[variable]
            if rewritten is not None:
                rows.append(("", f"= {show(rewritten)}   (in terms of out: backward reuses "
                                 f"the forward output)"))
        for kink in decl.kinks:
            where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
            values = ", ".join(f"d out/d{k} = {show(v)}" for k, v in kink.derivative.items())
            rows.append(("at the kink", f"{where}: {values}"))
    else:
        legend = {}
        rows.append(("forward", f"{'R' if decl.kind == 'regularizer' else 'L'} = "
                                f"{show(decl.forward)}"))
        if (target := _target_line(decl)) is not None:
            rows.append(("target", target))
        gradient, legend = softmax_legend(derivation.gradient)
        rows.append((f"d/d{decl.wrt}", show(gradient)))
        seen = set()
        for record, jacobian in derivation.jacobians:
            if record.function in seen:
                continue
            seen.add(record.function)
            shown, more = softmax_legend(jacobian)
            legend.update(more)
            rows.append((f"Jacobian d f({record.row})/d{decl.scores}[{record.col}]", show(shown)))
            rows.append(("  of f", show(record.function)))
        for symbol, meaning in legend.items():
            rows.append(("where", f"{symbol} = {meaning}"))
    for symbol, default in decl.params.items():
        rows.append(("param", f"{symbol} = {default} by default"))
    return rows
