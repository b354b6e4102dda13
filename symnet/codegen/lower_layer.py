"""A layer's derivation -> its module: ``forward(X, W, b) -> (Y, cache)`` and
``backward(dY, cache) -> (dX, dW, db)``, straight-line numpy, the batch first.

Stage 1 is `matrices.py` (matrix expressions as whole arrays: ``@``, ``.T``, broadcast
rows, column sums); stages 2-4 are the ones activations and losses go through (kinks as
comparisons, CSE with readable names, the printer). On the way:

* each argument of an activation that is not a plain matrix is named A, B, ... (as
  `symnet derive` shows them); the forward computes it once and caches it, so the
  backward never recomputes ``X @ W1 + b1``;
* the gradient dL/dA of each named argument is derived by `symnet.matrix.vjp` exactly as the
  VJPs are, found inside the derived VJPs and computed once as ``dA``: the VJPs then read
  ``dX = dA @ W1.T + dB @ W2.T``, ``dW1 = X.T @ dA``. Nothing is derived by hand here: a
  subexpression of the derivation gets a name, nothing more;
* where the activations allow it and the code stays safe, the backward works from the
  forward output Y (sigmoid: ``Y*(1 - Y)``), as the activation modules do.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symnet.codegen.lower import RESERVED, Function, Module, _code, lower
from symnet.codegen.matrices import ArrayForm, activation_arguments, definitions
from symnet.codegen.stable import as_branches, as_masks, is_unsafe
from symnet.codegen.statements import fresh_identifiers
from symnet.matrix.vjp import LayerDerivation, matrix_vjp, reusing_output

# the module, not its functions: show.docstring imports this package (its paragraph),
# so imported first it is still half loaded here
from symnet.show import docstring


@dataclass(frozen=True)
class LayerPlan:
    """What a layer's module computes, as matrix expressions in the names it uses."""

    derivation: LayerDerivation
    #: each named argument A -> its expression (in earlier names), innermost first
    nodes: dict
    #: the forward in the names
    forward: sp.Basic
    #: each local gradient dA the VJPs use -> its expression, the outermost first
    local: dict
    #: each input -> its VJP, in the names
    vjps: dict
    #: the upstream gradient as the code names it (dY)
    upstream: sp.MatrixSymbol

    @property
    def layer(self):
        return self.derivation.declaration

    @property
    def output(self) -> sp.MatrixSymbol:
        return self.derivation.output


def local_gradients(derivation: LayerDerivation, arguments: dict, reuse: bool) -> dict:
    """{dL/dA as it occurs in the derived VJPs (in the names): the MatrixSymbol dA}, for
    each named argument A, the outermost first (an inner one is in terms of the outer)."""
    layer, found = derivation.declaration, {}
    for value, symbol in reversed(list(arguments.items())):
        forward = layer.forward.xreplace({value: symbol})
        gradient = matrix_vjp(forward, symbol, layer.upstream)
        if reuse:
            gradient = reusing_output(gradient).xreplace({forward: derivation.output})
        found[in_names(gradient, arguments, found)] = sp.MatrixSymbol(f"d{symbol.name}",
                                                                      *symbol.shape)
    return found


def in_names(expr, arguments: dict, local: dict):
    """expr with the named arguments, then each local gradient (the outermost first: an
    inner one is written in terms of the outer ones), replaced by their names."""
    expr = expr.xreplace(arguments)
    for gradient, symbol in local.items():
        expr = expr.xreplace({gradient: symbol})
    return expr


def _used(local: dict, vjps: dict) -> dict:
    """{dA: its expression} for the local gradients the VJPs use, directly or through
    another, in computing order: each after those it uses, else in the order of the
    names (dA, dB)."""
    gradients = {symbol: gradient for gradient, symbol in reversed(list(local.items()))}
    ordered = {}

    def visit(symbol):
        if symbol not in ordered:
            for other in [s for s in gradients if s in gradients[symbol].free_symbols]:
                visit(other)
            ordered[symbol] = gradients[symbol]

    needed = set().union(*(v.free_symbols for v in vjps.values()))
    for symbol in [s for s in gradients if s in needed]:
        visit(symbol)
    return ordered


def reuses_output(derivation: LayerDerivation) -> bool:
    """Whether the VJPs in terms of the forward output serve: there are some, and their
    code has nothing that could overflow (softplus' 1 - exp(-Y) would)."""
    layer = derivation.declaration
    forms = [r for r in derivation.reusing.values() if r is not None]
    matrices = [*layer.inputs, layer.upstream, derivation.output]
    lower = ArrayForm(layer.name, {m: sp.Symbol(m.name, real=True) for m in matrices})
    return bool(forms) and not any(is_unsafe(lower.lower(f)[0]) for f in forms)


