"""Tensor layers declared entry by entry over named indices.

A layer says what one entry of its output is, ``Y[n, d] = ...``, over indices with
symbolic ranges (n in 0..N-1); its inputs and parameters have any rank (X[n, d],
gamma[d], W[k, d, e]); quantities it uses more than once are named once as statistics
(``mu[d] = Sum(X[n, d], (n, 0, N - 1)) / N``), so that the derivation, the page and the
generated code share the name. Example (the catalog's batch norm)::

    N, D = size("N"), size("D")
    n, d = index("n"), index("d")
    X, Y, gamma, beta, mu, var = tensors("X Y gamma beta mu var")
    layer = IndexLayer(
        "my_norm", Y[n, d], gamma[d] * (X[n, d] - mu[d]) / sp.sqrt(var[d] + eps) + beta[d],
        inputs=(X[n, d], gamma[d], beta[d]), ranges={n: N, d: D},
        statistics={mu[d]: over(X[n, d], n, N) / N,
                    var[d]: over((X[n, d] - mu[d]) ** 2, n, N) / N},
        params={eps: 1e-5})

An input the layer does not differentiate (data, such as a dropout mask) is declared in
``constants=(M[n, d],)``: forward takes it after the inputs, backward returns no VJP for it.
A statistic may be a max over an index, ``shift[n] = max_over(X[n, k], k, C)``, only where
the output is declared invariant to it (``invariant=(shift,)``, softmax's shift): a max has
no derivative where entries tie, and the derivation proves dY/dshift = 0, then holds it
constant.

Everything is checked here, at declaration, and a mistake is one line naming the layer:
an index free on one side and summed on the other, two uses of an index (or of one axis
of a tensor) with different sizes, a tensor used without a declared rank.

This module imports nothing of symnet's upper levels: `symnet.derive` dispatches to
`symnet.index.derive`, which builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy.concrete.expr_with_limits import ExprWithLimits

from symnet.declare.validation import check_name, size  # noqa: F401  (size: for declarations)
from symnet.errors import DeclarationError
from symnet.notation import Row, render_latex_block

KIND = "tensor layer"


class IndexDeclarationError(DeclarationError):
    """A tensor layer's declaration does not hold together (indices, sizes, ranks)."""


def index(name: str) -> sp.Symbol:
    """An index (n, d): an integer whose range the layer's `ranges` gives."""
    return sp.Symbol(name, integer=True)


def indices(names: str) -> tuple:
    return tuple(index(n) for n in names.split())


def tensors(names: str) -> tuple:
    """IndexedBase objects whose entries are real numbers."""
    return tuple(sp.IndexedBase(n, real=True) for n in names.split())


def over(body: sp.Expr, variable: sp.Symbol, extent: sp.Expr) -> sp.Sum:
    """Sum of body over variable in 0..extent-1, the way a person writes sum_n."""
    return sp.Sum(body, (variable, 0, extent - 1))


class MaxOver(ExprWithLimits):
    """The largest of body over one index, max_k X[n, k]: a statistic only, and one the
    output is declared invariant to (a max has no derivative where entries tie)."""

    is_real = True

    def _sympystr(self, printer):
        return f"Max({printer._print(self.function)}, {printer._print(self.limits[0])})"

    def _latex(self, printer):
        variable, lower, upper = self.limits[0]
        return (rf"\max_{{{printer._print(variable)}={printer._print(lower)}}}"
                rf"^{{{printer._print(upper)}}} {printer._print(self.function)}")


def max_over(body: sp.Expr, variable: sp.Symbol, extent: sp.Expr) -> MaxOver:
    """The max of body over variable in 0..extent-1 (a shift that keeps exp finite)."""
    return MaxOver(body, (variable, 0, extent - 1))


#: the nodes that bind an index over its range
BINDERS = (sp.Sum, MaxOver)


