"""Matrix expressions written out on small explicit matrices.

Every size gets a small value (the batch N = 2, the other sizes 3 and 2 in turn) and every
matrix explicit entries that are real symbols (X[0,1], ...), so a matrix expression
becomes a matrix of scalar expressions. `symnet.verify.entrywise` compares two of them. The
ground truth for a gradient is scalar calculus on the same entries: d/dW[i,j] of the
scalar sum(G .* Y), never a matrix rule.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.declare.elementwise import ActivationFunction, ActivationPartial, Elementwise
from symnet.declare.layer import matrix_symbols
from symnet.derive.dispatch import derive
from symnet.errors import DerivationError

BATCH = 2
OTHER_SIZES = (3, 2)
#: the batch of a second look at a hand derivation, where every size takes another value
SECOND_BATCH = 3


# --- explicit matrices ---------------------------------------------------------------------


def size_symbols(*exprs) -> list:
    """The symbolic sizes of the matrices in exprs, the batch N first, then by name."""
    sizes = set()
    for expr in exprs:
        for matrix in matrix_symbols(expr):
            sizes |= {d for d in matrix.shape if isinstance(d, sp.Symbol)}
    return sorted(sizes, key=lambda s: (str(s) != "N", str(s)))


def explicit_sizes(*exprs, second: bool = False) -> dict:
    """N = 2 and the other sizes 3, 2, 3, ... in turn: small, and neighbours differ.
    `second`: N = 3 and the others 2, 3, 2, ...: each size another value, so that a hand
    derivation that wrote a number for a size (2 for N) does not pass."""
    values, batch, shift = {}, (SECOND_BATCH if second else BATCH), int(second)
    for number, symbol in enumerate(size_symbols(*exprs)):
        values[symbol] = batch if str(symbol) == "N" else OTHER_SIZES[(number - 1 + shift) % 2]
    return values


def _taken_by_activations(node) -> list:
    """(matrix, activation input) for each matrix an entry-by-entry activation takes
    directly (relu(X), not relu(X*W)); [] for any other function of entries."""
    applied = node.function.expr
    if not isinstance(applied, ActivationFunction) or applied.args != node.function.variables:
        return []
    matrices = (node.expr,) if isinstance(node, ElementwiseApplyFunction) else node.matrices
    return [(m, variable) for m, variable in zip(matrices, applied.declaration.inputs,
                                                  strict=True)
            if isinstance(m, sp.MatrixSymbol)]


def _sign_kind(variable: sp.Symbol) -> str | None:
    if variable.is_nonnegative:
        return "nonnegative"
    return "nonpositive" if variable.is_nonpositive else None


def entry_domains(*exprs) -> dict:
    """Matrix name -> how probes draw its entries ("nonnegative", "nonpositive"): the
    domain declared for the input of an activation that takes the matrix directly (x
    positive for sqrt); a matrix restricted both ways stays real, as do the others."""
    kinds: dict = {}
    for expr in exprs:
        for node in expr.atoms(ElementwiseApplyFunction, Elementwise):
            for matrix, variable in _taken_by_activations(node):
                if (kind := _sign_kind(variable)) is not None:
                    kinds.setdefault(matrix.name, set()).add(kind)
    return {name: found.pop() for name, found in kinds.items() if len(found) == 1}


def concrete(expr):
    """Activation placeholders -> the declaration's forward and derived derivatives, with
    the declaration's parameters at their defaults."""

    def value(application):
        decl = application.declaration
        if isinstance(application, ActivationPartial):
            formula = derive(decl).derivatives[application.variable]
        else:
            formula = decl.forward
        points = dict(zip(decl.inputs, application.args, strict=True))
        return formula.xreplace({**decl.params, **points})

    return expr.replace(lambda e: isinstance(e, (ActivationFunction, ActivationPartial)), value)


def entry_symbol(matrix: sp.MatrixSymbol, i: int, j: int) -> sp.Symbol:
    return sp.Symbol(f"{matrix.name}[{i},{j}]", real=True)


def _apply(function: sp.Lambda, *entries):
    """A concrete entry-by-entry function at explicit entries, without sympy's evaluation
    of max() (which compares every pair of arguments and is what makes this slow)."""
    with sp.evaluate(False):
        return function.expr.xreplace(dict(zip(function.variables, entries, strict=True)))