def chosen_vjps(derivation: LayerDerivation) -> dict:
    """Each input of the layer -> the VJP its code uses: the one in terms of the forward
    output where those serve (`reuses_output`), else the plain one."""
    reuse = reuses_output(derivation)
    return {matrix: (derivation.reusing[matrix] if reuse else None) or vjp
            for matrix, vjp in derivation.vjps.items()}


def plan(derivation: LayerDerivation) -> LayerPlan:
    layer, output = derivation.declaration, derivation.output
    taken = {str(m) for m in (*layer.inputs, layer.upstream, output)}
    arguments = activation_arguments(layer.forward, taken)
    local = local_gradients(derivation, arguments, reuses_output(derivation))
    upstream = sp.MatrixSymbol(f"d{output.name}", *output.shape)
    chosen = chosen_vjps(derivation)
    vjps = {matrix: in_names(chosen[matrix], arguments, local).xreplace(
        {layer.upstream: upstream}) for matrix in layer.inputs}
    used = {s: g.xreplace({layer.upstream: upstream}) for s, g in _used(local, vjps).items()}
    return LayerPlan(derivation, definitions(arguments), layer.forward.xreplace(arguments),
                     used, vjps, upstream)


# --- code ----------------------------------------------------------------------------------


def array_symbols(p: LayerPlan) -> dict:
    """{MatrixSymbol: the Symbol of its array}: the declaration's names where they are free
    Python identifiers."""
    matrices = (*p.layer.inputs, p.output, p.upstream, *p.nodes, *p.local)
    names = fresh_identifiers([m.name for m in matrices], RESERVED,
                              {m.name for m in p.layer.inputs})
    return {m: sp.Symbol(name, real=True) for m, name in zip(matrices, names, strict=True)}


def _statements(p: LayerPlan, symbols: dict) -> tuple[list, list]:
    """(forward, backward): (target, array expression) pairs, the forward's kinks as
    branches, the backward's as masks (a step times the upstream gradient is a product,
    as in the activations' modules)."""
    lower = ArrayForm(p.layer.name, symbols)

    def lowered(matrix, expr, stable=as_branches):
        return symbols[matrix].name, stable(lower(expr, matrix.name))

    forward = [lowered(n, v) for n, v in p.nodes.items()]
    forward.append(lowered(p.output, p.forward))
    backward = [lowered(s, g, as_masks) for s, g in p.local.items()]
    backward += [(f"d{symbols[m].name}", as_masks(lower(v, f"dL/d{m}")))
                 for m, v in p.vjps.items()]
    return forward, backward


def _tuple(names: list) -> str:
    return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"


def lower_layer(derivation: LayerDerivation) -> Module:
    p = plan(derivation)
    symbols = array_symbols(p)
    forward, backward = _statements(p, symbols)
    names = {s.name: s.name for s in symbols.values()}
    dtype_of = symbols[p.layer.inputs[0]].name
    needed = set().union(*(e.free_symbols for _, e in backward))
    cache = [symbols[m].name for m in (*p.layer.inputs, *p.nodes, p.output)
             if symbols[m] in needed]
    cached = _tuple(cache) if cache else "()"
    unpacking = (f"{', '.join(cache) if len(cache) > 1 else cached} = cache",) if cache else ()
    arguments = ", ".join(symbols[m].name for m in p.layer.inputs)
    output, upstream = symbols[p.output].name, symbols[p.upstream].name
    gradients = ", ".join(target for target, _ in backward[len(p.local):])
    functions = {
        "forward": Function(
            "forward", arguments,
            (f"{output} = {p.layer.name}({arguments}), the batch first.",
             f"Returns ({output}, cache); the cache {cached} is what backward needs."),
            _code(forward, names, dtype_of) + (f"cache = {cached}",), f"{output}, cache"),
        "backward": Function(
            "backward", f"{upstream}, cache",
            (f"The gradient of the loss with respect to each input, given {upstream} = "
             f"dL/d{output}.",
             f"Returns {gradients}: the derived VJPs, no Jacobian."),
            unpacking + _code(backward, names, dtype_of), gradients),
    }
    doc = docstring.layer_docstring(derivation, p.forward, p.nodes, p.local, p.vjps, p.upstream)
    return Module(p.layer.name, p.layer.kind, "forward_backward.py.j2", "layers", tuple(doc),
                  functions, cache=tuple(cache))


@lower.register
def _(derivation: LayerDerivation, reduction: str = "mean") -> Module:
    return lower_layer(derivation)   # a layer's VJPs carry no batch reduction of their own