@dataclass(frozen=True, eq=False)
class IndexLayer:
    """A layer over named indices: ``output = forward`` entry by entry."""

    name: str
    output: sp.Indexed
    forward: sp.Expr
    inputs: tuple
    ranges: dict
    statistics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    #: inputs that are data, not differentiated (a dropout mask): forward takes them after
    #: `inputs`, backward returns no VJP for them
    constants: tuple = ()
    #: hand derivations: records with `expected` (the entry of dL/d input at the input's
    #: own indices, G the upstream gradient), `wrt` (the input's IndexedBase) and `label`,
    #: such as symnet.declare.scalar.Gradient
    hand: tuple = ()
    doc: str = ""
    #: the upstream gradient dL/d output, entry by entry
    upstream: sp.IndexedBase = sp.IndexedBase("G", real=True)
    #: statistics (their IndexedBase) the output does not depend on, such as a max shift:
    #: the derivation proves dY/d stat = 0 for every size, then holds them constant
    invariant: tuple = ()

    kind = KIND
    activation = None

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "constants", tuple(self.constants))
        object.__setattr__(self, "hand", tuple(self.hand))
        object.__setattr__(self, "invariant", tuple(getattr(b, "base", b)
                                                    for b in self.invariant))
        object.__setattr__(self, "statistics", dict(self.statistics))
        object.__setattr__(self, "ranges", dict(self.ranges))
        object.__setattr__(self, "params", {s: sp.sympify(v) for s, v in
                                            dict(self.params).items()})
        Checker(self).check()

    # --- what the other stages read ---------------------------------------------------

    @property
    def bases(self) -> tuple:
        return tuple(entry.base for entry in self.inputs)

    @property
    def arguments(self) -> tuple:
        """What forward takes, in its order: the inputs, then the constants."""
        return (*self.inputs, *self.constants)

    def input_of(self, base) -> sp.Indexed:
        return next(entry for entry in self.arguments if entry.base == base)

    def shape_of(self, entry: sp.Indexed) -> tuple:
        return tuple(self.ranges[i] for i in entry.indices)

    def declared(self) -> dict:
        """IndexedBase -> its declared entry (inputs, statistics, output, upstream)."""
        found = {entry.base: entry for entry in (*self.arguments, *self.statistics)}
        found[self.output.base] = self.output
        found[self.upstream] = self.upstream[self.output.indices]
        return found

    def expanded(self, expr: sp.Expr) -> sp.Expr:
        """expr with every statistic written out in terms of the inputs, but those the
        output is invariant to: they stay free tensors (any value of them will do)."""
        return expand_statistics(expr, self.variant_statistics())

    def variant_statistics(self) -> dict:
        return {entry: definition for entry, definition in self.statistics.items()
                if entry.base not in self.invariant}

    def _repr_latex_(self) -> str:
        """Jupyter (and a report) shows a tensor layer as its forward, its statistics and
        its shapes (its derivation, the rest)."""
        def shape(entry):
            return "(" + ", ".join(str(self.ranges[i]) for i in entry.indices) + \
                ("," if len(entry.indices) == 1 else "") + ")"
        rows = [Row("forward", sp.Eq(self.output, self.forward, evaluate=False))]
        rows += [Row("statistic", sp.Eq(entry, definition, evaluate=False), f"shape {shape(entry)}")
                 for entry, definition in self.statistics.items()]
        shapes = "; ".join(f"{entry.base}: {shape(entry)}" for entry in
                           (*self.inputs, self.output))
        return f"$${render_latex_block(rows + [Row('shapes', None, shapes)])}$$"


def expand_statistics(expr: sp.Expr, statistics: dict) -> sp.Expr:
    """Each statistic's entry replaced by its definition at those indices, the latest
    first, so that one defined by earlier ones is written out all the way."""
    for entry, definition in reversed(list(statistics.items())):
        base, declared = entry.base, entry.indices

        def at(e, declared=declared, definition=definition):
            return fresh_dummies(definition).xreplace(dict(zip(declared, e.indices,
                                                                strict=True)))

        expr = expr.replace(lambda e, base=base: isinstance(e, sp.Indexed) and e.base == base,
                            at)
    return expr


