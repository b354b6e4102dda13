"""Networks -> dL/dW for every weight, two ways, both in matrix form.

* By matrix calculus on the whole network: d/dW trace(G^T f(X)), sympy's (with the chain
  rule at entry-by-entry nodes where sympy cannot take the expression at once).
* By the chain of the layers' VJPs: each stage's own derived VJPs (`derive_layer`), with
  the upstream handed from stage to stage, last to first: backpropagation.

`symnet.verify.matrix` proves the two equal. With a loss, G is dL/dS for the scores S, whose
row n is the per-sample loss's derived gradient at s = S[n, :] (times 1/N for a mean);
a regulariser adds its own derivative, taken by sympy from the catalog's declaration
lifted to a matrix: lambda * sum_k W_k^2 over a vector becomes lambda * the sum of the
entries of W .^ 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.declare.elementwise import Elementwise, entry_variables
from symnet.declare.layer import without_zeros
from symnet.declare.network import Network
from symnet.declare.scalar import Regularizer
from symnet.errors import DeclarationError
from symnet.matrix.vjp import derive_layer, matrix_vjp, named_errors, sympy_vjp, tidy_matrix
from symnet.notation import ShowsAsLatex

WHOLE = "sympy's matrix calculus on the whole network"
CUT = ("the chain rule at the entry-by-entry functions (sympy 1.14 cannot differentiate "
       "nested ones at once), each piece by sympy")


@dataclass(frozen=True)
class NetworkDerivation(ShowsAsLatex):
    declaration: Network
    #: weight -> dL/dW by matrix calculus on the whole network, plus the penalty's gradient
    gradients: dict
    #: weight -> dL/dW by the chain of the layers' VJPs, plus the penalty's gradient
    chain: dict
    #: weight -> how `gradients` was derived
    routes: dict
    #: named output -> dL/d(output) by matrix calculus on the rest of the network
    intermediates: dict
    #: weight -> the regulariser's gradient (e.g. 2*lambda*W1)
    penalties: dict
    #: the per-sample loss's gradient dL_i/ds[k] (level 2), or None without a loss
    loss_gradient: sp.Expr | None
    #: 1/N for a mean over the batch, 1 for a sum
    scale: sp.Expr
    #: (W, b) when the network has no activation: output = X*W + ones(N, 1)*b (L09)
    linear: tuple | None


# --- regularisers as matrix penalties --------------------------------------------------------


def _entry_sum(reg: Regularizer):
    sums = [s for s in reg.forward.atoms(sp.Sum) if len(s.limits) == 1
            and s.limits[0][1:] == (0, reg.size - 1)]
    if len(sums) != 1:
        raise DeclarationError(reg.name, "only a regulariser of the form "
                               "c * Sum(g(W[k]), (k, 0, K - 1)) lifts to a weight matrix")
    return sums[0]


def _penalised_entries(reg: Regularizer, weight: sp.MatrixSymbol):
    """(the regulariser's sum, g.(W)): the function it sums, applied to every entry."""
    total = _entry_sum(reg)
    index = total.limits[0][0]
    (x,) = entry_variables(1)
    body = total.function.xreplace({reg.scores[index]: x})
    if body.atoms(sp.Indexed) or index in body.free_symbols:
        raise DeclarationError(reg.name, "only a regulariser that sums one function of each "
                               "weight lifts to a weight matrix")
    return total, ElementwiseApplyFunction(sp.Lambda(x, body), weight)


def lifted_penalty(reg: Regularizer, weight: sp.MatrixSymbol):
    """The regulariser applied to every entry of a weight matrix, as a scalar expression."""
    total, entries = _penalised_entries(reg, weight)
    summed = sp.Trace(sp.OneMatrix(weight.shape[1], weight.shape[0]) * entries)
    return reg.forward.xreplace({total: summed})


def penalty_gradient(reg: Regularizer, weight: sp.MatrixSymbol):
    """d/dW of the lifted penalty c(sum of g(W_ij)): the entry-by-entry VJP of g.(W) with
    the upstream dc/dsum * ones (sympy 1.14 cannot take the trace form by a vector)."""
    total, entries = _penalised_entries(reg, weight)
    summed = sp.Dummy("summed")
    outer = sp.diff(reg.forward.xreplace({total: summed}), summed)
    if summed in outer.free_symbols:
        raise DeclarationError(reg.name, "only a regulariser linear in its sum over the "
                               "weights lifts to a weight matrix")
    gradient = matrix_vjp(entries, weight, outer * sp.OneMatrix(*weight.shape))
    return tidy_matrix(gradient.doit())  # lambda*(2*W) -> 2*lambda*W


# --- the two routes ----------------------------------------------------------------------------


def whole_network(network: Network, weight):
    """(dL/dW by matrix calculus on the whole forward, the route taken)."""
    direct = sympy_vjp(network.forward, weight, network.upstream)
    if direct is not None:
        return direct, WHOLE
    return matrix_vjp(network.forward, weight, network.upstream), CUT


def layer_chain(network: Network) -> dict:
    """weight -> dL/dW by backpropagation through the stages' own derived VJPs."""
    upstream, gradients = network.upstream, {}
    stages = list(zip(network.stages, network.composed.bindings, strict=True))
    for stage, mapping in reversed(stages):
        layer_vjps = derive_layer(stage.layer).vjps
        replace = {**mapping, stage.layer.upstream: upstream}
        for mine, theirs in stage.bindings.items():
            if theirs != 0:
                part = layer_vjps[mine].xreplace(replace)
                gradients[theirs] = part + gradients[theirs] if theirs in gradients else part
        free = next(m for m in stage.layer.inputs if m not in stage.bindings)
        upstream = layer_vjps[free].xreplace(replace)
    return {w: tidy_matrix(without_zeros(g)) for w, g in gradients.items()}


def intermediate_gradients(network: Network) -> dict:
    """dL/dH for each named output H: matrix calculus on what follows H."""
    found = {}
    for name, value in network.outputs.items():
        rest = network.forward.xreplace({value: name})
        found[name] = matrix_vjp(rest, name, network.upstream).xreplace(network.outputs)
    return found


def linear_map(network: Network):
    """(W, b) with forward = X*W + ones(N, 1)*b when no activation is applied, else None."""
    if network.forward.has(ElementwiseApplyFunction, Elementwise):
        return None
    weights, biases = [], []
    for term in sp.MatAdd.make_args(network.forward.expand().doit()):
        factors = term.args if isinstance(term, sp.MatMul) else (term,)
        if factors[0] == network.input:
            weights.append(sp.MatMul(*factors[1:]).doit())
        elif isinstance(factors[0], sp.OneMatrix):
            biases.append(sp.MatMul(*factors[1:]).doit())
        else:
            return None
    if not weights:
        return None
    bias = sp.MatAdd(*biases).doit() if biases else None
    return sp.MatAdd(*weights).doit(), bias


@cache
def derive_network(network: Network) -> NetworkDerivation:
    # the loss's own derivation, by the stage's entry: imported here, since symnet.derive
    # imports this module to register derive_network
    from symnet.derive.dispatch import derive

    if network.staged:   # a tensor-layer stage: each stage in index notation, chained
        from symnet.index.chain import derive_staged

        return derive_staged(network)
    penalties = {}
    if network.regularizer is not None:
        penalties = {w: penalty_gradient(network.regularizer, w) for w in network.regularized}
    gradients, routes = {}, {}
    chain = named_errors(network.name, layer_chain, network)
    for weight in network.weights:
        gradients[weight], routes[weight] = named_errors(network.name, whole_network, network,
                                                         weight)
        if weight in penalties:
            gradients[weight] = tidy_matrix(gradients[weight] + penalties[weight])
            chain[weight] = tidy_matrix(chain[weight] + penalties[weight])
    loss_gradient = derive(network.loss).gradient if network.loss is not None else None
    N = network.input.shape[0]
    scale = 1 / N if network.loss is not None and network.reduction == "mean" else sp.Integer(1)
    return NetworkDerivation(network, gradients, chain, routes,
                             intermediate_gradients(network), penalties, loss_gradient,
                             scale, linear_map(network))
