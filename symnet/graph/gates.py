"""The gates of a computational graph (lecture section 02): each kind's forward and local
gradients, written as the small sympy expressions the emitted code prints.

A gate's forward is an expression in its input symbols (and a constant, for `+ c`, `* c`,
`x^n`); its local gradients are, per input, the *factors* that multiply the upstream
gradient, so a contribution prints in the lecture's order, `grad_L*(1 - L)*L`. A local
gradient may use the gate's own output `out` (e^x is the exp gate's output; the sigmoid's
is (1 - out) out): backward reuses the forward's values.

Kinks: a max (or min) gate sends the whole gradient to one input. Ties go to the input
written first: relu(x) = max(0, x) has relu'(0) = 0, maxout's max(a, b) routes to a at a tie.
A piecewise function (leaky ReLU, ELU) is a `where` gate per condition: where(u > c, a, b)
sends the gradient to the branch its condition picks, as symnet's derivation does at the
kink (leaky_relu'(0) = slope, elu'(0) = 1), and none to u.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from symnet.errors import SymnetError
from symnet.primitives import TABLE
from symnet.stable_rows import StableRow

_DIGITS = 50


class GraphError(SymnetError):
    """An expression that cannot be graphed, evaluated or drawn: says which part and why."""


#: the most digits an exact value in a graph may have: 2**(10**10) would take minutes and
#: gigabytes, and Python's big-integer power cannot be interrupted once started; under
#: Python's own limit for printing an integer (4300 digits)
MAX_DIGITS = 4000


def evaluated(expr: sp.Expr, values: dict | None = None) -> sp.Expr:
    """An expression written unevaluated, evaluated bottom-up (with `values` put in for its
    symbols first, unevaluated); an exact power too large to compute is a GraphError that
    names it, not a hang."""
    if values:
        with sp.evaluate(False):       # xreplace would evaluate, powers included, unchecked
            expr = expr.xreplace(values)
    if expr.is_Atom:
        return expr
    args = [evaluated(a) for a in expr.args]
    if expr.is_Pow:
        _check_power_size(*args)
    return expr.func(*args)


def _check_power_size(base: sp.Expr, exponent: sp.Expr) -> None:
    if not (base.is_Rational and exponent.is_Rational) or base in (0, 1, -1):
        return
    digits = abs(float(exponent)) * math.log10(max(abs(base.p), base.q))
    if digits > MAX_DIGITS:
        raise GraphError(f"{sp.sstr(base)}**{sp.sstr(exponent)} would have about "
                         f"{digits:.3g} digits; symnet graph computes exactly and stops at "
                         f"{MAX_DIGITS} digits")


def unevaluated(op, *args):
    """op(*args) kept as written: sympy neither sorts nor merges the arguments."""
    return op(*args, evaluate=False)


def negated_term(term: sp.Expr):
    """u for a term written -u (a product with the coefficient -1), else None."""
    if term.is_Mul and term.args[0] == -1:
        rest = term.args[1:]
        return rest[0] if len(rest) == 1 else unevaluated(sp.Mul, *rest)
    return None


# --- sympy functions the gates need ---------------------------------------------------------


class PrimitiveGate(sp.Function):
    """A stable primitive as one gate: its formula is its row's naive one
    (symnet.primitives.TABLE); its local gradient is the gate's own."""

    nargs = 1
    is_real = True
    row: StableRow

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return self.row.naive(arg)

    def _eval_evalf(self, prec):
        return self.row.naive(self.args[0])._eval_evalf(prec)


class Sigmoid(PrimitiveGate):
    """The logistic sigmoid as one gate (L20): 1 / (1 + e^-x), with sigma' = sigma (1 - sigma)."""

    row = TABLE["sigmoid"]

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sp.S.Half
        if arg.is_Float:
            return cls.row.naive(arg)
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)


class Softplus(PrimitiveGate):
    """log(1 + e^x) as one gate, with softplus' = sigma (the catalog's softplus)."""

    row = TABLE["softplus"]

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])


