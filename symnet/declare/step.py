"""What a training step is: a network, its loss and regulariser, and an optimiser's update,
fused into one generated function (`symnet generate` writes generated/networks/NAME.py).

The network is a `Network` (symnet.declare.network); the optimiser is its update rule for
one entry of a parameter P and of its state, given the entry's gradient G: ``P <- P - lr*G``
for SGD, ``V <- mu*V - lr*G, P <- P + V`` for momentum (the catalog's optimisers and steps
are in symnet/catalog/steps.py). Nothing here is derived: symnet.codegen.step.plan derives
the step from these declarations and symnet.codegen.step.lower lowers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symnet.declare.network import Network
from symnet.errors import DeclarationError

#: one entry of a parameter and of its gradient, in every optimiser's rules
P, G = sp.Symbol("P", real=True), sp.Symbol("G", real=True)


@dataclass(frozen=True)
class Optimizer:
    """An optimiser as rules on one entry of a parameter: ``rules`` are (target, new value)
    pairs applied in order, each seeing the new values of the rules before it; a target is
    the parameter P or one of its `state` entries (each an array of P's shape), a value is
    in P, its gradient G, the state, the hyper-parameters (in argument order) and the
    `counter` (a step count, advanced by one before the rules)."""

    name: str
    rules: tuple
    hyper: tuple
    state: tuple = ()
    counter: sp.Symbol | None = None
    doc: str = ""

    def __post_init__(self):
        known = {P, G, *self.state, *self.hyper} | ({self.counter} if self.counter else set())
        for target, value in self.rules:
            if target not in (P, *self.state):
                raise DeclarationError(self.name, f"the rule for {target} updates neither P "
                                       f"nor a state of the optimiser")
            extra = value.free_symbols - known
            if extra:
                raise DeclarationError(self.name, f"the rule for {target} uses "
                                       f"{sorted(map(str, extra))}, which are neither P, G, "
                                       f"a state nor a hyper-parameter")
        if P not in [target for target, _ in self.rules]:
            raise DeclarationError(self.name, "no rule updates the parameter P")

    @property
    def rule(self) -> sp.Expr:
        """The parameter's own rule (SGD's whole update)."""
        return next(value for target, value in self.rules if target == P)


@dataclass(frozen=True, eq=False)
class TrainingStep:
    """One training step of `network` (with its loss and regulariser) by `optimizer`."""

    name: str
    network: Network
    optimizer: Optimizer
    doc: str = ""
    kind = "step"
