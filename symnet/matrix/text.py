"""Matrix expressions as text and LaTeX: G*W.T, X.T*G, colsum(G), G .* relu'(X*W).

The printers extend `symnet.notation`'s, so steps still print as Iverson brackets. Renames
only: ``ones(1, N)*G`` prints as ``colsum(G)``, an entry-by-entry function as ``relu(U)``,
the Hadamard product as ``.*`` (LaTeX: circ). `MatrixFormula` is a page's ``lhs = expr``
printed through them. Like symnet.notation, below every stage: it imports nothing else of
symnet.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.notation import TexPrinter, TextPrinter


def applied_function(function) -> type | None:
    """F when `function` is F itself or Lambda(d, F(d)); None for any other lambda."""
    if isinstance(function, sp.FunctionClass):
        return function
    body = function.expr
    if isinstance(body, sp.Function) and body.args == function.variables:
        return body.func
    return None


def column_sum_of(expr):
    """A when expr is ones(1, N)*A (the column sums of A), else None."""
    if isinstance(expr, sp.MatMul):
        first, rest = expr.args[0], expr.args[1:]
        if isinstance(first, sp.OneMatrix) and first.shape[0] == 1 and rest:
            return rest[0] if len(rest) == 1 else sp.MatMul(*rest)
    return None


def entry_sum_of(expr):
    """A when expr is trace(ones * A), the sum of all entries of A, else None."""
    if isinstance(expr, sp.Trace) and isinstance(expr.arg, sp.MatMul) \
            and len(expr.arg.args) == 2 and isinstance(expr.arg.args[0], sp.OneMatrix):
        return expr.arg.args[1]
    return None


def _needs_parentheses(expr) -> bool:
    return isinstance(expr, (sp.MatAdd, sp.MatMul, sp.HadamardProduct))


def _is_negative(term) -> bool:
    return bool(isinstance(term, sp.MatMul) and term.args[0].is_number and term.args[0] < 0)


def _is_scaled(term) -> bool:
    return bool(isinstance(term, sp.MatMul) and not getattr(term.args[0], "is_Matrix", False))


def reading_order(terms) -> list:
    """Terms in the order a person writes them: plain terms, then scaled ones (2*lambda*W),
    then subtracted ones (ones - Y)."""
    return sorted(terms, key=lambda t: (_is_negative(t), _is_scaled(t)))


def operand_order(factors) -> list:
    """Hadamard factors, nested products flattened, plain matrices first and functions
    applied entry by entry last: G .* relu'(X*W), (G*W2.T) .* relu'(X*W1)."""
    flat = [f for factor in factors for f in (
        operand_order(factor.args) if isinstance(factor, sp.HadamardProduct) else [factor])]
    return sorted(flat, key=lambda f: (not isinstance(f, sp.MatrixSymbol),
                                       isinstance(f, ElementwiseApplyFunction)))


class MatrixTextPrinter(TextPrinter):
    def _operand(self, expr) -> str:
        shown = self._print(expr)
        return f"({shown})" if _needs_parentheses(expr) else shown

    def _print_HadamardProduct(self, expr):
        return " .* ".join(self._operand(a) for a in operand_order(expr.args))

    def _print_MatAdd(self, expr):
        shown = ""
        for term in reading_order(expr.args):
            if _is_negative(term):
                shown += f" - {self._print(-term)}"
            else:
                shown += f" + {self._print(term)}" if shown else self._print(term)
        return shown

    def _print_HadamardPower(self, expr):
        return f"{self._operand(expr.base)}.^{self._print(expr.exp)}"

    def _print_Trace(self, expr):
        summed = entry_sum_of(expr)
        if summed is not None:
            return f"sum({self._print(summed)})"
        return f"trace({self._print(expr.arg)})"

    def _print_OneMatrix(self, expr):
        return f"ones({self._print(expr.shape[0])}, {self._print(expr.shape[1])})"

    def _print_MatMul(self, expr):
        summed = column_sum_of(expr)
        if summed is not None:
            return f"colsum({self._print(summed)})"
        first, rest = expr.args[0], expr.args[1:]
        if rest and not getattr(first, "is_Matrix", False) and first != -1:
            factors = "*".join(self._operand(m) for m in rest)
            return f"{self._print(first)}*{factors}"
        return super()._print_MatMul(expr)

    def _print_ElementwiseApplyFunction(self, expr):
        function = applied_function(expr.function)
        if function is not None:
            return f"{function.__name__}({self._print(expr.expr)})"
        variable = expr.function.variables[0]
        return f"({self._print(variable)} -> {self._print(expr.function.expr)})" \
               f"({self._print(expr.expr)})"


def _tex_name(name: str) -> str:
    if name.endswith("'"):
        return rf"\operatorname{{{name[:-1]}}}'"
    if name.startswith("d") and "/d" in name:
        function, variable = name[1:].split("/d")
        return rf"\partial_{{{variable}}} \operatorname{{{function}}}"
    return rf"\operatorname{{{name}}}"


class MatrixTexPrinter(TexPrinter):
    def _print_Trace(self, expr, exp=None):
        summed = entry_sum_of(expr)
        if summed is not None:
            return rf"\sum {self.parenthesize(summed, 50)}"
        return super()._print_Trace(expr, exp)

    def _print_OneMatrix(self, expr):
        rows, cols = (self._print(d) for d in expr.shape)
        return rf"\mathbf{{1}}_{{{rows} \times {cols}}}"

    def _print_MatMul(self, expr):
        summed = column_sum_of(expr)
        if summed is not None:
            # a sum or a Hadamard product is summed whole: 1^T (G o relu'(Z)), not (1^T G) o ..
            loose = isinstance(summed, (sp.MatAdd, sp.HadamardProduct, sp.HadamardPower))
            return rf"\mathbf{{1}}^\top \left({self._print(summed)}\right)" if loose \
                else rf"\mathbf{{1}}^\top {self._print(summed)}"
        return super()._print_MatMul(expr)

    def _print_Elementwise(self, expr):
        inner = ", ".join(self._print(m) for m in expr.matrices)
        return rf"{_tex_name(expr.function.expr.func.__name__)}\left({inner}\right)"

    def _print_ElementwiseApplyFunction(self, expr):
        function = applied_function(expr.function)
        inner = self._print(expr.expr)
        if function is not None:
            return rf"{_tex_name(function.__name__)}\left({inner}\right)"
        variable = self._print(expr.function.variables[0])
        return rf"\left({variable} \mapsto {self._print(expr.function.expr)}\right)" \
               rf"\left({inner}\right)"

    def _print_Function(self, expr, exp=None):
        # an activation applied to an entry, or its derivative (symnet.declare.elementwise's
        # classes say so), prints as an operator: relu(U), relu'(U)
        if getattr(expr, "shows_as_operator", False):
            args = ", ".join(self._print(a) for a in expr.args)
            return rf"{_tex_name(expr.func.__name__)}\left({args}\right)"
        return super()._print_Function(expr, exp)


def text(expr) -> str:
    return MatrixTextPrinter().doprint(expr)


def latex(expr) -> str:
    return MatrixTexPrinter().doprint(expr)


class MatrixFormula(sp.Basic):
    """``lhs = expr`` for a page, printed by symnet's matrix printers whichever page (text
    or LaTeX) shows it, so the renames (colsum(G), G .* relu'(X)) hold everywhere."""

    def __new__(cls, lhs: str, expr, lhs_latex: str | None = None):
        formula = sp.Basic.__new__(cls)
        formula.lhs, formula.expr, formula.lhs_latex = lhs, expr, lhs_latex or lhs
        return formula

    def _sympystr(self, printer) -> str:
        return f"{self.lhs} = {text(self.expr)}"

    def _latex(self, printer) -> str:
        return f"{self.lhs_latex} = {latex(self.expr)}"
