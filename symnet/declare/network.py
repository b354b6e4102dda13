"""Networks: compositions of catalog layers, with an optional loss and regulariser.

A network is a list of stages, each a layer of the catalog with its weights bound to the
network's own matrices; the input flows through the stages in order::

    two_layer = Network("two_layer", input=X, stages=[
        use(affine, W=W1, b=0),          # b=0: no bias
        use(relu, out=H),                # the hidden layer, named H
        use(affine, W=W2, b=0),
    ], loss=svm, regularizer=l2, regularized=(W1, W2))

Each stage's layer keeps its own symbols and sizes (affine's X, W, b of sizes N, D, M);
binding matches them to the network's (W1 of size D x H says M = H here), and a binding
that does not fit is reported with both shapes. The loss is a per-sample catalog loss
applied to each row of the output (the scores), averaged (``reduction="mean"``) or summed
over the batch; the regulariser is a catalog regulariser applied to each listed weight.

A tensor layer is a stage too (``use(batchnorm, gamma=g1, beta=be1)``, g1 and be1 1 x H
rows): the stages are then written in index notation (symnet.index.stages.network_stages),
each as a tensor layer of its own (`Network.staged`), which is what is derived and checked
stage by stage (for every size) with the chain rule between (symnet.index.chain) and
generated as one module; `Network.tensor` composes them into one, for the page. Such a
network takes a vector loss (and its target) but no regulariser or hand derivation yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import sympy as sp

from symnet.declare.layer import (
    Layer,
    as_layer,
    check_shapes,
    shape_text,
    shapes_note,
    validate_identity,
    validate_matrix_claim,
    without_zeros,
)
from symnet.declare.scalar import Gradient, Identity, Loss, Regularizer
from symnet.declare.tensor import IndexLayer
from symnet.declare.validation import check_name
from symnet.errors import DeclarationError
from symnet.matrix.text import MatrixFormula
from symnet.notation import Row, render_latex_block
from symnet.target_kinds import CLASS_INDEX, SIGN, VECTOR_KINDS

REDUCTIONS = ("mean", "sum")


@dataclass(frozen=True)
class Stage:
    """One layer of a network with some of its inputs bound to the network's matrices."""

    layer: Layer
    bindings: dict = field(default_factory=dict)
    output: sp.MatrixSymbol | None = None


def use(layer, out=None, **bindings) -> Stage:
    """A stage: ``use(affine, W=W1, b=b1)``; ``b=0`` drops an input (no bias); `out`
    names the stage's output (a MatrixSymbol) for display and hand derivations. A tensor
    layer is a stage too (``use(batchnorm, gamma=g1, beta=be1)``, g1 a 1 x H row)."""
    layer = layer if isinstance(layer, IndexLayer) else as_layer(layer)
    by_name = {str(getattr(m, "base", m)): m for m in layer.inputs}
    resolved = {}
    for name, value in bindings.items():
        if name not in by_name:
            raise DeclarationError(layer.name, f"has no input {name!r} to bind (its inputs: "
                                   f"{', '.join(by_name)})")
        resolved[by_name[name]] = value
    return Stage(layer, resolved, out)


@dataclass(frozen=True)
class Composed:
    """What composing the stages gives."""

    #: the whole forward in the network's input and weights
    forward: sp.Basic
    #: (name, expression in earlier names) per named output, for display
    steps: tuple
    #: named output -> its expression in the network's input and weights
    outputs: dict
    #: per stage: layer symbol (matrices and sizes) -> network expression
    bindings: tuple
    #: the weights that are bound to matrices (not dropped), in stage order
    weights: tuple


def _unify(name: str, label: str, pairs) -> dict:
    """Sizes of the layer -> sizes of the network, from (layer matrix, network matrix,
    what the network matrix is) triples; a size bound two ways is reported."""
    sizes, sources = {}, {}
    for template, bound, what in pairs:
        for mine, theirs in zip(template.shape, bound.shape, strict=True):
            known = sizes.get(mine, mine if mine.is_number else None)
            if known is not None and known != theirs:
                raise DeclarationError(name, f"{label}: {what} is {shape_text(bound)}, but the "
                                       f"layer's {template} is {shape_text(template)} and "
                                       f"{mine} is already {known} here "
                                       f"({sources.get(mine, 'fixed by the layer')})")
            if not mine.is_number:
                sizes[mine] = theirs
                sources[mine] = f"from {what}, {shape_text(bound)}"
    return sizes


