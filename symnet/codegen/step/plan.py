"""A training step derived as one chain of the derivations symnet already has.

Every formula here comes from a declaration's derivation; this module only names the
pieces and puts them in order:

forward   each stage's forward (its layer's declaration), its output named (Z1, H1, S);
loss      the per-sample loss's derived gradient over the rows of the scores, named dS
          (lowered by `lower.py` with the losses' own lowering);
backward  each stage's derived VJPs (`symnet.matrix.derive_layer`), last stage first, the
          upstream handed on by name (dH1, dZ1): backpropagation, as `symnet check`
          proves it equal to matrix calculus on the whole network. The network's input
          gets no gradient: a training step never needs it;
penalty   the regulariser lifted to each weight matrix (`symnet.matrix.network_derive`): its
          value lambda*sum(W1.^2) and its gradient 2*lambda*W1;
update    the optimiser's rules applied to each parameter, its state and its total
          gradient, in order. The one rule the gradient enters, where it enters linearly
          with the rule's own target (SGD's P <- P - lr*G, momentum's V <- mu*V - lr*G), is
          expanded into beta*T + alpha*A*B + rest: one BLAS gemm that scales T and adds the
          product in place. Otherwise (Adam reads G in two rules, once squared) the gradient
          is computed into a buffer of its own, dW1, by the same gemm; the other rules are
          entry by entry (`Elementwise`), written in place by `elementwise.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from symnet.codegen.errors import CodegenError
from symnet.codegen.lower_layer import chosen_vjps
from symnet.declare.layer import without_zeros
from symnet.declare.step import G, Optimizer, P, TrainingStep
from symnet.matrix.network_derive import _penalised_entries, penalty_gradient
from symnet.matrix.vjp import derive_layer, tidy_matrix
from symnet.target_kinds import CLASS_INDEX

#: the regulariser's gradient on a weight (2*lambda*W1): the catalog's steps share their
#: regulariser and most of their weight matrices, so each pair is derived once
shared_penalty_gradient = cache(penalty_gradient)


@dataclass(frozen=True)
class Update:
    """A parameter's new value as beta*P + alpha*(A*B) + rest (product, rest optional)."""

    param: sp.MatrixSymbol
    beta: sp.Expr
    product: tuple | None      # (alpha, A, B)
    rest: sp.Basic | None


#: the argument of a step whose loss takes class indices: y, one per row of X
LABELS = "y"


@dataclass(frozen=True)
class Elementwise:
    """target <- value entry by entry: `value` in the Symbols of arrays of the target's
    shape (the parameter, its state, its gradient buffer, named as in the code) and
    scalars."""

    target: sp.MatrixSymbol
    value: sp.Expr


@dataclass(frozen=True)
class StepPlan:
    step: TrainingStep
    #: (named output, its layer's forward in earlier names), in computing order
    forward: tuple
    #: dL/dS as the loss lowers it, S the scores
    upstream: sp.MatrixSymbol
    #: (named upstream dH1, its VJP in names), last stage first; the input gets none
    backward: tuple
    #: parameter -> its total gradient in names (VJP plus the penalty's gradient)
    gradients: dict
    #: weight -> (the regulariser's sum, g.(W) it sums) for its penalty value
    penalties: dict
    #: the optimiser's rules per parameter, in the network's order: an Update (a gemm) or
    #: an Elementwise each
    updates: tuple
    #: the optimiser's state arrays (velocity_W1, ...), arguments of the step, by kind
    state: tuple = ()
    #: the gradient buffers (dW1, ...) of an optimiser that reads a gradient twice
    gradient_buffers: tuple = ()

    @property
    def network(self):
        return self.step.network

    @property
    def labels(self) -> str | None:
        """The name of the step's argument of class indices (a loss whose target is one
        class per row, svm's), or None."""
        class_index = self.network.loss.target_kind == CLASS_INDEX
        return LABELS if self.network.target is None and class_index else None

    @property
    def counter(self):
        """The optimiser's step count (Adam's t), or None."""
        return self.step.optimizer.counter

    @property
    def scores(self) -> sp.MatrixSymbol:
        return self.forward[-1][0]

    @property
    def params(self) -> tuple:
        return tuple(self.network.weights)


def _stage_mapping(stage, mapping: dict, source) -> tuple[dict, sp.MatrixSymbol]:
    """(layer symbol -> network name, the layer's free input): the free input takes the
    previous stage's named output `source`, not its whole expression."""
    free = next(m for m in stage.layer.inputs if m not in stage.bindings)
    named = {k: v for k, v in mapping.items() if k != free}
    named[free] = source
    return named, free


def _stages(network):
    """(stage, its mapping to network names, its free input, its input's name, its output's
    name) per stage, in order."""
    found, source = [], network.input
    for number, (stage, mapping) in enumerate(zip(network.stages, network.composed.bindings,
                                                  strict=True), 1):
        if stage.output is None:
            raise CodegenError(network.name, f"stage {number} ({stage.layer.name}) has no "
                               f"out= name; a training step names every stage's output")
        named, free = _stage_mapping(stage, mapping, source)
        found.append((stage, named, free, source, stage.output))
        source = stage.output
    return found


def forward_plan(network) -> tuple:
    return tuple((out, without_zeros(stage.layer.forward.xreplace(named)))
                 for stage, named, _, _, out in _stages(network))


