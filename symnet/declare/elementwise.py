"""Activations of the catalog applied entry by entry to matrices.

``elementwise(relu, X*W)`` is sympy's `ElementwiseApplyFunction` of a function class that
stands for the activation's declaration (one class per declaration, named after it); its
derivative is a placeholder (relu') that symnet replaces by the derivative it derived from
the declaration only when a formula is written out. An activation of several inputs
(maxout) becomes an `Elementwise` node, the several-input twin sympy lacks.
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from symnet.declare.scalar import Activation
from symnet.errors import DeclarationError


class ActivationFunction(sp.Function):
    """An activation of the catalog as a sympy function of one entry.

    Its derivative is an `ActivationPartial` placeholder (relu'), which symnet replaces by
    the derivative it derived from the declaration only when a formula is evaluated; the
    derivation itself stays readable (G .* relu'(X*W)).
    """

    declaration: Activation
    partials: tuple = ()
    #: symnet.matrix.text prints it as an operator, relu(U)
    shows_as_operator = True

    def fdiff(self, argindex=1):
        return type(self).partials[argindex - 1](*self.args)

    def _eval_is_real(self):
        return True


class ActivationPartial(sp.Function):
    """The derivative of an activation with respect to one of its inputs."""

    declaration: Activation
    variable: sp.Symbol
    #: symnet.matrix.text prints it as an operator, relu'(U)
    shows_as_operator = True

    def _eval_is_real(self):
        return True


@cache
def function_of(decl: Activation) -> type:
    """The sympy function class standing for an activation (one class per declaration)."""
    nargs = len(decl.inputs)
    partials = tuple(
        type(f"{decl.name}'" if nargs == 1 else f"d{decl.name}/d{variable}",
             (ActivationPartial,), {"nargs": nargs, "declaration": decl, "variable": variable})
        for variable in decl.inputs)
    return type(decl.name, (ActivationFunction,),
                {"nargs": nargs, "declaration": decl, "partials": partials})


class Elementwise(MatrixExpr):
    """An activation of several inputs applied entry by entry to matrices of one shape:
    ``Elementwise(maxout, A, B)[i, j] = maxout(A[i, j], B[i, j])``.

    sympy's `ElementwiseApplyFunction` takes one matrix; this is its several-input twin.
    """

    def __new__(cls, function: sp.Lambda, *matrices):
        return sp.Basic.__new__(cls, function, *matrices)

    @property
    def function(self) -> sp.Lambda:
        return self.args[0]

    @property
    def matrices(self) -> tuple:
        return self.args[1:]

    @property
    def shape(self):
        return self.matrices[0].shape

    def _entry(self, i, j, **kwargs):
        return self.function(*[m._entry(i, j, **kwargs) for m in self.matrices])

    def _eval_transpose(self):
        return Elementwise(self.function, *[m.T for m in self.matrices])

    def doit(self, **hints):
        return Elementwise(self.function, *[m.doit(**hints) for m in self.matrices])

    def _sympystr(self, printer) -> str:
        inner = ", ".join(printer._print(m) for m in self.matrices)
        return f"{printer._print(self.function.expr.func)}({inner})"


def elementwise(decl: Activation, *matrices) -> MatrixExpr:
    """The activation `decl` applied entry by entry: ``elementwise(relu, X*W)``."""
    if not isinstance(decl, Activation):
        raise DeclarationError(str(getattr(decl, "name", decl)),
                               "elementwise() applies an Activation declaration")
    if len(matrices) != len(decl.inputs):
        raise DeclarationError(decl.name, f"takes {len(decl.inputs)} matrix input(s) "
                               f"({', '.join(map(str, decl.inputs))}), got {len(matrices)}")
    function = function_of(decl)
    variables = entry_variables(len(matrices))
    if len(matrices) == 1:
        return ElementwiseApplyFunction(sp.Lambda(variables, function(*variables)), matrices[0])
    return Elementwise(sp.Lambda(variables, function(*variables)), *matrices)


def entry_variables(count: int) -> tuple:
    """The bound variables of entry-by-entry functions: always the same symbols, so equal
    functions compare equal (sympy's own Lambdas use a fresh Dummy each time)."""
    return (sp.Symbol("x", real=True),) if count == 1 else \
        sp.symbols(f"x0:{count}", real=True)


def canonical_lambdas(expr):
    """Rebuild every entry-by-entry function on the bound variables of `entry_variables`."""

    def rebuild(node):
        lam = node.function
        variables = entry_variables(len(lam.variables))
        body = lam.expr.xreplace(dict(zip(lam.variables, variables, strict=True)))
        return type(node)(sp.Lambda(variables, body), *node.args[1:])

    return expr.replace(lambda e: isinstance(e, (ElementwiseApplyFunction, Elementwise)),
                        rebuild)
