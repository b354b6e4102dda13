"""Verdicts on layers and networks (proved / refuted / probed), all on explicit matrices.

For a layer: each derived VJP against scalar calculus (d/dW[i,j] of sum(G .* Y)), the
output-reusing form against the plain one, the hand derivations, and the claim that the
backward holds no object of rank above 2 (L25). For a network: for each weight, the
derivation by matrix calculus against the chain of the layers' VJPs, and both against
scalar calculus on the total loss (the per-sample loss, its mean and the regulariser
written out entry by entry); the hand derivations; without an activation, the single
linear map (L09).
"""

from __future__ import annotations

import dataclasses
import functools

import sympy as sp

import symnet.index.layer_sizes as layer_sizes
from symnet.declare.layer import Layer, activation_layer
from symnet.declare.network import Network
from symnet.declare.scalar import Activation, Identity
from symnet.errors import DeclarationError
from symnet.matrix.explicit import (
    entry_domains,
    entry_symbol,
    explicit_sizes,
    instantiate,
    scalar_gradient,
)
from symnet.matrix.network_derive import derive_network, lifted_penalty
from symnet.matrix.text import text
from symnet.matrix.vjp import derive_layer, named_errors, non_matrix_nodes
from symnet.primitives import naive_form
from symnet.target_kinds import CLASS_INDEX, ONE_HOT, SIGN
from symnet.verify.claims import PROVED, REFUTED, Verdict, about_declaration, check
from symnet.verify.entrywise import check_entries, refutation

NO_JACOBIAN = "L25 the backward holds no object of rank above 2 (no Jacobian)"


def no_jacobian(backward) -> Verdict:
    found = sorted(set().union(*(non_matrix_nodes(e) for e in backward)))
    if found:
        return Verdict(NO_JACOBIAN, REFUTED, f"it holds {', '.join(found)}")
    return Verdict(NO_JACOBIAN, PROVED, "structural: only products, sums, transposes, "
                                        "Hadamard products and entry-by-entry functions "
                                        "of matrices")


def compare(claim: str, lhs, rhs, sizes: dict, upstream=None, against: str = "",
            domains=None) -> Verdict:
    """A verdict on two matrix expressions; identical expressions need no instantiation.
    `upstream` = (G, explicit G) puts explicit values in place of G's entries; `domains`
    (`entry_domains`) says how the entries of some matrices are drawn."""
    if lhs == rhs:
        return Verdict(claim, PROVED, "the same matrix expression")
    left, right = _explicit_pair(lhs, rhs, sizes, upstream)
    return check_entries(claim, left, right, sizes, against, domains)


def _explicit_pair(lhs, rhs, sizes: dict, upstream) -> tuple:
    left, right = instantiate(lhs, sizes), instantiate(rhs, sizes)
    if upstream is not None:
        entries = _entries_of(upstream)
        left, right = left.xreplace(entries), right.xreplace(entries)
    return left, right


def compare_hand(claim: str, lhs, rhs, looks: tuple, domains: dict) -> Verdict:
    """`compare` for a hand derivation, at the sizes of the first of `looks` ((sizes,
    upstream) twice); if it holds there, probed again at the second, where every size
    takes another value: a number written for a size (2 for N) holds at one of them only."""
    (sizes, upstream), (other_sizes, other_upstream) = looks
    verdict = compare(claim, lhs, rhs, sizes, upstream, domains=domains)
    if verdict.status == REFUTED or lhs == rhs:
        return verdict
    left, right = _explicit_pair(lhs, rhs, other_sizes, other_upstream)
    return refutation(claim, left, right, other_sizes, "", domains) or verdict


def _domains(decl) -> dict:
    """How probes draw the entries of decl's matrices (`entry_domains`)."""
    hand = [e for r in decl.hand for e in ((r.lhs, r.rhs) if isinstance(r, Identity)
                                           else (r.expected,))]
    return entry_domains(decl.forward, *hand)


# --- layers -------------------------------------------------------------------------------------