class _Comparison(sp.Function):
    """[a OP b] as 0 or 1: one comparison, which multiplies an upstream gradient."""

    nargs = 2
    is_real = True
    symbol = "?"

    @staticmethod
    def holds(a, b) -> bool:
        raise NotImplementedError

    @classmethod
    def eval(cls, a, b):
        if a.is_number and b.is_number:
            try:
                return sp.S.One if cls.holds(a, b) else sp.S.Zero
            except TypeError:  # sympy cannot order the two exactly: decide at high precision
                return sp.S.One if cls.holds(a.evalf(_DIGITS), b.evalf(_DIGITS)) else sp.S.Zero
        return None

    def fdiff(self, argindex=1):
        return sp.S.Zero


class IsGreater(_Comparison):
    symbol = ">"

    @staticmethod
    def holds(a, b) -> bool:
        return bool(a > b)


class IsGreaterEqual(_Comparison):
    symbol = ">="

    @staticmethod
    def holds(a, b) -> bool:
        return bool(a >= b)


class IsLess(_Comparison):
    symbol = "<"

    @staticmethod
    def holds(a, b) -> bool:
        return bool(a < b)


class IsLessEqual(_Comparison):
    symbol = "<="

    @staticmethod
    def holds(a, b) -> bool:
        return bool(a <= b)


class Where(sp.Function):
    """Where(condition, a, b): a where the 0/1 condition is 1, else b (numpy's np.where)."""

    nargs = 3
    is_real = True

    @classmethod
    def eval(cls, condition, a, b):
        if condition == 1:
            return a
        if condition == 0:
            return b
        return None

    def fdiff(self, argindex=1):   # constant between kinks: the branch the condition picks
        condition = self.args[0]
        return (sp.S.Zero, condition, 1 - condition)[argindex - 1]


class _OrderedExtremum(sp.Function):
    """max or min of two, keeping the order they were written in (sympy's Max sorts its
    arguments, and the order decides where a tie sends the gradient)."""

    nargs = 2
    is_real = True
    first_wins: type = _Comparison  # [a wins over b], ties included

    @classmethod
    def eval(cls, a, b):
        if a.is_number and b.is_number:
            return a if cls.first_wins(a, b) == 1 else b
        return None

    def fdiff(self, argindex=1):
        a, b = self.args
        wins = self.first_wins(a, b)
        return wins if argindex == 1 else 1 - wins


class OrderedMax(_OrderedExtremum):
    first_wins = IsGreaterEqual


class OrderedMin(_OrderedExtremum):
    first_wins = IsLessEqual


