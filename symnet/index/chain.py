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

`check` says what is proved how: each stage's verdicts (prefixed "stage k (layer):"), the
loss's, then one verdict per network input, "by the chain rule", proved when every VJP it
chains is proved, with the sizes they hold for ("symbolic" when all of them do).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from symnet.derive.dispatch import derive
from symnet.errors import DerivationError, SymnetError
from symnet.index.page import describe_index
from symnet.notation import Row, ShowsAsLatex
from symnet.verify.claims import PROBED, PROVED, REFUTED, Verdict, check

SYMBOLIC = "symbolic"


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


# --- verdicts ------------------------------------------------------------------------------


def _stage_verdicts(network) -> tuple[list, dict, dict]:
    """(every stage's verdicts, labelled; (stage number, input base) -> the verdict on its
    VJP; stage number -> the verdicts on what its VJPs rest on besides, such as that the
    output does not depend on a max shift)."""
    verdicts, on_vjp, besides = [], {}, {}
    for number, layer in enumerate(network.staged, start=1):
        own = [replace(v, claim=f"stage {number} ({layer.name}): {v.claim}")
               for v in check(layer)]
        verdicts += own
        for entry, verdict in zip(layer.inputs, own, strict=False):
            on_vjp[number, entry.base] = verdict
        besides[number] = own[len(layer.inputs):]
    return verdicts, on_vjp, besides


def chain_verdict(claim: str, parts: list) -> Verdict:
    """A VJP chained from `parts` (the verdicts on each VJP it chains): proved when every
    part is, for the sizes all of them hold for."""
    refuted = [v for v in parts if v.status == REFUTED]
    if refuted:
        return Verdict(claim, REFUTED, f"it chains a refuted VJP: {refuted[0].claim}", {},
                       refuted[0].sizes)
    sizes = sorted({v.sizes for v in parts if v.sizes is not None})
    held = SYMBOLIC if sizes in ([], [SYMBOLIC]) else "; ".join(s for s in sizes
                                                                 if s != SYMBOLIC)
    if all(v.status == PROVED for v in parts):
        return Verdict(claim, PROVED, "the chain rule applied by symnet at the stage "
                                      "boundaries to VJPs each proved above", {}, held)
    return Verdict(claim, PROBED, "the chain rule applied by symnet to VJPs of which some "
                                  "are only probed (above)", {}, held)


def check_staged(network) -> list[Verdict]:
    """The stages' verdicts, the loss's, then each network input's VJP by the chain rule."""
    verdicts, on_vjp, besides = _stage_verdicts(network)
    scoring = []
    if network.loss is not None:
        scoring = [replace(v, claim=f"loss ({network.loss.name}): {v.claim}")
                   for v in check(network.loss)]
        verdicts += scoring
    staged = network.staged
    last = len(staged)
    for number, layer in enumerate(staged, start=1):
        for entry in layer.inputs:
            if number > 1 and entry.base == staged[number - 2].output.base:
                continue    # a link of the chain, not a network input
            parts = [on_vjp[number, entry.base], *besides[number], *scoring]
            for later in range(number + 1, last + 1):
                parts += [on_vjp[later, staged[later - 2].output.base], *besides[later]]
            through = f"stages {last}..{number}" if number < last else f"stage {number}"
            upstream = f"dL/d{staged[-1].output}" + (f" by the loss {network.loss.name}"
                                                      if network.loss is not None else "")
            verdicts.append(chain_verdict(
                f"dL/d{entry} by the chain rule through {through} from {upstream}", parts))
    return verdicts


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
        rows.append(Row("loss", None, f"L = {scale}sum_n {network.loss.name}("
                                      f"{output.base}[n, :]); G = dL/d{output.base}: its "
                                      f"derived gradient at each row"
                                      f"{', times 1/N' if scale else ''}"))
    params = {}
    for layer in network.staged:
        params.update(layer.params)
    rows += [Row("param", sp.Eq(s, v, evaluate=False), "default") for s, v in params.items()]
    rows.append(Row("chain", None, "backward: each stage's VJPs in turn, last to first; the "
                                   "VJP of a stage's input is the upstream of the stage "
                                   "before"))
    return rows