def check_layer(layer: Layer) -> list[Verdict]:
    derivation = derive_layer(layer)
    sizes, domains = explicit_sizes(layer.forward, layer.upstream), _domains(layer)
    upstream, output = instantiate(layer.upstream, sizes), instantiate(layer.forward, sizes)
    total = sum(g * y for g, y in zip(upstream, output, strict=True))
    verdicts = [no_jacobian(derivation.vjps.values())]
    for matrix, vjp in derivation.vjps.items():
        truth = scalar_gradient(layer.name, total, instantiate(matrix, sizes))
        verdict = check_entries(f"dL/d{matrix} = {text(vjp)}", instantiate(vjp, sizes),
                                truth, sizes, ", against scalar calculus on sum(G .* Y)",
                                domains)
        verdicts.append(for_every_size(verdict, layer, matrix, vjp))
        reusing = derivation.reusing[matrix]
        if reusing is not None:
            verdicts.append(compare(
                f"dL/d{matrix} = {text(reusing)} reuses the output {derivation.output}",
                reusing.xreplace({derivation.output: layer.forward}), vjp, sizes,
                domains=domains))
    looks = ((sizes, None), (explicit_sizes(layer.forward, layer.upstream, second=True), None))
    for record in layer.hand:
        if isinstance(record, Identity):
            verdicts.append(compare_hand(record.label or "identity", record.lhs, record.rhs,
                                         looks, domains))
        else:
            wrt = layer.wrt_of(record)
            derived = derivation.vjps[wrt]
            verdict = compare_hand(record.label or f"dL/d{record.wrt}", derived,
                                   record.expected, looks, domains)
            verdicts.append(for_every_size(verdict, layer, wrt, derived, record.expected))
    return verdicts


def for_every_size(verdict: Verdict, layer: Layer, matrix, vjp, claimed=None) -> Verdict:
    """A verdict proved at explicit sizes, marked "sizes": "symbolic" where the index
    path proves it for every size as well: `vjp` (the VJP with respect to `matrix`) against
    the index path's own entry-by-entry VJP, or against `claimed` (a hand derivation)."""
    if verdict.status != PROVED or \
            not layer_sizes.holds_for_every_size(layer, matrix, vjp, claimed):
        return verdict
    return dataclasses.replace(verdict, sizes=layer_sizes.SYMBOLIC)


def as_layer_verdicts(decl) -> list[Verdict]:
    """An activation's verdicts as a layer, applied entry by entry to a matrix (claims
    marked "as a layer:"); [] for any other declaration."""
    if not isinstance(decl, Activation):
        return []
    return [Verdict(f"as a layer: {v.claim}", v.status, v.detail, v.counterexample, v.sizes)
            for v in about_declaration(decl.name, check_layer, activation_layer(decl))]


# --- networks: the loss and regulariser on explicit rows ------------------------------------------


def _target_class(n: int, classes: int) -> int:
    return n % classes


def sample_value(network: Network, expr, row, n: int, sizes: dict, k: int | None = None):
    """A per-sample loss expression (the loss or its gradient at entry k) for sample n,
    with the scores `row`: sums written out, the target of sample n filled in."""
    loss, classes = network.loss, len(row)
    fill = dict(loss.params)
    if loss.size is not None:
        fill[loss.size] = classes
    if k is not None and loss.is_vector:
        fill[loss.index] = k
    if loss.target_kind == CLASS_INDEX:
        fill[loss.target] = _target_class(n, classes)
    elif loss.target_kind == SIGN:
        fill[loss.target] = 1 if n % 2 == 0 else -1
    expr = naive_form(expr).xreplace(fill).doit()
    if not loss.is_vector:
        return expr.xreplace({loss.scores: row[0]})
    targets = instantiate(network.target, sizes) if network.target is not None else None

    def entry(indexed):
        position = int(indexed.indices[0])
        if indexed.base == loss.scores:
            return row[position]
        if loss.target_kind == ONE_HOT:
            return sp.Integer(int(position == _target_class(n, classes)))
        return targets[n, position]

    return expr.replace(lambda e: isinstance(e, sp.Indexed), entry)


def explicit_loss(network: Network, derivation, sizes: dict):
    """(G = dL/dS as an explicit matrix, the total loss as a scalar) at explicit sizes."""
    scores = instantiate(network.forward, sizes)
    if network.loss is None:
        upstream = instantiate(network.upstream, sizes)
        return upstream, sum(g * s for g, s in zip(upstream, scores, strict=True))
    scale = derivation.scale.xreplace(sizes)
    rows = [list(scores.row(n)) for n in range(scores.rows)]
    upstream = sp.ImmutableMatrix(scores.rows, scores.cols, lambda n, k: scale * sample_value(
        network, derivation.loss_gradient, rows[n], n, sizes, k))
    total = scale * sum(sample_value(network, network.loss.forward, row, n, sizes)
                        for n, row in enumerate(rows))
    for weight in network.regularized:
        total += instantiate(lifted_penalty(network.regularizer, weight), sizes)
    return upstream, total


