"""What a declaration is: elementwise activations, per-sample losses, regularisers,
and the hand derivations a person attaches to them.

A declaration says *what* a function is; `symnet.derive` works out its backward and
`symnet.verify` checks the hand derivations. Everything is validated here, at
declaration time, so a mistake is reported where it was written.

Example (a user's own file)::

    import sympy as sp
    from symnet import Activation, Gradient, Kink
    from symnet.symbols import x, out

    softsign = Activation(
        "softsign", x / (1 + sp.Abs(x)), inputs=x,
        hand=[Gradient(1 / (1 + sp.Abs(x)) ** 2, label="softsign'")],
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symnet.declare.validation import (
    check_name,
    checked_params,
    listed,
    plain_symbols,
    require_real,
    scalar_expr,
    undefined_functions,
)
from symnet.errors import DeclarationError
from symnet.notation import latex
from symnet.symbols import out as OUT
from symnet.target_kinds import CLASS_INDEX, REAL, SIGN, TARGET_KINDS, VECTOR_KINDS

# --- hand derivations --------------------------------------------------------------------


@dataclass(frozen=True)
class Gradient:
    """A hand-derived derivative: d(of)/d(wrt) should equal `expected`.

    `of` defaults to the declaration's forward, `wrt` to its input (an activation with
    one input) or to the score entry s[k] (a loss). An activation's `expected` may use
    `symnet.symbols.out`, the forward output.
    """

    expected: sp.Expr
    wrt: sp.Expr | None = None
    of: sp.Expr | None = None
    label: str = ""


@dataclass(frozen=True)
class Jacobian:
    """A hand-derived Jacobian in index form: d function(row) / d s[col] == expected."""

    function: sp.Expr
    expected: sp.Expr
    row: sp.Symbol = sp.Symbol("i", integer=True)
    col: sp.Symbol = sp.Symbol("j", integer=True)
    label: str = ""


@dataclass(frozen=True)
class Identity:
    """A claimed equality between two expressions (a rewrite, an expansion on a slide)."""

    lhs: sp.Expr
    rhs: sp.Expr
    label: str = ""


@dataclass(frozen=True)
class Kink:
    """The convention at a point where the forward is not differentiable.

    `at` maps inputs to the kink's coordinates; `derivative` maps each input to the value
    its derivative takes there (ReLU: ``Kink({x: 0}, {x: 0})`` says relu'(0) = 0).
    symnet checks that its derived backward follows the convention exactly.
    """

    at: dict
    derivative: dict


HandRecord = Gradient | Jacobian | Identity


def _hand_list(name: str, hand) -> tuple:
    records = tuple(hand or ())
    for record in records:
        if not isinstance(record, (Gradient, Jacobian, Identity)):
            raise DeclarationError(name, f"hand derivations must be Gradient, Jacobian or "
                                   f"Identity records, got {record!r}")
    return records


# --- declarations ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Activation:
    """An elementwise activation: a scalar expression in one or more real inputs.

    ``Activation("relu", sp.Max(0, x), inputs=x, kinks=[Kink({x: 0}, {x: 0})])``
    """

    name: str
    forward: sp.Expr
    inputs: tuple
    params: dict = field(default_factory=dict)
    kinks: tuple = ()
    hand: tuple = ()
    doc: str = ""
    kind = "activation"

    def __init__(self, name, forward, inputs, params=None, kinks=(), hand=(), doc=""):
        name = check_name(name)
        inputs = (inputs,) if isinstance(inputs, sp.Basic) else tuple(inputs)
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "forward", scalar_expr(name, "the forward", forward))
        set_(self, "inputs", inputs)
        set_(self, "params", checked_params(name, params))
        set_(self, "kinks", tuple(kinks))
        set_(self, "hand", _hand_list(name, hand))
        set_(self, "doc", doc)
        self._validate()

    def _validate(self) -> None:
        name = self.name
        if not self.inputs:
            raise DeclarationError(name, "an activation needs at least one input symbol")
        for symbol in self.inputs:
            require_real(name, "input", symbol)
        if self.forward.atoms(sp.Indexed):
            raise DeclarationError(name, "an activation is elementwise, but its forward "
                                   "holds indexed symbols; declare a Loss instead")
        allowed = set(self.inputs) | set(self.params)
        extra = self.forward.free_symbols - allowed
        if extra:
            raise DeclarationError(name, f"undeclared free symbol(s) {listed(extra)} in the "
                                   f"forward; declare them as inputs or params")
        if undefined := undefined_functions(self.forward):
            raise DeclarationError(name, f"the forward calls undefined function(s) "
                                   f"{listed(undefined)}, which cannot be differentiated")
        for kink in self.kinks:
            if not isinstance(kink, Kink) or set(kink.at) - set(self.inputs) \
                    or set(kink.derivative) - set(self.inputs):
                raise DeclarationError(name, f"kink {kink!r} must map this activation's "
                                       f"inputs to numbers")
        for record in self.hand:
            self._validate_hand(record)

    def _validate_hand(self, record: HandRecord) -> None:
        where = f"hand derivation {record.label or type(record).__name__}"
        allowed = set(self.inputs) | set(self.params) | {OUT}
        if isinstance(record, Jacobian):
            raise DeclarationError(self.name, f"{where}: an elementwise activation has a "
                                   f"derivative, not a Jacobian; use Gradient")
        exprs = [record.lhs, record.rhs] if isinstance(record, Identity) else [record.expected]
        for expr in exprs:
            expr = scalar_expr(self.name, where, expr)
            if extra := expr.free_symbols - allowed:
                raise DeclarationError(self.name, f"{where}: undeclared symbol(s) "
                                       f"{listed(extra)}")
        if isinstance(record, Gradient):
            if record.wrt is None and len(self.inputs) > 1:
                raise DeclarationError(self.name, f"{where}: this activation has inputs "
                                       f"{listed(self.inputs)}; say which with wrt=")
            if record.wrt is not None and record.wrt not in self.inputs:
                raise DeclarationError(self.name, f"{where}: wrt={record.wrt} is not an input")

    def _repr_latex_(self) -> str:
        """Jupyter shows an activation as one formula: relu(x) = ..."""
        lhs = sp.Function(self.name)(*self.inputs)
        return f"$${latex(sp.Eq(lhs, self.forward, evaluate=False))}$$"

    def wrt_of(self, record: Gradient):
        return record.wrt if record.wrt is not None else self.inputs[0]


@dataclass(frozen=True, eq=False)
class Loss:
    """A per-sample loss over a score vector s of symbolic length C (or a scalar score).

    The target is a one-hot vector y (``target_kind="one_hot"``), a class index t
    (``"class_index"``), a real vector (``"real"``) or a +-1 label (``"sign"``).
    `constraints` are equalities the derivation may use, such as sum_i y_i = 1.
    The gradient is taken with respect to the entry s[index] (index k by default).
    """

    name: str
    forward: sp.Expr
    scores: sp.Basic
    size: sp.Symbol | None = None
    target: sp.Basic | None = None
    target_kind: str | None = None
    constraints: tuple = ()
    params: dict = field(default_factory=dict)
    hand: tuple = ()
    index: sp.Symbol = sp.Symbol("k", integer=True)
    doc: str = ""
    kind = "loss"
    vector_role = "score vector"

    def __init__(self, name, forward, scores=None, size=None, target=None, target_kind=None,
                 constraints=(), params=None, hand=(), index=None, doc=""):
        name = check_name(name)
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "forward", scalar_expr(name, "the forward", forward))
        set_(self, "scores", scores)
        set_(self, "size", size)
        set_(self, "target", target)
        set_(self, "target_kind", target_kind)
        set_(self, "constraints", tuple(constraints))
        set_(self, "params", checked_params(name, params))
        set_(self, "hand", _hand_list(name, hand))
        set_(self, "index", index if index is not None else sp.Symbol("k", integer=True))
        set_(self, "doc", doc)
        self._validate()

    @property
    def is_vector(self) -> bool:
        return isinstance(self.scores, sp.IndexedBase)

    @property
    def wrt(self) -> sp.Expr:
        """The score entry the gradient is taken with respect to: s[k], or s itself."""
        return self.scores[self.index] if self.is_vector else self.scores

    def _validate(self) -> None:
        name, role = self.name, self.vector_role
        if self.scores is None:
            raise DeclarationError(name, f"a {self.kind} needs a {role} (scores=...)")
        if isinstance(self.scores, sp.IndexedBase):
            if self.size is None or not (isinstance(self.size, sp.Symbol)
                                         and self.size.is_integer and self.size.is_positive):
                raise DeclarationError(name, f"the {role} {self.scores} needs a size: a "
                                       f"positive integer Symbol such as C")
            if self.scores[self.index].is_real is not True:
                raise DeclarationError(name, f"the {role} {self.scores} is not declared real; "
                                       f"write sympy.IndexedBase({str(self.scores)!r}, real=True)")
        else:
            require_real(name, role, self.scores)
        if not self._mentions(self.forward, self.scores):
            raise DeclarationError(name, f"the forward does not depend on the {role} "
                                   f"{self.scores}")
        self._validate_target()
        if not self.index.is_integer:
            raise DeclarationError(name, f"the gradient index {self.index} must be an integer "
                                   f"Symbol")
        if self.index in self.forward.free_symbols:
            raise DeclarationError(name, f"the gradient index {self.index} is free in the "
                                   f"forward; use another index name")
        extra = plain_symbols(self.forward) - self._allowed_symbols()
        if extra:
            raise DeclarationError(name, f"undeclared free symbol(s) {listed(extra)} in the "
                                   f"forward; declare them as params, target or size")
        bases = {ix.base for ix in self.forward.atoms(sp.Indexed)} - {self.scores, self.target}
        if bases:
            raise DeclarationError(name, f"undeclared indexed symbol(s) {listed(bases)}")
        if undefined := undefined_functions(self.forward):
            raise DeclarationError(name, f"the forward calls undefined function(s) "
                                   f"{listed(undefined)}, which cannot be differentiated")
        for constraint in self.constraints:
            if not isinstance(constraint, sp.Equality):
                raise DeclarationError(name, f"constraint {constraint!r} must be sympy.Eq(...)")
        for record in self.hand:
            self._validate_hand(record)

    def _validate_target(self) -> None:
        name, target, kind = self.name, self.target, self.target_kind
        if target is None:
            if kind is not None:
                raise DeclarationError(name, f"target_kind={kind!r} given without a target")
            return
        if kind not in TARGET_KINDS:
            raise DeclarationError(name, f"target_kind must be one of {', '.join(TARGET_KINDS)}"
                                   f"; got {kind!r}")
        vector_kind = kind in VECTOR_KINDS
        if vector_kind != isinstance(target, sp.IndexedBase):
            raise DeclarationError(name, f"a {kind} target must be "
                                   f"{'an IndexedBase' if vector_kind else 'a Symbol'}, "
                                   f"got {target!r}")
        if kind == CLASS_INDEX and not target.is_integer:
            raise DeclarationError(name, f"the class index {target} must be an integer Symbol")
        if kind in (REAL, SIGN) and not isinstance(target, sp.IndexedBase):
            require_real(name, "target", target)

    @staticmethod
    def _mentions(expr: sp.Expr, vector) -> bool:
        if isinstance(vector, sp.IndexedBase):
            return any(ix.base == vector for ix in expr.atoms(sp.Indexed)) \
                or any(vector in a.args for a in expr.atoms(sp.Function))
        return vector in expr.free_symbols

    def _allowed_symbols(self) -> set:
        allowed = set(self.params)
        for thing in (self.scores, self.target):
            if isinstance(thing, sp.IndexedBase):
                allowed.add(thing.label)
            elif thing is not None:
                allowed.add(thing)
        if self.size is not None:
            allowed.add(self.size)
        return allowed

    def _validate_hand(self, record: HandRecord) -> None:
        where = f"hand derivation {record.label or type(record).__name__}"
        if isinstance(record, Identity):
            scalar_expr(self.name, where, record.lhs)
            scalar_expr(self.name, where, record.rhs)
            return
        expected = scalar_expr(self.name, where, record.expected)
        if isinstance(record, Gradient):
            wrt = record.wrt if record.wrt is not None else self.wrt
            indices = set(wrt.indices) if isinstance(wrt, sp.Indexed) else set()
            shape = f"indexed by {listed(indices)}" if indices else "a scalar"
        else:
            indices = {record.row, record.col}
            shape = f"indexed by {record.row}, {record.col}"
        free = {s for s in plain_symbols(expected)
                if s.is_integer and not s.is_positive} - self._allowed_symbols()
        if stray := free - indices:
            raise DeclarationError(self.name, f"{where} has the wrong shape: it should be "
                                   f"{shape}, but has free index(es) {listed(stray)}")

    def _repr_latex_(self) -> str:
        """Jupyter shows a loss as one formula: name = its forward."""
        lhs = sp.Symbol(r"\mathrm{" + self.name.replace("_", r"\_") + "}")
        return f"$${latex(sp.Eq(lhs, self.forward, evaluate=False))}$$"

    def gradient_wrt(self, record: Gradient):
        return record.wrt if record.wrt is not None else self.wrt


class Regularizer(Loss):
    """A penalty on a weight vector W of symbolic length K, e.g. lambda * sum_k W_k^2."""

    kind = "regularizer"
    vector_role = "weight vector"

    def __init__(self, name, forward, weights=None, size=None, params=None, hand=(),
                 index=None, doc=""):
        super().__init__(name, forward, scores=weights, size=size, params=params, hand=hand,
                         index=index, doc=doc)


Declaration = Activation | Loss
