"""How formulas are shown to people: plain text and LaTeX, below every stage.

One printer class per output; special cases are `_print_X` methods. A step function
prints as an Iverson bracket, [x > 0], so the value at the kink is on the page. A page
(what `symnet derive` prints, what Jupyter shows) is a list of `Row`s, rendered as text
or as an aligned LaTeX block. This module imports nothing of symnet: declarations,
derivations and the code generator all show themselves through it.
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


# --- pages: rows of formulas ----------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of a derivation's page: a label, a formula (a sympy object), a note."""

    label: str
    math: sp.Basic | None = None
    note: str = ""


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


class ShowsAsLatex:
    """A derivation, which Jupyter displays as its page: an aligned block of formulas.

    The page is built from the derivation by symnet.show.page, which imports the
    derivations' modules and registers its renderer with `render_with`; symnet.derive
    imports show.page, so every derivation has it. A hook and not an import: the page's
    module is built on the derivations', not the other way round."""

    _renderer = None

    @staticmethod
    def render_with(renderer) -> None:
        """Jupyter shows a derivation as renderer(derivation), a LaTeX string."""
        ShowsAsLatex._renderer = staticmethod(renderer)

    def _repr_latex_(self) -> str | None:
        # None (Jupyter then shows the text repr) only if the derive stage was never
        # imported: its matrix modules used on their own
        renderer = ShowsAsLatex._renderer
        return renderer(self) if renderer is not None else None