# --- the gates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """One kind of gate. `forward(ins, c)` is an expression in the input symbols;
    `local(ins, out, c)` gives, per input, the factors of its local gradient."""

    kind: str
    #: what the drawing writes in the gate's circle ("+", "*", "exp", "1/x", ...)
    label: Callable[[sp.Expr | None], str]
    forward: Callable
    local: Callable
    #: the local gradient as the lecture writes it (for the table of gates)
    lecture: str


def _one_minus(e):
    return unevaluated(sp.Add, 1, unevaluated(sp.Mul, -1, e))


def _tanh_local(ins, out, c):
    return ((_one_minus(unevaluated(sp.Pow, out, 2)),),)


def _pow_local(ins, out, c):
    (a,) = ins
    if c == 2:
        return ((2, a),)
    return ((c, unevaluated(sp.Pow, a, c - 1)),)


def _constant_text(c) -> str:
    return sp.sstr(c)


def _fixed(text: str):
    return lambda c: text


def _extremum_gates(kind: str, ordered, first_wins, second_wins, function: str):
    """max / min of two inputs, and of an input and a constant (relu is max(0, x))."""
    both = Gate(
        kind, _fixed(kind),
        lambda ins, c: Where(first_wins(*ins), *ins),
        lambda ins, out, c: ((first_wins(*ins),), (second_wins(*ins),)),
        f"routes the gradient to the {'larger' if kind == 'max' else 'smaller'} input",
    )
    # c = (constant, written_first): ties go to whichever was written first
    with_constant = Gate(
        kind + "_c", lambda c: f"{kind}({_constant_text(c[0])}, .)",
        lambda ins, c: ordered(c[0], ins[0]) if c[1] else ordered(ins[0], c[0]),
        lambda ins, out, c: ((second_wins(c[0], ins[0]),) if c[1]
                             else (first_wins(ins[0], c[0]),),),
        f"[x wins the {function}]",
    )
    return both, with_constant


#: each comparison and the one that holds exactly where it does not
COMPLEMENT = {IsGreater: IsLessEqual, IsGreaterEqual: IsLess,
              IsLess: IsGreaterEqual, IsLessEqual: IsGreater}


def _where_gate() -> Gate:
    """where(u OP c, a, b), a piecewise function's choice. Its inputs are the branches that
    are not constants, after u unless u is one of them (leaky ReLU's x);
    c = (comparison, c, a or None, b or None, u's position or None), a constant branch given
    by its value. The local gradient is the condition for a, its complement for b, and 0
    for a u of its own (the choice is constant between kinks)."""
    def parts(ins, c):
        separate = c[4] is None
        rest = iter(ins[1:] if separate else ins)
        branches = [value if value is not None else next(rest) for value in c[2:4]]
        return ins[0] if separate else ins[c[4]], branches

    def forward(ins, c):
        u, branches = parts(ins, c)
        return Where(c[0](u, c[1]), *branches)

    def local(ins, out, c):
        u, _ = parts(ins, c)
        picks = [c[0](u, c[1]), COMPLEMENT[c[0]](u, c[1])]
        chosen = tuple((pick,) for pick, value in zip(picks, c[2:4], strict=True)
                       if value is None)
        return ((sp.S.Zero,), *chosen) if c[4] is None else chosen

    return Gate("where", lambda c: f"{c[0].symbol}{_constant_text(c[1])} ?", forward, local,
                "[condition] to the branch it picks, 0 to the condition")


_MAX, _MAX_C = _extremum_gates("max", OrderedMax, IsGreaterEqual, IsLess, "max")
_MIN, _MIN_C = _extremum_gates("min", OrderedMin, IsLessEqual, IsGreater, "min")


GATES: dict[str, Gate] = {gate.kind: gate for gate in (
    Gate("add", _fixed("+"), lambda ins, c: unevaluated(sp.Add, *ins),
         lambda ins, out, c: ((), ()), "1 (distributes)"),
    Gate("sub", _fixed("-"), lambda ins, c: unevaluated(
        sp.Add, ins[0], unevaluated(sp.Mul, -1, ins[1])),
        lambda ins, out, c: ((), (-1,)), "1 and -1"),
    Gate("mul", _fixed("*"), lambda ins, c: unevaluated(sp.Mul, *ins),
         lambda ins, out, c: ((ins[1],), (ins[0],)), "the other input (swaps)"),
    # c = (constant, written_first)
    Gate("add_c", lambda c: f"+{_constant_text(c[0])}",
         lambda ins, c: unevaluated(sp.Add, *((c[0], ins[0]) if c[1] else (ins[0], c[0]))),
         lambda ins, out, c: ((),), "1"),
    Gate("mul_c", lambda c: f"*{_constant_text(c)}",
         lambda ins, c: unevaluated(sp.Mul, c, ins[0]),
         lambda ins, out, c: ((c,),), "a"),
    Gate("recip", _fixed("1/x"), lambda ins, c: unevaluated(sp.Pow, ins[0], -1),
         lambda ins, out, c: ((-1, unevaluated(sp.Pow, ins[0], -2)),), "-1/x^2"),
    Gate("pow", lambda c: f"x^{_constant_text(c)}",
         lambda ins, c: unevaluated(sp.Pow, ins[0], c), _pow_local, "n x^(n-1)"),
    Gate("sqrt", _fixed("sqrt"), lambda ins, c: unevaluated(sp.Pow, ins[0], sp.S.Half),
         lambda ins, out, c: ((sp.S.Half, unevaluated(sp.Pow, out, -1)),),
         "1/(2 sqrt(x))"),
    Gate("exp", _fixed("exp"), lambda ins, c: sp.exp(ins[0]),
         lambda ins, out, c: ((out,),), "e^x"),
    Gate("log", _fixed("log"), lambda ins, c: sp.log(ins[0]),
         lambda ins, out, c: ((unevaluated(sp.Pow, ins[0], -1),),), "1/x"),
    Gate("tanh", _fixed("tanh"), lambda ins, c: sp.tanh(ins[0]), _tanh_local, "1 - tanh^2"),
    Gate("sigmoid", _fixed("\u03c3"), lambda ins, c: Sigmoid(ins[0]),
         lambda ins, out, c: ((_one_minus(out), out),), "(1 - sigma) sigma"),
    Gate("sin", _fixed("sin"), lambda ins, c: sp.sin(ins[0]),
         lambda ins, out, c: ((sp.cos(ins[0]),),), "cos x"),
    Gate("cos", _fixed("cos"), lambda ins, c: sp.cos(ins[0]),
         lambda ins, out, c: ((-1, sp.sin(ins[0])),), "-sin x"),
    # log cosh's naive formula log(cosh(x)) and tanh's sinh(x)/cosh(x), as written
    Gate("sinh", _fixed("sinh"), lambda ins, c: sp.sinh(ins[0]),
         lambda ins, out, c: ((sp.cosh(ins[0]),),), "cosh x"),
    Gate("cosh", _fixed("cosh"), lambda ins, c: sp.cosh(ins[0]),
         lambda ins, out, c: ((sp.sinh(ins[0]),),), "sinh x"),
    Gate("abs", _fixed("|x|"), lambda ins, c: sp.Abs(ins[0]),
         lambda ins, out, c: ((sp.sign(ins[0]),),), "sign x (0 at 0)"),
    Gate("softplus", _fixed("softplus"), lambda ins, c: Softplus(ins[0]),
         lambda ins, out, c: ((Sigmoid(ins[0]),),), "sigma(x)"),
    _MAX, _MAX_C, _MIN, _MIN_C, _where_gate(),
)}

#: functions of one argument that are a gate of their own, by the sympy class that means them
UNARY: dict[type, str] = {
    sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", Sigmoid: "sigmoid",
    sp.sin: "sin", sp.cos: "cos", sp.Abs: "abs", Softplus: "softplus",
    sp.sinh: "sinh", sp.cosh: "cosh",
}


# --- the table's rows as gates -------------------------------------------------------------
# Each row of symnet.primitives.TABLE of one real argument whose naive formula is made of
# gates (no case split) is one gate: rewrite.composite finds its naive formula and makes it
# that gate, rewrite.elementary writes the gate as its naive formula. A row with the naive
# formula of a gate above (sigmoid_of_bounded_exp: the sigmoid's) or whose stable form is one
# (tanh) is that gate; any other row gets a gate of its own, named after it, whose local
# gradient is the derivative of its naive formula (log cosh's tanh, expm1's e^x).


def graph_rows() -> list[StableRow]:
    """The rows a scalar graph holds as gates, in the table's order."""
    return [row for row in TABLE.values() if len(row.arguments) == 1
            and isinstance(row.arguments[0], sp.Symbol)
            and not row.naive(row.arguments[0]).has(sp.Piecewise)]


def _gate_of_its_own(row: StableRow) -> type:
    u = row.arguments[0]
    local = sp.simplify(sp.diff(row.naive(u), u))     # sinh/cosh as tanh: no overflow
    gate = type("".join(part.title() for part in row.name.split("_")), (PrimitiveGate,),
                {"row": row, "fdiff": lambda self, argindex=1: local.xreplace({u: self.args[0]})})
    GATES[row.name] = Gate(row.name, _fixed(row.name), lambda ins, c: gate(ins[0]),
                           lambda ins, out, c: ((local.xreplace({u: ins[0]}),),),
                           sp.sstr(local.xreplace({u: sp.Symbol("x")})))
    UNARY[gate] = row.name
    return gate


def _gate_of(row: StableRow) -> type:
    u = row.arguments[0]
    for gate in (Sigmoid, Softplus):
        if gate.row.naive(u) == row.naive(u):
            return gate
    stable = row.stable(u)
    if stable.func in UNARY and stable.args == (u,):
        return stable.func
    return _gate_of_its_own(row)


#: row name -> the function (a gate's) that stands for its naive formula in a graph
ROW_GATES: dict[str, type] = {row.name: _gate_of(row) for row in graph_rows()}