def _bind_stage(name: str, number: int, stage: Stage, current) -> dict:
    """Layer symbol (matrices and sizes) -> network expression, for one stage."""
    layer = stage.layer
    label = f"stage {number} ({layer.name})"
    free = [m for m in layer.inputs if m not in stage.bindings]
    if len(free) != 1:
        raise DeclarationError(name, f"{label} must leave exactly one input unbound to take "
                               f"the previous output; unbound: "
                               f"{', '.join(map(str, free)) or 'none'}")
    for mine, theirs in stage.bindings.items():
        if not (theirs == 0 or isinstance(theirs, sp.MatrixSymbol)):
            raise DeclarationError(name, f"{label}: {mine} must be bound to a MatrixSymbol "
                                   f"or 0, got {theirs!r}")
    what = "the network input" if number == 1 else f"the output of stage {number - 1}"
    bound = [(free[0], current, what)] + [(m, t, str(t)) for m, t in stage.bindings.items()
                                          if t != 0]
    sizes = _unify(name, label, bound)
    mapping = dict(sizes)
    for mine, theirs in [(free[0], current), *stage.bindings.items()]:
        if theirs == 0:
            theirs = sp.ZeroMatrix(*[sizes.get(d, d) for d in mine.shape])
        mapping[mine] = theirs
    return mapping


def compose(name: str, network_input, stages) -> Composed:
    """Run the stages symbolically: each stage's free input takes the previous output."""
    current, shown = network_input, network_input
    steps, outputs, bindings, weights = [], {}, [], []
    for number, stage in enumerate(stages, 1):
        mapping = _bind_stage(name, number, stage, current)
        layer = stage.layer
        check_shapes(name, layer.forward.xreplace(mapping), f"stage {number} ({layer.name}): ")
        free = next(m for m in layer.inputs if m not in stage.bindings)
        current = without_zeros(layer.forward.xreplace(mapping))
        shown = without_zeros(layer.forward.xreplace({**mapping, free: shown}))
        bindings.append(mapping)
        weights += [w for w in stage.bindings.values() if w != 0 and w not in weights]
        if stage.output is not None:
            if stage.output.shape != current.shape:
                raise DeclarationError(name, f"stage {number} ({layer.name}): its output is "
                                       f"{shape_text(current)} but out={stage.output} is "
                                       f"{shape_text(stage.output)}")
            steps.append((stage.output, shown))
            outputs[stage.output] = current
            shown = stage.output
    if not steps or steps[-1][0] != shown:
        steps.append((None, shown))
    return Composed(current, tuple(steps), outputs, tuple(bindings), tuple(weights))