# --- networks -----------------------------------------------------------------------------


def _network_sizes(network: Network, second: bool = False) -> dict:
    extra = [network.target] if network.target is not None else []
    return explicit_sizes(network.forward, network.upstream, *network.weights, *extra,
                          second=second)


def check_network(network: Network) -> list[Verdict]:
    derivation = derive_network(network)
    sizes, domains = _network_sizes(network), _domains(network)
    explicit_upstream, total = explicit_loss(network, derivation, sizes)
    upstream = (network.upstream, explicit_upstream)
    verdicts = [no_jacobian([*derivation.gradients.values(), *derivation.chain.values()])]
    as_layer = network_as_layer(network)
    for weight in network.weights:
        gradient = derivation.gradients[weight]
        verdict = compare(f"dL/d{weight}: matrix calculus on the whole network = the chain of "
                          f"the layers' VJPs", gradient, derivation.chain[weight], sizes,
                          upstream, domains=domains)
        verdicts.append(_for_every_size_as_layer(verdict, as_layer, weight, gradient,
                                                 derivation.chain[weight]))
        truth = scalar_gradient(network.name, total, instantiate(weight, sizes))
        derived = instantiate(gradient, sizes).xreplace(_entries_of(upstream))
        against = "the total loss" if network.loss is not None else "sum(G .* S)"
        verdict = check_entries(f"dL/d{weight} = {text(gradient)}", derived, truth, sizes,
                                f", against scalar calculus on {against}", domains)
        verdicts.append(_for_every_size_as_layer(verdict, as_layer, weight, gradient))
    if derivation.linear is not None:
        verdicts.append(_linear_verdict(network, derivation.linear, sizes))
    if network.hand:
        other_sizes = _network_sizes(network, second=True)
        other_upstream = (network.upstream, explicit_loss(network, derivation, other_sizes)[0])
        looks = ((sizes, upstream), (other_sizes, other_upstream))
        verdicts.extend(_hand_verdicts(network, derivation, looks, domains))
    return verdicts


@functools.cache
def network_as_layer(network: Network) -> Layer | None:
    """A network without a loss as one layer from its input and weights to its output
    (the index path proves its gradients for every size); None for a network with a loss
    (its upstream is the loss's gradient, not a matrix of the layer)."""
    if network.loss is not None:
        return None
    try:
        return Layer(network.name, network.forward, inputs=(network.input, *network.weights),
                     upstream=network.upstream)
    except DeclarationError:
        return None


def _for_every_size_as_layer(verdict: Verdict, as_layer, weight, gradient, claimed=None):
    return verdict if as_layer is None else \
        for_every_size(verdict, as_layer, weight, gradient, claimed)


def _entries_of(upstream) -> dict:
    G, values = upstream
    return {entry_symbol(G, i, j): values[i, j]
            for i in range(values.rows) for j in range(values.cols)}


def _linear_verdict(network: Network, linear, sizes: dict) -> Verdict:
    weight, bias = linear
    single = network.input * weight
    if bias is not None:
        single = single + sp.OneMatrix(network.input.shape[0], 1) * bias
    claim = f"L09 no activation: the network is one linear map {text(single)}"
    return compare(claim, network.forward, single, sizes)


def _hand_verdicts(network: Network, derivation, looks: tuple,
                   domains: dict) -> list[Verdict]:
    verdicts = []
    for record in network.hand:
        if isinstance(record, Identity):
            lhs, rhs = record.lhs, record.rhs
        elif record.wrt in derivation.gradients:
            lhs, rhs = derivation.gradients[record.wrt], record.expected
        else:
            lhs, rhs = derivation.intermediates[record.wrt], record.expected
        lhs, rhs = network.expand_outputs(lhs), network.expand_outputs(rhs)
        verdicts.append(compare_hand(record.label or f"dL/d{record.wrt}", lhs, rhs, looks,
                                     domains))
    return verdicts


def check_matrix(decl) -> list[Verdict]:
    """Every verdict of a layer or a network (one with a tensor-layer stage: each stage's,
    in index notation, then the chain rule: symnet.index.chain)."""
    if getattr(decl, "staged", ()):
        from symnet.index.check import check_staged

        return check_staged(decl)
    return named_errors(decl.name, check_network if isinstance(decl, Network) else check_layer,
                        decl)


@check.register(Layer)
@check.register(Network)
def _(decl) -> list[Verdict]:
    return about_declaration(decl.name, check_matrix, decl)
