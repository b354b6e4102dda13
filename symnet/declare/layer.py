"""Layers at matrix level (the third level of declaration): batch-first sympy matrix expressions.

A layer is a `MatrixSymbol` expression, batch first: the affine layer is
``Y = X*W + broadcast(b, N)`` with X of shape N x D, W of shape D x M and a bias row b of
shape 1 x M repeated over the batch. Any activation of the catalog applies entry by
entry with `elementwise` (``elementwise(relu, X)``); symnet then derives the layer's
vector-Jacobian products (VJPs): for an upstream gradient G = dL/dY, the matrices dL/dX,
dL/dW, dL/db, never a Jacobian.

Shapes are symbolic (positive integer symbols N, D, M) and checked here, at declaration:
sympy accepts ``X*W`` even when the inner sizes are two different symbols, so symnet walks
the expression itself and names both shapes when they do not fit.

Example (a user's own file; `symnet check mine.py` proves the hand derivation)::

    import sympy as sp
    from symnet import Gradient
    from symnet.catalog.activations import tanh
    from symnet.declare.layer import Layer, broadcast, elementwise, size

    N, D, M = size("N"), size("D"), size("M")
    X, W = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M)
    b, G = sp.MatrixSymbol("b", 1, M), sp.MatrixSymbol("G", N, M)
    Y = elementwise(tanh, X * W + broadcast(b, N))
    dense_tanh = Layer("dense_tanh", Y, inputs=(X, W, b), upstream=G, hand=[
        Gradient(X.T * sp.HadamardProduct(G, sp.OneMatrix(N, M) - sp.HadamardPower(Y, 2)),
                 wrt=W, label="dL/dW = X^T (G .* (1 - Y^2))")])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from symnet.declare.elementwise import Elementwise, elementwise
from symnet.declare.scalar import Activation, Gradient, Identity, Jacobian
from symnet.declare.validation import check_name, size
from symnet.errors import DeclarationError
from symnet.matrix.text import MatrixFormula, text
from symnet.notation import Row, render_latex_block

# --- sizes, broadcasts, the nodes a layer may use ------------------------------------------


def broadcast(row: MatrixExpr, batch) -> MatrixExpr:
    """A row vector (1 x M) repeated over a batch of `batch` rows: ones(N, 1) * row."""
    return sp.OneMatrix(batch, 1) * row


#: the matrix nodes symnet derives and writes out: none of rank above 2, none a Jacobian
MATRIX_NODES = (
    sp.MatrixSymbol, sp.MatMul, sp.MatAdd, sp.HadamardProduct, sp.HadamardPower,
    sp.Transpose, sp.OneMatrix, sp.ZeroMatrix, ElementwiseApplyFunction, Elementwise,
)


def _check_nodes(name: str, expr) -> None:
    for node in sp.preorder_traversal(expr):
        if getattr(node, "is_Matrix", False) and not isinstance(node, MATRIX_NODES):
            raise DeclarationError(name, f"the forward uses {type(node).__name__} ({text(node)});"
                                   f" a layer is built from matrix products, sums, transposes, "
                                   f"Hadamard products, broadcasts and activations applied "
                                   f"entry by entry")


def without_zeros(expr):
    """A product with a zero matrix is zero, a zero term leaves a sum (a bias bound to 0),
    nested products are flattened. sympy's doit() would do it too, but it also merges
    f(g(X)) into one lambda."""

    def simpler(node):
        if isinstance(node, (sp.MatMul, sp.HadamardProduct)) \
                and any(isinstance(a, sp.ZeroMatrix) for a in node.args):
            return sp.ZeroMatrix(*node.shape)
        terms = [a for a in node.args if not isinstance(a, sp.ZeroMatrix)]
        if isinstance(node, sp.MatAdd) and len(terms) < len(node.args):
            return sp.MatAdd(*terms) if len(terms) > 1 else \
                (terms[0] if terms else sp.ZeroMatrix(*node.shape))
        return node

    return flat_products(expr.replace(
        lambda e: isinstance(e, (sp.MatMul, sp.MatAdd, sp.HadamardProduct)), simpler))


def flat_products(expr):
    """(X*W1)*W2 -> X*W1*W2, as a person writes it after substituting X*W1 for X."""

    def flat(node):
        factors = [f for arg in node.args
                   for f in (arg.args if isinstance(arg, sp.MatMul) else (arg,))]
        return sp.MatMul(*factors) if len(factors) > len(node.args) else node

    return expr.replace(lambda e: isinstance(e, sp.MatMul), flat)


# --- shapes --------------------------------------------------------------------------------


def shape_text(matrix) -> str:
    rows, cols = matrix.shape
    return f"{rows} x {cols}"


def shapes_note(matrices) -> str:
    """X: N x D, W: D x M, ... (a page's note on shapes)."""
    return ", ".join(f"{m}: {shape_text(m)}" for m in matrices)


def _names(things) -> str:
    return ", ".join(str(t) for t in things)


def _shape_problem(node) -> str | None:
    """Why the sizes of one node's operands do not fit, or None."""
    if isinstance(node, sp.MatMul):
        matrices = [a for a in node.args if getattr(a, "is_Matrix", False)]
        for left, right in zip(matrices, matrices[1:], strict=False):
            if left.shape[1] != right.shape[0]:
                return (f"{text(left)}*{text(right)}: the inner sizes differ, "
                        f"{text(left)} is {shape_text(left)} but {text(right)} is "
                        f"{shape_text(right)}")
    elif isinstance(node, (sp.MatAdd, sp.HadamardProduct, Elementwise)):
        operands = node.matrices if isinstance(node, Elementwise) else node.args
        first = operands[0]
        for other in operands[1:]:
            if other.shape != first.shape:
                return (f"{text(node)}: the shapes differ, {text(first)} is "
                        f"{shape_text(first)} but {text(other)} is {shape_text(other)}")
    elif isinstance(node, sp.Trace) and node.arg.shape[0] != node.arg.shape[1]:
        return f"{text(node)}: the trace of a {shape_text(node.arg)} matrix"
    return None


def check_shapes(name: str, expr, where: str = "") -> None:
    """Raise a DeclarationError naming both shapes at the innermost node that does not fit."""
    for arg in expr.args:
        if isinstance(arg, sp.Basic):
            check_shapes(name, arg, where)
    problem = _shape_problem(expr)
    if problem:
        raise DeclarationError(name, f"{where}the shapes do not fit in {problem}")


def _check_sizes(name: str, matrix) -> None:
    for dim in matrix.shape:
        ok = dim.is_Integer and dim > 0 if dim.is_number else \
            all(s.is_integer and s.is_positive for s in dim.free_symbols)
        if not ok:
            raise DeclarationError(name, f"{matrix} has the size {dim}; sizes are positive "
                                   f"integers or symbols such as symnet.declare.layer.size('N')")


def matrix_symbols(expr) -> set:
    return {s for s in expr.free_symbols if isinstance(s, sp.MatrixSymbol)}


def scalar_symbols(expr) -> set:
    """Free scalar symbols outside matrices (a matrix's sizes do not count)."""
    sizes = set().union(*(set(m.shape) for m in matrix_symbols(expr)), set())
    sizes = {s for d in sizes for s in sp.sympify(d).free_symbols}
    return {s for s in expr.free_symbols
            if isinstance(s, sp.Symbol) and not isinstance(s, sp.MatrixSymbol)} - sizes


# --- declarations --------------------------------------------------------------------------


def _matrix_expr(name: str, what: str, value) -> MatrixExpr:
    if not isinstance(value, MatrixExpr):
        raise DeclarationError(name, f"{what} must be a sympy matrix expression (built from "
                               f"MatrixSymbols), got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class Layer:
    """A layer: a batch-first matrix expression in its input matrices.

    ``Layer("affine", X*W + broadcast(b, N), inputs=(X, W, b), upstream=G, hand=[...])``

    `inputs` are the matrices symnet differentiates with respect to; in a network, the
    first input that a stage leaves unbound takes the previous stage's output. `upstream`
    is the gradient G = dL/dY arriving from above (a MatrixSymbol of the forward's
    shape; one named G is made when it is not given). Hand derivations are
    ``Gradient(expected, wrt=W)`` records whose `expected` may use G and the inputs.
    """

    name: str
    forward: MatrixExpr
    inputs: tuple
    upstream: sp.MatrixSymbol
    hand: tuple = ()
    doc: str = ""
    activation: Activation | None = None
    kind = "layer"

    def __init__(self, name, forward, inputs, upstream=None, hand=(), doc="", activation=None):
        name = check_name(name)
        forward = _matrix_expr(name, "the forward", forward)
        inputs = (inputs,) if isinstance(inputs, sp.Basic) else tuple(inputs)
        if upstream is None:
            upstream = sp.MatrixSymbol("G", *forward.shape)
        set_ = object.__setattr__
        for attr, value in (("name", name), ("forward", forward), ("inputs", inputs),
                            ("upstream", upstream), ("hand", tuple(hand or ())),
                            ("doc", doc), ("activation", activation)):
            set_(self, attr, value)
        self._validate()

    def _validate(self) -> None:
        name = self.name
        if not self.inputs:
            raise DeclarationError(name, "a layer needs at least one input matrix")
        for matrix in self.inputs:
            if not isinstance(matrix, sp.MatrixSymbol):
                raise DeclarationError(name, f"input {matrix!r} must be a sympy MatrixSymbol")
            _check_sizes(name, matrix)
        _check_nodes(name, self.forward)
        check_shapes(name, self.forward)
        used = matrix_symbols(self.forward)
        if extra := used - set(self.inputs):
            raise DeclarationError(name, f"undeclared matrix(es) {_names(sorted(extra, key=str))}"
                                   f" in the forward; list them in inputs=")
        if unused := [m for m in self.inputs if m not in used]:
            raise DeclarationError(name, f"input(s) {_names(unused)} do not appear in the "
                                   f"forward")
        if stray := scalar_symbols(self.forward):
            raise DeclarationError(name, f"undeclared symbol(s) {_names(sorted(stray, key=str))}"
                                   f" in the forward")
        self._validate_upstream()
        for record in self.hand:
            self._validate_hand(record)

    def _validate_upstream(self) -> None:
        G = self.upstream
        if not isinstance(G, sp.MatrixSymbol):
            raise DeclarationError(self.name, f"upstream must be a MatrixSymbol, got {G!r}")
        if G.shape != self.forward.shape:
            raise DeclarationError(self.name, f"the upstream gradient {G} is {shape_text(G)} "
                                   f"but the output is {shape_text(self.forward)}")
        if G in self.inputs:
            raise DeclarationError(self.name, f"the upstream gradient {G} is also an input")

    def _validate_hand(self, record) -> None:
        where = f"hand derivation {getattr(record, 'label', '') or type(record).__name__}"
        if isinstance(record, Jacobian) or not isinstance(record, (Gradient, Identity)):
            raise DeclarationError(self.name, f"{where}: a layer's hand derivations are "
                                   f"Gradient(expected, wrt=matrix) or Identity records; "
                                   f"a layer never forms a Jacobian")
        allowed = set(self.inputs) | {self.upstream}
        if isinstance(record, Identity):
            validate_identity(self.name, where, record, allowed)
            return
        wrt = self.wrt_of(record)
        expected = record.expected
        validate_matrix_claim(self.name, where, expected, allowed)
        if expected.shape != wrt.shape:
            raise DeclarationError(self.name, f"{where} has the wrong shape: dL/d{wrt} is "
                                   f"{shape_text(wrt)} but the hand derivation is "
                                   f"{shape_text(expected)}")

    def _repr_latex_(self) -> str:
        """Jupyter shows a layer as its forward and its shapes (its derivation, the rest)."""
        return f"$${render_latex_block(forward_rows(self))}$$"

    def wrt_of(self, record: Gradient) -> sp.MatrixSymbol:
        if record.wrt is None:
            if len(self.inputs) > 1:
                raise DeclarationError(self.name, f"hand derivation {record.label!r}: this "
                                       f"layer has inputs {_names(self.inputs)}; say which "
                                       f"with wrt=")
            return self.inputs[0]
        if record.wrt not in self.inputs:
            raise DeclarationError(self.name, f"hand derivation {record.label!r}: "
                                   f"wrt={record.wrt} is not an input of the layer")
        return record.wrt


def output_symbol(layer: Layer) -> sp.MatrixSymbol:
    taken = {str(m) for m in layer.inputs} | {str(layer.upstream)}
    name = next(n for n in ("Y", "Z", "Out") if n not in taken)
    return sp.MatrixSymbol(name, *layer.forward.shape)


def forward_rows(layer: Layer) -> list[Row]:
    """A layer's declaration as a page's rows: its forward and its shapes."""
    output = output_symbol(layer)
    return [Row("forward", MatrixFormula(str(output), layer.forward)),
            Row("shapes", None, f"{shapes_note(layer.inputs)}; {output}: "
                                f"{shape_text(output)}")]


def validate_matrix_claim(name: str, where: str, expr, allowed: set, scalars=()) -> None:
    """A hand-derived matrix: its shapes fit and it uses only the `allowed` matrices."""
    expr = _matrix_expr(name, where, expr)
    check_shapes(name, expr, f"{where}: ")
    if extra := matrix_symbols(expr) - allowed:
        raise DeclarationError(name, f"{where}: undeclared matrix(es) "
                               f"{_names(sorted(extra, key=str))}")
    # the sizes of the declaration's matrices are declared, even where no matrix of this
    # claim has them as a shape (ones(N, 1)*G/N of a layer whose G is 1 x M)
    sizes = {s for m in allowed for d in m.shape for s in sp.sympify(d).free_symbols}
    if stray := scalar_symbols(expr) - set(scalars) - sizes:
        raise DeclarationError(name, f"{where}: undeclared symbol(s) "
                               f"{_names(sorted(stray, key=str))}")


def validate_identity(name: str, where: str, record: Identity, allowed: set,
                      scalars=()) -> None:
    lhs, rhs = record.lhs, record.rhs
    for side in (lhs, rhs):
        validate_matrix_claim(name, where, side, allowed, scalars)
    if lhs.shape != rhs.shape:
        raise DeclarationError(name, f"{where}: the two sides differ in shape, "
                               f"{shape_text(lhs)} and {shape_text(rhs)}")


@cache
def activation_layer(decl: Activation) -> Layer:
    """An activation of the catalog as a layer: applied entry by entry to N x M matrices
    (one matrix per input of the activation: X, or A and B for maxout)."""
    N, M = size("N"), size("M")
    names = ["X"] if len(decl.inputs) == 1 else [str(v).upper() for v in decl.inputs]
    inputs = tuple(sp.MatrixSymbol(n, N, M) for n in names)
    return Layer(decl.name, elementwise(decl, *inputs), inputs=inputs,
                 upstream=sp.MatrixSymbol("G", N, M), activation=decl,
                 doc=f"{decl.name} applied entry by entry to N x M matrices.")


def as_layer(thing) -> Layer:
    """A Layer as it is; an Activation as its entry-by-entry layer."""
    if isinstance(thing, Layer):
        return thing
    if isinstance(thing, Activation):
        return activation_layer(thing)
    raise DeclarationError(str(getattr(thing, "name", thing)),
                           "a network stage must be a Layer or an Activation")
