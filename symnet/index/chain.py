"""A network of tensor stages derived, proved and shown stage by stage, chained by the rule.

A `Network` with a tensor layer among its stages (affine, batchnorm, relu, affine) keeps
each stage as a tensor layer of its own (`Network.staged`), in the network's entries, its
upstream dL/d(its output) named after the output (dA for A; the last stage's is G). Each
stage is derived on its own by the index path (`derive_index_layer`: batch norm's compact
dX, affine's G W^T) and proved on its own for every size. The network's VJPs are the
chain rule at the stage boundaries: the VJP of stage k + 1's input is stage k's upstream,
which is how a person backpropagates and what the generated backward does
(symnet.index.lower_chain). The derivation of the whole composed forward is never written
out: it was 103 operations for dX of the MLP above and took minutes to check.

`check` (symnet.index.check.check_staged) says what is proved how: each stage's verdicts
(prefixed "stage k (layer):"), the loss's, then one verdict per network input, "by the
chain rule", proved when every VJP it chains is proved, with the sizes they hold for
("symbolic" when all of them do).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symnet.errors import DerivationError, SymnetError
from symnet.index.page import describe_index
from symnet.notation import Row, ShowsAsLatex
from symnet.target_kinds import ARRAY_KINDS


@dataclass(frozen=True)
class StagedDerivation(ShowsAsLatex):
    declaration: object
    #: each stage's own IndexDerivation, first to last
    stages: tuple
    #: network input base -> dL/d input, from the stage that reads it, in that stage's
    #: upstream (dA for the stage whose output is A)
    vjps: dict
    #: stage output base -> dL/d output, the VJP of the next stage's input (the chain)
    links: dict
    #: the per-sample loss's derivation, or None
    loss: object = None

    @property
    def inputs(self) -> tuple:
        """The network's inputs (its input, then its weights), in the order of `vjps`."""
        return tuple(self.vjps)


def derive_staged(network) -> StagedDerivation:
    """Each stage derived on its own, the network's VJPs read off the stages."""
    # imported here: symnet.derive imports symnet.show.page, which imports this module
    from symnet.derive.dispatch import derive

    stages, vjps, links = [], {}, {}
    outputs = {layer.output.base for layer in network.staged}
    for number, layer in enumerate(network.staged, start=1):
        try:
            derivation = derive(layer)
        except SymnetError as exc:
            problem = getattr(exc, "problem", str(exc))
            raise DerivationError(network.name, f"stage {number} ({layer.name}): "
                                                f"{problem}") from None
        stages.append(derivation)
        for entry in layer.inputs:
            (links if entry.base in outputs else vjps)[entry.base] = \
                derivation.vjps[entry.base]
    loss = derive(network.loss) if network.loss is not None else None
    return StagedDerivation(network, tuple(stages), vjps, links, loss)


# --- the page ------------------------------------------------------------------------------


def describe_staged(derivation: StagedDerivation) -> list[Row]:
    """Each stage's page (its forward, statistics, VJPs, upstream), then the loss."""
    network = derivation.declaration
    rows = []
    for number, stage in enumerate(derivation.stages, start=1):
        layer = stage.declaration
        own = describe_index(stage)
        first, *rest = own
        rows.append(Row(f"stage {number}", first.math,
                        f"{layer.name}; {first.note}" if first.note else layer.name))
        rows += [r for r in rest if r.label != "param"]
    if derivation.loss is not None:
        output = network.staged[-1].output
        scale = "1/N " if network.reduction == "mean" else ""
        decl = network.loss
        target = network.target if network.target is not None else (
            getattr(decl.target, "label", decl.target))
        row = "[n, :]" if decl.target_kind in ARRAY_KINDS else "[n]"
        given = f", {target}{row}" if target is not None else ""
        rows.append(Row("loss", None, f"L = {scale}sum_n {decl.name}({output.base}[n, :]"
                                      f"{given}); G = dL/d{output.base}: its derived "
                                      f"gradient at each row{', times 1/N' if scale else ''}"))
    params = {}
    for layer in network.staged:
        params.update(layer.params)
    rows += [Row("param", sp.Eq(s, v, evaluate=False), "default") for s, v in params.items()]
    rows.append(Row("chain", None, "backward: each stage's VJPs in turn, last to first; the "
                                   "VJP of a stage's input is the upstream of the stage "
                                   "before"))
    return rows
