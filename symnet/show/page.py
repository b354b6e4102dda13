"""The page of a derivation: the rows `symnet derive` prints and Jupyter shows.

`describe` dispatches on the derivation's type to the row builders of its kind
(show.scalar for activations and losses, show.matrix for layers and networks,
symnet.index.page for tensor layers), which a
module's docstring and the report read too. Importing this module registers
`derivation_latex` as the Jupyter display of every derivation (`symnet.derive` imports
it, so it always is).
"""

from __future__ import annotations

import functools

from symnet.derive.scalar import ActivationDerivation, LossDerivation
from symnet.index.chain import StagedDerivation, describe_staged
from symnet.index.derive import IndexDerivation
from symnet.index.page import describe_index
from symnet.matrix.network_derive import NetworkDerivation
from symnet.matrix.vjp import LayerDerivation
from symnet.notation import Row, ShowsAsLatex, render_latex_block

# The row builders' modules, not their functions: symnet.derive imports this module to
# register the page, and a row builder's module imported first is then still half loaded
# (it imports the derive stage); its functions are looked up when a page is built.
from symnet.show import matrix, scalar


@functools.singledispatch
def describe(derivation) -> list[Row]:
    """The rows of a derivation's page: forward, derivatives, kinks, legend, params."""
    raise TypeError(f"no page for {type(derivation).__name__}")


@describe.register
def _(derivation: ActivationDerivation) -> list[Row]:
    decl = derivation.declaration
    return scalar.activation_rows(derivation) + matrix.activation_layer_rows(decl) \
        + scalar.param_rows(decl)


@describe.register
def _(derivation: LossDerivation) -> list[Row]:
    return scalar.loss_rows(derivation) + scalar.param_rows(derivation.declaration)


@describe.register
def _(derivation: LayerDerivation) -> list[Row]:
    return matrix.layer_rows(derivation)


@describe.register
def _(derivation: NetworkDerivation) -> list[Row]:
    return matrix.network_rows(derivation)


describe.register(IndexDerivation, describe_index)
describe.register(StagedDerivation, describe_staged)


def declaration_latex(decl) -> str:
    """A declaration as Jupyter shows it (each renders itself through symnet.notation)."""
    return decl._repr_latex_()


def derivation_latex(derivation) -> str:
    return f"$${render_latex_block(describe(derivation))}$$"


ShowsAsLatex.render_with(derivation_latex)