@dataclass(frozen=True, eq=False)
class Network:
    """A composition of layers; with a loss, the total loss of a batch.

    ``loss`` is a per-sample catalog Loss applied to each row of the output (a vector loss
    needs N x C scores, a scalar-score loss N x 1); ``target`` is the target matrix (a
    one-hot or real target; a class index or a sign needs none); ``reduction`` is "mean"
    ((1/N) sum over the batch) or "sum". ``regularizer`` is a catalog Regularizer applied
    to each matrix in ``regularized``. ``upstream`` names dL/d(output).
    """

    name: str
    input: sp.MatrixSymbol
    stages: tuple
    loss: Loss | None = None
    target: sp.MatrixSymbol | None = None
    reduction: str = "mean"
    regularizer: Regularizer | None = None
    regularized: tuple = ()
    upstream: sp.MatrixSymbol | None = None
    hand: tuple = ()
    doc: str = ""
    composed: Composed | None = None
    #: with a tensor layer among the stages: the stages composed in index notation
    #: (symnet.index.stages), which the page shows as the forward
    tensor: IndexLayer | None = None
    #: with a tensor layer among the stages: each stage as a tensor layer of its own in the
    #: network's entries (each upstream dL/d its output), which is what is derived, checked
    #: (stage by stage, then the chain rule) and generated
    staged: tuple = ()
    kind = "network"

    def __init__(self, name, input, stages, loss=None, target=None, reduction="mean",
                 regularizer=None, regularized=(), upstream=None, hand=(), doc=""):
        check_name(name)
        stages = tuple(s if isinstance(s, Stage) else use(s) for s in stages)
        if not isinstance(input, sp.MatrixSymbol):
            raise DeclarationError(name, f"the input must be a MatrixSymbol, got {input!r}")
        if not stages:
            raise DeclarationError(name, "a network needs at least one stage")
        if any(isinstance(s.layer, IndexLayer) for s in stages):
            self._init_tensor(name, input, stages, (loss, target, reduction),
                              (regularizer, upstream, hand), doc)
            return
        composed = compose(name, input, stages)
        if upstream is None:
            upstream = sp.MatrixSymbol("G", *composed.forward.shape)
        values = dict(name=name, input=input, stages=stages, loss=loss, target=target,
                      reduction=reduction, regularizer=regularizer,
                      regularized=tuple(regularized), upstream=upstream,
                      hand=tuple(hand or ()), doc=doc, composed=composed)
        for attr, value in values.items():
            object.__setattr__(self, attr, value)
        self._validate()

    def _init_tensor(self, name, input, stages, scoring, refused, doc):
        """A network with a tensor-layer stage: its stages in index notation, each a tensor
        layer of its own (`staged`, derived and proved one by one and chained at their
        boundaries) and all of them composed into one (`tensor`); with a loss on its output
        (`scoring`: loss, target, reduction). What this form does not take yet (`refused`:
        a regulariser, an upstream, hand derivations) is refused."""
        from symnet.index.stages import network_stages

        regularizer, upstream, hand = refused
        given = [what for what, value in (("regularizer", regularizer),
                                          ("upstream", upstream),
                                          ("hand derivations", tuple(hand or ()) or None))
                 if value is not None]
        if given:
            raise DeclarationError(name, f"a network with a tensor-layer stage takes no "
                                   f"{given[0]} yet: its VJPs are in G = dL/d(output)")
        tensor, staged = network_stages(name, input, stages)
        loss, target, reduction = scoring
        values = dict(name=name, input=input, stages=stages, loss=loss, target=target,
                      reduction=reduction, regularizer=None, regularized=(),
                      upstream=tensor.upstream, hand=(), doc=doc, composed=None,
                      tensor=replace(tensor, doc=doc), staged=staged)
        for attr, value in values.items():
            object.__setattr__(self, attr, value)
        self._validate_tensor_loss()

    def _validate_tensor_loss(self) -> None:
        """A loss on a network of tensor stages: a per-sample vector loss on the rows of a
        rank-2 output (N x C), its target a matrix of that shape where it takes one."""
        name, loss, output = self.name, self.loss, self.tensor.output
        if not self._has_a_loss():
            return
        shape = " x ".join(str(self.tensor.ranges[i]) for i in output.indices)
        if not loss.is_vector or len(output.indices) != 2:
            raise DeclarationError(name, f"the loss {loss.name} on a network of tensor "
                                   f"stages needs a vector loss over rows of scores, N x C; "
                                   f"the output {output} is {shape}")
        if loss.target_kind not in VECTOR_KINDS:
            if self.target is not None:
                raise DeclarationError(name, f"the loss {loss.name} takes a "
                                       f"{loss.target_kind or 'no'} target, not a matrix")
            return
        sizes = tuple(self.tensor.ranges[i] for i in output.indices)
        if not isinstance(self.target, sp.MatrixSymbol) or self.target.shape != sizes:
            raise DeclarationError(name, f"the loss {loss.name} needs target= a MatrixSymbol "
                                   f"of the output's shape {shape}")

    def _repr_latex_(self) -> str:
        """Jupyter shows a network as its forward, shapes and loss (its derivation, the
        rest)."""
        if self.tensor is not None:     # its stages in index notation (the page: the rest)
            return f"$${sp.latex(self.tensor.output)} = {sp.latex(self.tensor.forward)}$$"
        rows = forward_rows(self) + ([total_loss_row(self)] if self.loss is not None else [])
        return f"$${render_latex_block(rows)}$$"

    @property
    def forward(self):
        return self.tensor.forward if self.tensor is not None else self.composed.forward

    @property
    def weights(self) -> tuple:
        if self.tensor is not None:
            return tuple(entry.base for entry in self.tensor.inputs[1:])
        return self.composed.weights

    @property
    def outputs(self) -> dict:
        return self.tensor.statistics if self.tensor is not None else self.composed.outputs

    def _validate(self) -> None:
        name, shape = self.name, self.forward.shape
        if not isinstance(self.upstream, sp.MatrixSymbol) or self.upstream.shape != shape:
            raise DeclarationError(name, f"upstream must be a MatrixSymbol of the output's "
                                   f"shape {shape[0]} x {shape[1]}, got {self.upstream!r}")
        self._validate_loss()
        if self.regularizer is not None and not isinstance(self.regularizer, Regularizer):
            raise DeclarationError(name, f"regularizer must be a Regularizer, got "
                                   f"{self.regularizer!r}")
        if self.regularized and self.regularizer is None:
            raise DeclarationError(name, "regularized= lists weights but no regularizer= is "
                                   "given")
        for weight in self.regularized:
            if weight not in self.weights:
                raise DeclarationError(name, f"regularized weight {weight} is not a weight "
                                       f"of the network ({', '.join(map(str, self.weights))})")
        for record in self.hand:
            self._validate_hand(record)

    def _has_a_loss(self) -> bool:
        """Whether the network has a loss, after the checks every loss passes (its
        reduction, a target only with a loss, a per-sample Loss)."""
        name, loss = self.name, self.loss
        if self.reduction not in REDUCTIONS:
            raise DeclarationError(name, f"reduction must be one of {', '.join(REDUCTIONS)}, "
                                   f"got {self.reduction!r}")
        if loss is None:
            if self.target is not None:
                raise DeclarationError(name, "a target is given but no loss")
            return False
        if not isinstance(loss, Loss) or isinstance(loss, Regularizer):
            raise DeclarationError(name, f"loss must be a per-sample Loss, got {loss!r}")
        return True

    def _validate_loss(self) -> None:
        name, loss = self.name, self.loss
        if not self._has_a_loss():
            return
        if not loss.is_vector and self.forward.shape[1] != 1:
            raise DeclarationError(name, f"the loss {loss.name} takes one score per sample, "
                                   f"but the output is {shape_text(self.forward)}")
        needs_matrix = loss.target_kind in VECTOR_KINDS
        if needs_matrix and (not isinstance(self.target, sp.MatrixSymbol)
                             or self.target.shape != self.forward.shape):
            raise DeclarationError(name, f"the loss {loss.name} needs target= a MatrixSymbol "
                                   f"of the output's shape {shape_text(self.forward)}")
        if not needs_matrix and self.target is not None:
            raise DeclarationError(name, f"the loss {loss.name} takes a "
                                   f"{loss.target_kind or 'no'} target, not a matrix")

    def allowed_matrices(self) -> set:
        allowed = {self.input, self.upstream, *self.weights, *self.outputs}
        return allowed | ({self.target} if self.target is not None else set())

    def scalars(self) -> set:
        """Scalar symbols a hand derivation may use: the regulariser's parameters."""
        return set(self.regularizer.params) if self.regularizer is not None else set()

    def _validate_hand(self, record) -> None:
        where = f"hand derivation {getattr(record, 'label', '') or type(record).__name__}"
        allowed = self.allowed_matrices()
        if isinstance(record, Identity):
            validate_identity(self.name, where, record, allowed, self.scalars())
            return
        if not isinstance(record, Gradient):
            raise DeclarationError(self.name, f"{where}: a network's hand derivations are "
                                   f"Gradient(expected, wrt=weight or named output) or "
                                   f"Identity records")
        if record.wrt not in set(self.weights) | set(self.outputs):
            raise DeclarationError(self.name, f"{where}: wrt= must be a weight or a named "
                                   f"output of the network, got {record.wrt}")
        validate_matrix_claim(self.name, where, record.expected, allowed, self.scalars())
        if record.expected.shape != record.wrt.shape:
            raise DeclarationError(self.name, f"{where} has the wrong shape: dL/d{record.wrt} "
                                   f"is {shape_text(record.wrt)} but the hand derivation is "
                                   f"{shape_text(record.expected)}")

    def expand_outputs(self, expr):
        """expr with every named output replaced by its expression."""
        return expr.xreplace(self.outputs)