class _Explicit:
    """Evaluate a matrix expression bottom-up into an explicit matrix of entry symbols
    (sympy's `as_explicit` builds a Sum for every entry of every product and is slow).
    A size in a scalar (the 1/N of a mean, an exponent, an entry-by-entry function) takes
    its explicit value too: it is the N of the matrices' rows, never a free number. Only
    scalars are substituted: a matrix expression at size 1 x 1 would turn into a scalar."""

    def __init__(self, sizes: dict):
        self.sizes = sizes
        self.memo: dict = {}

    def __call__(self, expr):
        if expr not in self.memo:
            self.memo[expr] = self._evaluate(expr)
        return self.memo[expr]

    def scalar(self, e):
        return e.xreplace(self.sizes)

    def _evaluate(self, e):  # noqa: C901 - one case per kind of matrix node
        if isinstance(e, sp.MatrixSymbol):
            rows, cols = (int(d.xreplace(self.sizes)) for d in e.shape)
            return sp.ImmutableMatrix(rows, cols, lambda i, j: entry_symbol(e, i, j))
        if isinstance(e, (sp.OneMatrix, sp.ZeroMatrix)):
            rows, cols = (int(d.xreplace(self.sizes)) for d in e.shape)
            return (sp.ones if isinstance(e, sp.OneMatrix) else sp.zeros)(rows, cols)
        if isinstance(e, sp.MatMul):
            scalars = [a for a in e.args if not getattr(a, "is_Matrix", False)]
            product = self(next(a for a in e.args if a.is_Matrix))
            for factor in [a for a in e.args if a.is_Matrix][1:]:
                product = product * self(factor)
            return self.scalar(sp.Mul(*scalars)) * product if scalars else product
        if isinstance(e, sp.MatAdd):
            return sum((self(a) for a in e.args[1:]), self(e.args[0]))
        if isinstance(e, sp.Transpose):
            return self(e.arg).T
        if isinstance(e, sp.HadamardProduct):
            result = self(e.args[0])
            for factor in e.args[1:]:
                result = result.multiply_elementwise(self(factor))
            return result
        if isinstance(e, sp.HadamardPower):
            return self(e.base).applyfunc(lambda entry: entry ** self.scalar(e.exp))
        if isinstance(e, ElementwiseApplyFunction):
            function = self.scalar(e.function)
            return self(e.expr).applyfunc(lambda entry: _apply(function, entry))
        if isinstance(e, Elementwise):
            matrices, function = [self(m) for m in e.matrices], self.scalar(e.function)
            return sp.ImmutableMatrix(*matrices[0].shape, lambda i, j: _apply(
                function, *[m[i, j] for m in matrices]))
        raise DerivationError("matrix", f"cannot write {e} out entry by entry")


@lru_cache(maxsize=8)
def _explicit_at(sizes: tuple) -> _Explicit:
    """One evaluator per set of sizes: the claims of one declaration share their
    subexpressions (the forward, the hidden layers), written out once."""
    return _Explicit(dict(sizes))


def instantiate(expr, sizes: dict):
    """expr at explicit sizes, with symbols for entries: a Matrix, or a scalar (a
    trace of matrices)."""
    expr = concrete(expr)
    explicit = _explicit_at(tuple(sorted(sizes.items(), key=str)))
    if getattr(expr, "is_Matrix", False):
        return sp.ImmutableMatrix(explicit(expr))
    traced = expr.replace(lambda e: isinstance(e, sp.Trace), lambda e: explicit(e.arg).trace())
    return explicit.scalar(traced)


def free_symbols(e, known: dict) -> frozenset:
    """e.free_symbols, each subexpression walked once over all the calls that share
    `known`: sympy walks the whole tree at every call, and the entries of an explicit
    matrix (and the nodes the chain rule visits) share most of theirs. A function of a
    Lambda is asked as a whole, since the Lambda binds its own variables."""
    found = known.get(e)
    if found is None:
        if e.is_Add or e.is_Mul or e.is_Pow or (e.is_Function and not e.has(sp.Lambda)):
            found = frozenset().union(*(free_symbols(a, known) for a in e.args))
        else:
            found = frozenset(e.free_symbols)
        known[e] = found
    return found


class _ChainRule:
    """d total / d entry by the chain rule over the total's expression graph: each node's
    local partial derivatives are sympy's (the node rebuilt on stand-in symbols and
    differentiated by `sp.diff`), taken once and shared by every entry. `sp.diff` on the
    whole total gives the same derivatives, but asks whether every intermediate result
    is zero and rewalks it, once per entry: seconds for a network of sigmoids."""

    def __init__(self):
        self.partials: dict = {}
        self.free: dict = {}

    def _local(self, node):
        """node's partial derivative by each argument (max and min included), or None where
        sympy must take the node as a whole (a Piecewise: its arguments are not
        expressions)."""
        args = node.args
        if node.is_Add:
            return (sp.Integer(1),) * len(args)
        if node.is_Mul:
            return tuple(sp.Mul(*args[:n], *args[n + 1:]) for n in range(len(args)))
        if not (node.is_Pow or node.is_Function) or not all(isinstance(a, sp.Expr) for a in args):
            return None
        stand_ins = [a if a.is_number else sp.Dummy(real=True) for a in args]
        general = node.func(*stand_ins)
        back = {d: a for d, a in zip(stand_ins, args, strict=True) if not a.is_number}
        return tuple(sp.Integer(0) if a.is_number else sp.diff(general, d).xreplace(back)
                     for d, a in zip(stand_ins, args, strict=True))

    def __call__(self, expr, entry, memo: dict):
        if entry not in free_symbols(expr, self.free):
            return sp.Integer(0)
        if expr == entry:
            return sp.Integer(1)
        if expr not in memo:
            if expr not in self.partials:
                self.partials[expr] = self._local(expr)
            partials = self.partials[expr]
            if partials is None:
                memo[expr] = sp.diff(expr, entry)
            else:
                memo[expr] = sp.Add(*[partial * self(arg, entry, memo)
                                      for partial, arg in zip(partials, expr.args, strict=True)
                                      if entry in free_symbols(arg, self.free)])
        return memo[expr]


def scalar_gradient(name: str, total: sp.Expr, matrix: sp.ImmutableMatrix):
    """d total / d entry for each entry of an explicit matrix, by scalar calculus with
    sympy's derivatives as they are (max(0, u)' = Heaviside(u)): a ground truth
    independent of symnet's own rewrites and matrix rules, compared away from kinks."""
    chain_rule = _ChainRule()

    def derivative(entry):
        value = chain_rule(total, entry, {})
        if value.has(sp.Derivative, sp.DiracDelta):
            raise DerivationError(name, f"sympy cannot differentiate the explicit total "
                                  f"with respect to {entry}")
        return value

    return matrix.applyfunc(derivative)