def backward_plan(network, upstream) -> tuple[tuple, dict]:
    """((dInput, its VJP) per stage but the first, {parameter: its VJP}), in names."""
    backward, gradients = [], {}
    for stage, named, free, source, out in reversed(_stages(network)):
        derivation = derive_layer(stage.layer)
        vjps = chosen_vjps(derivation)
        replace = {**named, stage.layer.upstream: upstream, derivation.output: out}
        for mine, theirs in stage.bindings.items():
            if theirs != 0:
                gradients[theirs] = vjps[mine].xreplace(replace)
        if source == network.input:
            continue            # no gradient for the data
        upstream = sp.MatrixSymbol(f"d{source.name}", *source.shape)
        backward.append((upstream, vjps[free].xreplace(replace)))
    return tuple(backward), gradients


def folded_rule(optimizer: Optimizer) -> int | None:
    """The index of the one rule the gradient G enters, where it enters linearly together
    with the rule's own target, their coefficients free of every array (that rule is one
    gemm); None otherwise (the gradient goes into a buffer first)."""
    readers = [k for k, (_, value) in enumerate(optimizer.rules) if G in value.free_symbols]
    if len(readers) != 1:
        return None
    target, value = optimizer.rules[readers[0]]
    a, c = sp.diff(value, target), sp.diff(value, G)
    arrays = {P, G, *optimizer.state}
    if arrays & (a.free_symbols | c.free_symbols) \
            or sp.expand(value - a * target - c * G) != 0:
        return None
    return readers[0]


def _is_product(term) -> bool:
    """A matrix product of two matrices: X.T*dZ1, or ones(1, N)*dZ1 (a bias's column sum,
    one gemm with a row of ones)."""
    matrices = [a for a in term.args if getattr(a, "is_Matrix", False)]
    return isinstance(term, sp.MatMul) and len(matrices) == 2


def split_update(param, new) -> Update:
    """new = beta*param + alpha*A*B + rest, the product taken when there is exactly one."""
    beta, products, rest = sp.Integer(0), [], []
    for term in sp.MatAdd.make_args(sp.expand(new).doit()):
        coeff, matrix = term.as_coeff_mmul() if isinstance(term, sp.MatMul) else (1, term)
        matrix = matrix.doit() if isinstance(matrix, sp.MatMul) else matrix
        if matrix == param:
            beta += coeff
        elif isinstance(matrix, sp.MatMul) and _is_product(matrix):
            products.append(term)
        else:
            rest.append(term)
    if len(products) != 1:
        rest, products = rest + products, []
    product = None
    if products:
        coeff, matrix = products[0].as_coeff_mmul()
        scale = sp.Mul(*[a for a in matrix.args if not getattr(a, "is_Matrix", False)])
        A, B = [a for a in matrix.args if getattr(a, "is_Matrix", False)]
        product = (coeff * scale, A, B)
    return Update(param, sp.simplify(beta), product,
                  tidy_matrix(sp.MatAdd(*rest)) if rest else None)


def evaluated(gradient):
    """The gradient with the derivatives inside its entrywise functions taken: l1's
    lambda*sign(x)*Derivative(x, x) is lambda*sign(x)."""
    return gradient.replace(lambda e: isinstance(e, sp.Lambda),
                            lambda e: sp.Lambda(e.variables, e.expr.doit()))


def plan(step: TrainingStep) -> StepPlan:
    network = step.network
    if network.loss is None:
        raise CodegenError(step.name, "a training step needs a network with a loss")
    if network.target is None and network.loss.target_kind != CLASS_INDEX:
        raise CodegenError(step.name, f"a training step is generated for a loss with a target "
                           f"matrix (one-hot or real rows) or class indices; "
                           f"{network.loss.name} takes a {network.loss.target_kind} target")
    forward = forward_plan(network)
    scores = forward[-1][0]
    upstream = sp.MatrixSymbol(f"d{scores.name}", *scores.shape)
    backward, gradients = backward_plan(network, upstream)
    penalties = {}
    for weight in network.regularized:
        penalties[weight] = _penalised_entries(network.regularizer, weight)
        penalty = evaluated(shared_penalty_gradient(network.regularizer, weight))
        gradients[weight] = gradients[weight] + penalty
    state = tuple(_state_matrix(entry, weight) for entry in step.optimizer.state
                  for weight in network.weights)
    folded = folded_rule(step.optimizer)
    buffers = () if folded is not None else \
        tuple(sp.MatrixSymbol(f"d{w.name}", *w.shape) for w in network.weights)
    # the network's weights in stage order: W1, b1, W2, b2, ...
    updates = tuple(u for weight in network.weights
                    for u in _parameter_updates(step.optimizer, weight, gradients[weight],
                                                folded))
    return StepPlan(step, forward, upstream, backward, gradients, penalties, updates, state,
                    buffers)


def _state_matrix(entry: sp.Symbol, weight) -> sp.MatrixSymbol:
    """The array of a state entry for one parameter: velocity_W1."""
    return sp.MatrixSymbol(f"{entry.name}_{weight.name}", *weight.shape)


def _parameter_updates(optimizer: Optimizer, weight, gradient, folded: int | None) -> list:
    """The rules of one parameter in order: the folded one an Update (one gemm), the others
    Elementwise; with none folded, the gradient's Update into its buffer dW first."""
    def matrix(entry):
        return weight if entry == P else _state_matrix(entry, weight)

    found = []
    if folded is None:
        buffer = sp.MatrixSymbol(f"d{weight.name}", *weight.shape)
        found.append(split_update(buffer, gradient))
    names = {P: weight.name, G: f"d{weight.name}"}
    names.update({entry: _state_matrix(entry, weight).name for entry in optimizer.state})
    entries = {k: sp.Symbol(v, real=True) for k, v in names.items()}
    for number, (target, value) in enumerate(optimizer.rules):
        if number == folded:
            a, c = sp.diff(value, target), sp.diff(value, G)
            found.append(split_update(matrix(target), a * matrix(target) + c * gradient))
        else:
            found.append(Elementwise(matrix(target), value.xreplace(entries)))
    return found

