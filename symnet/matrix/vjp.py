"""Matrix-level derivation in VJP form: for an upstream G = dL/dY, the gradients dL/dX,
dL/dW, dL/db of a layer as matrix expressions (G*W.T, X.T*G, colsum(G)), never a Jacobian.

Every derivative is sympy's: the VJP of Y(X) with respect to X is d/dX trace(G^T Y), which
sympy's matrix calculus returns in matrix form. Where sympy cannot take the whole
expression at once (an entry-by-entry function nested inside another, which sympy 1.14
fails on; a result it leaves as an array of rank above 2; an activation of several
inputs such as maxout), the chain rule cuts the expression at its outermost entry-by-entry
nodes and asks sympy again for each piece. An activation's derivative stays a placeholder
(relu') that stands for the derivative symnet derived from the activation's own
declaration (`symnet.derive`), with its kink convention.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.tensor.array.expressions.array_expressions import _ArrayExpr

from symnet.declare.elementwise import (
    ActivationFunction,
    ActivationPartial,
    Elementwise,
    canonical_lambdas,
    entry_variables,
    function_of,
)
from symnet.declare.layer import (  # noqa: F401  (output_symbol: its old home)
    MATRIX_NODES,
    Layer,
    check_shapes,
    output_symbol,
    without_zeros,
)
from symnet.errors import DeclarationError, DerivationError
from symnet.index.layer_path import index_path
from symnet.index.to_matrix import same_up_to_order
from symnet.matrix.text import applied_function, text
from symnet.notation import ShowsAsLatex
from symnet.symbols import out as OUT
from symnet.timeout import within

SYMPY_SECONDS = 20.0
INDEX_PATH = "index path"
INDEX_PATH_AS_CALCULUS = "index path, equal to sympy's matrix calculus up to the order of factors"
MATRIX_CALCULUS = "sympy's matrix calculus"

#: the matrix nodes a derived backward may hold: all of rank 2, none a Jacobian
PLAIN_MATRIX_NODES = MATRIX_NODES


def non_matrix_nodes(expr) -> list[str]:
    """The nodes of expr that are arrays of rank above 2 or matrices of another kind
    (a diagonal matrix of a whole batch, an array contraction); [] for a plain backward."""
    found = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, _ArrayExpr) or (
                getattr(node, "is_Matrix", False) and not isinstance(node, PLAIN_MATRIX_NODES)):
            found.add(type(node).__name__)
    return sorted(found)


# --- tidying sympy's results ---------------------------------------------------------------


def _as_hadamard(expr: sp.Expr, variable: sp.Symbol, matrix):
    """A polynomial in `variable` (and activations of it) as the same entry-by-entry
    expression in `matrix`: out*(1 - out) -> Y .* (ones - Y), elu'(x)*tanh'(elu(x)) ->
    elu'(U) .* tanh'(elu(U)). None for anything else."""
    if expr == variable:
        return matrix
    if variable not in expr.free_symbols:
        return expr * sp.OneMatrix(*matrix.shape)
    if isinstance(expr, (ActivationFunction, ActivationPartial)) and len(expr.args) == 1:
        inner = _as_hadamard(expr.args[0], variable, matrix)
        (x,) = entry_variables(1)
        return None if inner is None else \
            ElementwiseApplyFunction(sp.Lambda(x, expr.func(x)), inner)
    if expr.is_Add or expr.is_Mul:
        coeff, rest = expr.as_coeff_Add() if expr.is_Add else expr.as_coeff_Mul()
        pieces = [_as_hadamard(a, variable, matrix) for a in sp.Add.make_args(rest)] \
            if expr.is_Add else [_as_hadamard(a, variable, matrix) for a in sp.Mul.make_args(rest)]
        if any(p is None for p in pieces):
            return None
        if expr.is_Add:
            constant = [coeff * sp.OneMatrix(*matrix.shape)] if coeff != 0 else []
            return sp.MatAdd(*constant, *pieces)
        product = pieces[0] if len(pieces) == 1 else sp.HadamardProduct(*pieces)
        return product if coeff == 1 else coeff * product
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 1:
        base = _as_hadamard(expr.base, variable, matrix)
        return None if base is None else sp.HadamardPower(base, expr.exp)
    return None


def _plain_lambdas(expr):
    """(d -> 2*d)(W) -> 2*W: entry-by-entry polynomials as matrix algebra."""

    def plain(node):
        lam = node.function
        if applied_function(lam) is not None:
            return node
        converted = _as_hadamard(lam.expr, lam.variables[0], node.expr)
        return node if converted is None else converted

    return expr.replace(lambda e: isinstance(e, ElementwiseApplyFunction), plain)


def _transpose_count(expr) -> int:
    return sum(isinstance(n, sp.Transpose) for n in sp.preorder_traversal(expr))


def _untransposed(expr):
    """f(W1.T*X.T) -> f(X*W1).T: the entry-by-entry function of the form a person writes."""

    def flip(node):
        flipped = sp.Transpose(node.expr).doit()
        if _transpose_count(flipped) < _transpose_count(node.expr):
            return sp.Transpose(ElementwiseApplyFunction(node.function, flipped))
        return node

    return expr.replace(lambda e: isinstance(e, ElementwiseApplyFunction), flip)


def _ones_factor(factor):
    """c for a factor c*ones(r, c) (or ones itself) of a Hadamard product, else None."""
    if isinstance(factor, sp.OneMatrix):
        return sp.Integer(1)
    if isinstance(factor, sp.MatMul) and isinstance(factor.args[-1], sp.OneMatrix) \
            and not any(getattr(a, "is_Matrix", False) for a in factor.args[:-1]):
        return sp.Mul(*factor.args[:-1])
    return None


def _without_ones(expr):
    """(c*ones) .* A -> c*A."""

    def drop(node):
        scale, rest = sp.Integer(1), []
        for factor in node.args:
            coefficient = _ones_factor(factor)
            if coefficient is None:
                rest.append(factor)
            else:
                scale *= coefficient
        if not rest or len(rest) == len(node.args):
            return node
        kept = rest[0] if len(rest) == 1 else sp.HadamardProduct(*rest)
        return kept if scale == 1 else scale * kept

    return expr.replace(lambda e: isinstance(e, sp.HadamardProduct), drop)


def tidy_matrix(expr):
    return canonical_lambdas(_untransposed(_without_ones(_plain_lambdas(expr))))


# --- VJPs ----------------------------------------------------------------------------------

_fresh_names = itertools.count()


def _fresh(shape, role: str = "U") -> sp.MatrixSymbol:
    """A matrix standing in for a subexpression while sympy differentiates; substituted
    back at once. Its name starts with a space, so it sorts before every user's matrix:
    sympy 1.14's matrix calculus transposes the wrong factor in G .* f'(X*W) when G's
    name sorts after the weight's (`sympy_vjp` also rejects any result whose shapes do
    not fit)."""
    return sp.MatrixSymbol(f" {role}{next(_fresh_names)}", *shape)


def _zero_like(matrix):
    return sp.ZeroMatrix(*matrix.shape)


def sympy_vjp(expr, wrt, upstream):
    """d/d wrt of trace(upstream^T expr) (of expr itself when it is a scalar, with no
    upstream) by sympy's matrix calculus, tidied; None when sympy fails or leaves an
    object that is not a plain matrix."""
    if expr.has(Elementwise):
        return None
    if upstream is None:
        stand_in, differentiated = None, expr
    else:
        # the upstream enters linearly: a plain symbol in its place keeps sympy's work small
        stand_in = _fresh(upstream.shape, "G")
        differentiated = sp.Trace(stand_in.T * expr)
    try:
        # sympy's array calculus raises many kinds of errors on shapes it cannot handle;
        # any of them means "take the chain rule instead", never a traceback
        result = within(SYMPY_SECONDS, lambda: differentiated.diff(wrt), None)
    except Exception:  # noqa: BLE001
        return None
    if result is None or not getattr(result, "is_Matrix", False) or non_matrix_nodes(result) \
            or result.shape != wrt.shape or not shapes_fit(result):
        return None
    if stand_in is not None:
        result = result.xreplace({stand_in: upstream})
    return tidy_matrix(result)


def shapes_fit(expr) -> bool:
    try:
        check_shapes("", expr)
    except DeclarationError:
        return False
    return True


def matrix_vjp(expr, wrt, upstream):
    """dL/d wrt for L with dL/d expr = upstream, as a matrix expression."""
    if wrt not in expr.free_symbols:
        return _zero_like(wrt)
    direct = sympy_vjp(expr, wrt, upstream)
    if direct is not None:
        return direct
    return _vjp_by_cuts(expr, wrt, upstream)


def _is_broadcast(node) -> bool:
    return isinstance(node, sp.MatMul) and isinstance(node.args[0], sp.OneMatrix) \
        and node.args[0].shape[1] == 1


def _cut_nodes(expr, wrt) -> list:
    """The outermost entry-by-entry (or broadcast) nodes of expr that depend on wrt."""
    if wrt not in expr.free_symbols:
        return []
    if isinstance(expr, (ElementwiseApplyFunction, Elementwise)) or _is_broadcast(expr):
        return [expr]
    found = []
    for arg in expr.args:
        for node in _cut_nodes(arg, wrt):
            if node not in found:
                found.append(node)
    return found


def _total(parts, wrt):
    """The sum of the parts, zeros dropped, nested sums flattened."""
    terms = [t for p in parts for t in sp.MatAdd.make_args(without_zeros(p))
             if not isinstance(t, sp.ZeroMatrix)]
    if not terms:
        return _zero_like(wrt)
    return terms[0] if len(terms) == 1 else sp.MatAdd(*terms)


def _vjp_by_cuts(expr, wrt, upstream):
    nodes = _cut_nodes(expr, wrt)
    if nodes == [expr]:
        return _through_node(expr, wrt, upstream)
    if not nodes:
        raise DerivationError("matrix", f"sympy cannot differentiate {text(expr)} with respect "
                              f"to {wrt}")
    fresh = {node: _fresh(node.shape) for node in nodes}
    back = {symbol: node for node, symbol in fresh.items()}
    outer = expr.xreplace(fresh)
    parts = [matrix_vjp(outer, wrt, upstream).xreplace(back)]
    for node, symbol in fresh.items():
        local = matrix_vjp(outer, symbol, upstream).xreplace(back)
        parts.append(matrix_vjp(node, wrt, local))
    return _total(parts, wrt)


def _through_node(node, wrt, upstream):
    """The chain rule through one cut node: its local VJP, then the VJP of its input(s)."""
    if isinstance(node, Elementwise):
        return _through_elementwise(node, wrt, upstream)
    if isinstance(node, ElementwiseApplyFunction):
        return _through_entrywise(node, wrt, upstream)
    inner = sp.MatMul(*node.args[1:])
    symbol = _fresh(inner.shape)
    local = sympy_vjp(node.args[0] * symbol, symbol, upstream)
    if local is None:
        raise DerivationError("matrix", f"sympy cannot differentiate {text(node)}")
    return matrix_vjp(inner, wrt, local.xreplace({symbol: inner}))


def _through_entrywise(node: ElementwiseApplyFunction, wrt, upstream):
    """f(U): sympy's local VJP on stand-ins of a fresh generic shape (sympy 1.14 fails on
    an entry-by-entry function of a vector), then the VJP of U."""
    rows, cols = (sp.Symbol(f" size{next(_fresh_names)}", integer=True, positive=True)
                  for _ in range(2))
    symbol, stand_in = _fresh((rows, cols)), _fresh((rows, cols), "G")
    local = sympy_vjp(ElementwiseApplyFunction(node.function, symbol), symbol, stand_in)
    if local is None:
        raise DerivationError("matrix", f"sympy cannot differentiate {text(node)}")
    local = local.xreplace({symbol: node.expr, stand_in: upstream})
    return matrix_vjp(node.expr, wrt, local)


def _through_elementwise(node: Elementwise, wrt, upstream):
    """An activation of several inputs, entry by entry: sympy has no such matrix node, so
    each input's local gradient is G .* (the activation's partial derivative, which sympy
    takes of the scalar function) at the same entries."""
    variables, body = node.function.variables, node.function.expr
    parts = []
    for variable, matrix in zip(variables, node.matrices, strict=True):
        partial = sp.Lambda(variables, sp.diff(body, variable))
        local = sp.HadamardProduct(upstream, Elementwise(partial, *node.matrices))
        parts.append(matrix_vjp(matrix, wrt, local))
    return _total(parts, wrt)


# --- activations' derivatives -------------------------------------------------------------


def partial_in_output(partial_class):
    """The activation derivative in terms of its output (out*(1 - out)), or None."""
    if len(partial_class.declaration.inputs) != 1:
        return None
    # imported here, since symnet.derive imports this module to register derive_layer
    from symnet.derive.dispatch import derive

    derivation = derive(partial_class.declaration)
    return derivation.in_output[partial_class.variable]


def reusing_output(expr):
    """expr with each activation derivative f'(U) written in the forward output f(U)
    where the activation allows it (sigmoid: f(U) .* (ones - f(U)))."""
    def rewrite(node):
        partial = applied_function(node.function)
        if partial is None or not issubclass(partial, ActivationPartial):
            return node
        in_output = partial_in_output(partial)
        if in_output is None:
            return node
        (x,) = entry_variables(1)
        forward = function_of(partial.declaration)
        output = ElementwiseApplyFunction(sp.Lambda(x, forward(x)), node.expr)
        converted = _as_hadamard(in_output, OUT, output)
        return converted if converted is not None else \
            ElementwiseApplyFunction(sp.Lambda(x, in_output.xreplace({OUT: x})), output)

    return expr.replace(lambda e: isinstance(e, ElementwiseApplyFunction), rewrite)


# --- layers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerDerivation(ShowsAsLatex):
    declaration: Layer
    #: input -> dL/d input, in terms of the inputs and the upstream G
    vjps: dict
    #: input -> the same VJP with activation derivatives in terms of the output Y, or None
    reusing: dict
    #: the name for the layer's forward output in `reusing`
    output: sp.MatrixSymbol
    #: input -> how its VJP was derived: INDEX_PATH, or MATRIX_CALCULUS and why
    paths: dict = field(default_factory=dict)


def named_errors(name: str, compute, *args):
    """compute(*args), with a derivation error naming the declaration it is about."""
    try:
        return compute(*args)
    except DerivationError as exc:
        raise DerivationError(name, exc.problem) from None


def in_matrix_form(layer: Layer, matrix, by_index) -> tuple:
    """(the VJP to show and generate, how it was derived): the index path's VJP, in
    the arrangement sympy's matrix calculus gives where the two are the same product up to
    the order of terms and of Hadamard factors (the cross-check; pages and generated code
    keep that arrangement), else as the index path writes it."""
    try:
        by_calculus = matrix_vjp(layer.forward, matrix, layer.upstream)
    except DerivationError:
        return by_index, INDEX_PATH
    if same_up_to_order(by_index, by_calculus):
        return by_calculus, INDEX_PATH_AS_CALCULUS
    return by_index, INDEX_PATH


@cache
def derive_layer(layer: Layer) -> LayerDerivation:
    """Each input's VJP by the index path (symnet.index.layer_path), the one engine
    layers and tensor layers share; by sympy's matrix calculus where the index path has
    no matrix form for it (`paths` says which, and why)."""
    output = output_symbol(layer)
    by_index = index_path(layer)
    vjps, reusing, paths = {}, {}, {}
    for matrix in layer.inputs:
        if matrix in by_index.vjps:
            vjp, paths[matrix] = in_matrix_form(layer, matrix, tidy_matrix(by_index.vjps[matrix]))
        else:
            vjp = named_errors(layer.name, matrix_vjp, layer.forward, matrix, layer.upstream)
            paths[matrix] = f"{MATRIX_CALCULUS}: {by_index.why_not[matrix]}"
        vjps[matrix] = vjp
        rewritten = reusing_output(vjp)
        reusing[matrix] = None if rewritten == vjp else rewritten.xreplace({layer.forward: output})
    return LayerDerivation(layer, vjps, reusing, output, paths)
