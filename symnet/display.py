"""How formulas are shown to people: plain text and LaTeX.

One printer class per output; special cases are `_print_X` methods. A step function
prints as an Iverson bracket, [x > 0], so the value at the kink is on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def _print_Derivative(self, expr):
        ((variable, _),) = expr.variable_count
        return f"d{self._print(expr.expr)}/d{self._print(variable)}"

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Piecewise(self, expr):
        *cases, (otherwise, _) = expr.args
        shown = [f"{self._print(value)} if {self._print(condition)}"
                 for value, condition in cases]
        return "(" + " else ".join(shown + [self._print(otherwise)]) + ")"


class TexPrinter(LatexPrinter):
    def _print_Heaviside(self, expr, exp=None):
        u, relation = _step_relation(expr)
        symbol = ">" if relation == ">" else r"\geq"
        tex = rf"\left[{self._print(u)} {symbol} 0\right]"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


def as_cases(expr: sp.Expr) -> sp.Expr:
    """a + b [u > 0] with a != 0 reads better as cases: (a + b if u > 0 else a).

    Only for an expression with a single step; the step's value at 0 decides which
    case holds at the kink, so nothing is lost."""
    steps = expr.atoms(sp.Heaviside)
    if len(steps) != 1:
        return expr
    (step,) = steps
    u, relation = _step_relation(step)
    on = sp.Dummy("on")
    linear = sp.expand(expr.xreplace({step: on}))
    if not linear.is_polynomial(on) or sp.degree(linear, on) != 1:
        return expr
    base, slope = linear.coeff(on, 0), linear.coeff(on, 1)
    if base == 0:
        return expr
    if sp.simplify(base + slope) == 0:      # base * (1 - [u > 0]) is base * [-u >= 0]
        return base * sp.Heaviside(-u, 0 if relation == ">=" else 1)
    condition = u > 0 if relation == ">" else u >= 0
    return sp.Piecewise((sp.factor_terms(base + slope), condition), (sp.factor_terms(base), True))


def text(expr) -> str:
    return TextPrinter().doprint(expr)


def latex(expr) -> str:
    return TexPrinter().doprint(expr)


# --- derivations as a page -----------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of a derivation's page: a label, a formula (a sympy object), a note."""

    label: str
    math: sp.Basic | None = None
    note: str = ""


def _target_note(decl) -> str:
    kinds = {"one_hot": "a one-hot vector", "class_index": "a class index in 0..C-1",
             "real": "a real vector", "sign": "a label in {-1, +1}"}
    note = f"{decl.target} is {kinds[decl.target_kind]}"
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
    from symnet.derive import softmax_legend

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


def describe(derivation) -> list[Row]:
    """The rows of a derivation's page: forward, derivatives, kinks, legend, params."""
    from symnet.derive import ActivationDerivation
    from symnet.matrix.display import activation_layer_rows, describe_matrix  # matrix level

    decl = derivation.declaration
    if getattr(decl, "kind", "") in ("layer", "network"):
        return describe_matrix(derivation)
    if getattr(decl, "kind", "") == "tensor layer":
        from symnet.index.page import describe_index

        return describe_index(derivation)
    rows = _activation_rows(derivation) if isinstance(derivation, ActivationDerivation) \
        else _loss_rows(derivation)
    if isinstance(derivation, ActivationDerivation):
        rows += activation_layer_rows(decl)
    for symbol, default in decl.params.items():
        rows.append(Row("param", sp.Eq(symbol, default, evaluate=False), "default"))
    return rows


def declaration_latex(decl) -> str:
    """A declaration as one displayed formula (Jupyter shows it through _repr_latex_); a
    layer or network as its forward and its shapes."""
    if decl.kind in ("layer", "network"):
        from symnet.matrix.display import forward_rows

        return f"$${render_latex_block(forward_rows(decl))}$$"
    if decl.kind == "activation":
        lhs = sp.Function(decl.name)(*decl.inputs)
    else:
        lhs = sp.Symbol(r"\mathrm{" + decl.name.replace("_", r"\_") + "}")
    return f"$${latex(sp.Eq(lhs, decl.forward, evaluate=False))}$$"


def derivation_latex(derivation) -> str:
    return f"$${render_latex_block(describe(derivation))}$$"


def render_text(rows: list[Row], as_latex: bool = False) -> list[str]:
    show = latex if as_latex else text
    width = max(len(row.label) for row in rows)
    lines = []
    for row in rows:
        formula = show(row.math) if row.math is not None else ""
        note = f"   ({row.note})" if row.note and formula else row.note
        lines.append(f"  {row.label:{width}s}  {formula}{note}")
    return lines


def render_latex_block(rows: list[Row]) -> str:
    """An aligned LaTeX block (Jupyter, Markdown reports)."""
    lines = []
    for row in rows:
        label = rf"\text{{{row.label}}}" if row.label else ""
        formula = latex(row.math) if row.math is not None else ""
        escaped = row.note.replace("{", r"\{").replace("}", r"\}")
        note = rf"\quad\text{{({escaped})}}" if row.note else ""
        lines.append(rf"{label} &\quad {formula}{note}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"