# --- as a page ----------------------------------------------------------------------------


def forward_rows(network: Network) -> list[Row]:
    """A network's forward, step by step, and its shapes."""
    rows = []
    final = "S" if network.loss is not None else "Y"
    for number, (name, expr) in enumerate(network.composed.steps):
        rows.append(Row("forward" if number == 0 else "",
                        MatrixFormula(str(name) if name is not None else final, expr)))
    matrices = [network.input, *network.weights]
    rows.append(Row("shapes", None, f"{shapes_note(matrices)}; output: "
                                    f"{shape_text(network.forward)}"))
    return rows


def total_loss_row(network: Network) -> Row:
    """L = 1/N sum_n softmax_ce(S[n, :], Y[n, :]) + l2(W1) + ..."""
    loss, output = network.loss, network.composed.steps[-1][0]
    output = output if output is not None else "S"
    mean = "1/N sum_n" if network.reduction == "mean" else "sum_n"
    target = {CLASS_INDEX: f", {loss.target}[n]", SIGN: f", {loss.target}[n]"}.get(
        loss.target_kind, f", {network.target}[n, :]" if network.target is not None else "")
    terms = [f"{mean} {loss.name}({output}[n, :]{target})"]
    terms += [f"{network.regularizer.name}({w})" for w in network.regularized]
    return Row("loss", None, "L = " + " + ".join(terms))