_counter = [0]


def fresh_dummies(expr: sp.Expr) -> sp.Expr:
    """expr with every summation variable renamed to a name used nowhere else, so that
    writing a definition out twice (or inside another sum) never captures an index."""

    def rename(s):
        limits, body = [], s.function
        for variable, lower, upper in s.limits:
            _counter[0] += 1
            fresh = sp.Symbol(f"{variable}_{_counter[0]}", integer=True)
            body = body.xreplace({variable: fresh})
            limits.append((fresh, lower, upper))
        return type(s)(body, *limits)

    return expr.replace(lambda e: isinstance(e, BINDERS), rename)


# --- checks at declaration ---------------------------------------------------------------


class Checker:
    """The declaration's rules, each a one-line DeclarationError."""

    def __init__(self, layer: IndexLayer):
        self.layer = layer

    def fail(self, problem: str):
        raise IndexDeclarationError(self.layer.name, problem)

    def check(self) -> None:
        layer = self.layer
        check_name(layer.name)
        for entry in (layer.output, *layer.arguments, *layer.statistics):
            self._entry(entry)
        self._ranges()
        self._ranks()
        for entry, definition in layer.statistics.items():
            self._side(f"statistic {entry}", entry, definition)
        self._side(f"output {layer.output}", layer.output, layer.forward)
        for record in layer.hand:
            self._hand(record)
        self._invariant()
        for symbol, default in layer.params.items():
            if not (isinstance(symbol, sp.Symbol) and symbol.is_real):
                self.fail(f"parameter {symbol} must be a real sympy Symbol")
            if not default.is_number:
                self.fail(f"parameter {symbol} needs a numeric default, got {default}")

    def _entry(self, entry) -> None:
        if not isinstance(entry, sp.Indexed) or not all(isinstance(i, sp.Symbol)
                                                        for i in entry.indices):
            self.fail(f"{entry} is not an entry over named indices such as X[n, d]")
        if len(set(entry.indices)) != len(entry.indices):
            self.fail(f"{entry} repeats an index: a diagonal is not an entry of its own")

    def _ranges(self) -> None:
        for variable, extent in self.layer.ranges.items():
            if not (isinstance(variable, sp.Symbol) and variable.is_integer):
                self.fail(f"range of {variable}: an index is an integer Symbol")
            if not (sp.sympify(extent).is_integer and sp.sympify(extent).is_positive):
                self.fail(f"index {variable} ranges over 0..{extent} - 1: a size is a "
                          f"positive integer")
        for entry in (self.layer.output, *self.layer.arguments, *self.layer.statistics):
            for variable in entry.indices:
                if variable not in self.layer.ranges:
                    self.fail(f"index {variable} of {entry} has no range; add "
                              f"{variable}: SIZE to ranges")

    def _ranks(self) -> None:
        declared = self.layer.declared()
        bases = [e.base for e in (*self.layer.arguments, *self.layer.statistics)]
        twice = {b for b in bases if bases.count(b) > 1} | (set(bases) & {self.layer.output.base})
        if twice:
            self.fail(f"{', '.join(sorted(map(str, twice)))} declared twice")
        sides = [self.layer.forward, *self.layer.statistics.values()]
        sides += [r.expected for r in self.layer.hand if hasattr(r, "expected")]
        for side in sides:
            for use in sorted(sp.sympify(side).atoms(sp.Indexed), key=sp.default_sort_key):
                known = declared.get(use.base)
                if known is None:
                    self.fail(f"{use.base} is used ({use}) but has no declared rank: "
                              f"declare it as an input such as {use}")
                if len(use.indices) != len(known.indices):
                    self.fail(f"{use.base} has rank {len(known.indices)} ({known}) but is "
                              f"used as {use}")

    def _side(self, what: str, lhs: sp.Indexed, rhs) -> None:
        rhs = sp.sympify(rhs)
        free = set(lhs.indices)
        summed = {limit[0] for s in rhs.atoms(*BINDERS) for limit in s.limits}
        both = free & summed
        if both:
            self.fail(f"{what}: index {_names(both)} is free on the left and summed on "
                      f"the right")
        loose = _free_indices(rhs) - free
        if loose:
            self.fail(f"{what}: index {_names(loose)} is free on the right but not on the "
                      f"left (sum over it, or add it to the left)")
        self._sizes(what, rhs, dict(self.layer.ranges))

    def _sizes(self, what: str, expr, ranges: dict) -> None:
        """Every use of an index, and every axis of a tensor, has one size."""
        declared = self.layer.declared()
        for s in sorted(expr.atoms(*BINDERS), key=sp.default_sort_key):
            for variable, lower, upper in s.limits:
                if lower != 0:
                    self.fail(f"{what}: the sum over {variable} starts at {lower}; sums run "
                              f"over 0..SIZE - 1")
                extent = sp.expand(upper + 1)
                known = ranges.setdefault(variable, extent)
                if sp.expand(known - extent) != 0:
                    self.fail(f"{what}: index {variable} runs over {known} values in one "
                              f"use and {extent} in another")
        for use in sorted(expr.atoms(sp.Indexed), key=sp.default_sort_key):
            entry = declared[use.base]
            for variable, own in zip(use.indices, entry.indices, strict=True):
                if not isinstance(variable, sp.Symbol):
                    self.fail(f"{what}: {use} indexes with {variable}; an index is a "
                              f"plain name (shifts such as n + 1 are not supported yet)")
                extent, expected = ranges.get(variable), self.layer.ranges[own]
                if extent is None:
                    self.fail(f"{what}: index {variable} in {use} has no range")
                if sp.expand(extent - expected) != 0:
                    self.fail(f"{what}: {use} uses index {variable} (size {extent}) on an "
                              f"axis of size {expected} ({entry})")

    def _hand(self, record) -> None:
        wrt = getattr(record, "wrt", None)
        if wrt not in self.layer.bases:
            self.fail(f"hand derivation {getattr(record, 'label', '')!r}: wrt must be one of "
                      f"the inputs {', '.join(map(str, self.layer.bases))}, got {wrt}")
        entry = self.layer.input_of(wrt)
        self._side(f"hand derivation d/d{wrt}", entry, record.expected)

    def _invariant(self) -> None:
        """A max is a statistic the output is declared invariant to; each invariant name is
        a statistic (the derivation proves the invariance)."""
        layer = self.layer
        statistics = {entry.base: entry for entry in layer.statistics}
        for base in layer.invariant:
            if base not in statistics:
                self.fail(f"invariant={base}: only a statistic can be declared invariant "
                          f"(the statistics: {_names(statistics) or 'none'})")
        sides = [layer.forward, *(r.expected for r in layer.hand if hasattr(r, "expected"))]
        if any(sp.sympify(side).has(MaxOver) for side in sides):
            self.fail("a max over an index has no derivative where entries tie: name it as "
                      "a statistic the output is invariant to (invariant=(shift,))")
        for entry, definition in layer.statistics.items():
            if sp.sympify(definition).has(MaxOver) and entry.base not in layer.invariant:
                self.fail(f"statistic {entry} takes a max, which has no derivative where "
                          f"entries tie: declare the output invariant to it "
                          f"(invariant=({entry.base},))")


def _free_indices(expr: sp.Expr) -> set:
    """Integer symbols free in expr that are not sizes (n, d; not N)."""
    return {s for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.is_integer
            and not s.is_positive}


def _names(symbols) -> str:
    return ", ".join(sorted(map(str, symbols)))
