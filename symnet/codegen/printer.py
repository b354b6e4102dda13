"""Lowered expressions -> numpy source text: one printer, special cases as `_print_X`.

The printer only prints; it never decides what is computed. Lowering (`lower.py`) has
already replaced index notation by whole arrays, kinks by branches or masks and
overflowing forms by stable ones; what remains here is spelling:

* a step ``Heaviside(u, 0)`` is the mask ``(u > 0).astype(dtype)`` (``>=`` for
  ``Heaviside(u, 1)``); never ``np.heaviside`` with its 1/2 at the kink;
* ``Piecewise`` is nested ``np.where``, ``Max``/``Min`` are ``np.maximum``/``np.minimum``;
* the array operations of `symnet.codegen.array_ops` are the arrays' own reductions with
  explicit axes (``a.sum(axis=1, keepdims=True)``); a boolean mask a forward saved is read
  as 0/1 in dout's dtype (``x_positive.astype(dout.dtype)``);
* a function sympy's printer would take from Python's math module (``math.erf``: numpy has
  none, and math's take no arrays) is refused, naming it: never printed unimported;
* the stable forms lowering chose (``Logistic``, ``Softplus``, ``Expm1``, ``LogOrZero``)
  print as the numpy spelling of their row of the table of stable primitives
  (`symnet.primitives.TABLE`): the numpy functions that compute them without overflow,
  ``LogOrZero(t)`` as the log of t with 1 put where t is 0 (a term t*log(t) is 0 there,
  not NaN);
* an irrational constant (sqrt(2), log(3), 1/sqrt(2 pi)) is one Python float literal:
  ``np.sqrt(2)`` is a float64 scalar, which under numpy 2's promotion rules (NEP 50) turns
  a float32 array into float64, while a Python float takes the array's dtype. Rationals
  (``x/3``), ``np.pi`` and ``np.e`` are Python numbers already.
"""

from __future__ import annotations

from contextvars import ContextVar

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from symnet.codegen.array_ops import MatProd
from symnet.codegen.errors import CodegenError
from symnet.stable_rows import printed_operands

#: how a module is spelled in the generated code
MODULE_ALIASES = {"numpy": "np"}

#: relational classes -> the infix operator a person writes
OPERATORS = {sp.StrictGreaterThan: ">", sp.GreaterThan: ">=", sp.StrictLessThan: "<",
             sp.LessThan: "<=", sp.Equality: "==", sp.Unequality: "!="}

#: what must be lowered away before printing, with the reason
NOT_LOWERED = {
    "Indexed": "an indexed entry", "Sum": "a sum over an index",
    "KroneckerDelta": "a Kronecker delta", "LogSumExp": "a logsumexp",
    "Softmax": "a softmax", "Derivative": "an unevaluated derivative",
}


def is_weak(number: sp.Expr) -> bool:
    """Whether a number prints as a Python scalar, which numpy casts to the arrays' dtype:
    a rational (x/3), a float, np.pi or np.e."""
    return number.is_Rational or number.is_Float or number in (sp.pi, sp.E)


def as_float(expr) -> float | None:
    """The Python float nearest to expr (from 30 digits) where expr is a real finite number
    that is not `is_weak` (np.sqrt(2) and np.log(3) would print as float64 scalars),
    else None."""
    if not (isinstance(expr, sp.Expr) and expr.is_number) or is_weak(expr):
        return None
    value = expr.evalf(30)
    return float(value) if value.is_Float and value.is_finite else None


def float_literal(value: float) -> str:
    """A float as Python source, parenthesised when negative: one operand anywhere."""
    return f"({value!r})" if value < 0 else repr(value)


def step_relation(u: sp.Expr, at_zero) -> sp.Expr:
    """The comparison a step H(u, at_zero) is 1 on: u >= 0 where it is 1 at the kink,
    else u > 0 (never np.heaviside's 1/2)."""
    return sp.Ge(u, 0, evaluate=False) if at_zero == 1 else sp.Gt(u, 0, evaluate=False)


def no_spelling(target: str, name: str) -> CodegenError:
    """The one-line error for a function or constant a target's printer cannot spell."""
    return CodegenError("", f"{name} has no {target} spelling in symnet's {target} printer; "
                        f"write the declaration with primitives it has")


class NumpyPrinter(NumPyPrinter):
    """sympy's NumPy printer with symnet's conventions; see the module docstring.

    Settings: ``names`` maps a symbol's name to the identifier used in the code,
    ``dtype_of`` names the array whose dtype masks take.
    """

    #: the array methods lowering writes by name, as the target spells them (torch: clone,
    #: and permute for numpy's transpose of several axes)
    array_methods = {"copy": "copy", "transpose": "transpose"}
    #: how a reduction names its axis and keeps it (torch: dim, keepdim)
    axis_keywords = ("axis", "keepdims")
    #: the array method of each reduction node of symnet.index.arrays (torch's max: amax)
    reduction_methods = {"AxisSum": "sum", "AxisMean": "mean", "AxisMax": "max"}

    #: what the printer spells for (its subclasses: symnet.codegen.printer_torch, _jax)
    target = "numpy"
    #: the stable forms the target computes with one fused function of its own (torch.sigmoid),
    #: which lowering leaves whole for it rather than expanding (numpy has none)
    native_forms: frozenset = frozenset()

    def _print_not_supported(self, expr):
        # sympy's own error is two lines (a hint about its 'strict' option): one line here
        raise no_spelling(self.target, type(expr).__name__)

    # sympy binds these to its own _print_not_supported (two lines): ours, by name
    _print_lowergamma = _print_uppergamma = _print_not_supported
    _print_fresnelc = _print_fresnels = _print_not_supported

    _default_settings = {**NumPyPrinter._default_settings, "names": {}, "dtype_of": "x",
                         "scalars": frozenset()}

    @staticmethod
    def array_like(name: str, like: str) -> str:
        """`name` (a list, an array) as an array of `like`'s dtype."""
        return f"np.asarray({name}, dtype={like}.dtype)"

    def _module_format(self, fqn, register=True):
        module, _, rest = fqn.partition(".")
        if rest and module != "numpy":
            # sympy's fallback for what numpy lacks (math.erf, math.gamma): a module the
            # generated code never imports, whose functions take no arrays anyway
            raise no_spelling(self.target, f"{rest} (sympy's {fqn}, which takes no arrays)")
        return f"{MODULE_ALIASES.get(module, module)}.{rest}" if rest else fqn

    def _print_Symbol(self, expr):
        return self._settings["names"].get(expr.name, expr.name)

    _print_Dummy = _print_Symbol

    def _print(self, expr, **kwargs):
        value = as_float(expr)
        if value is not None and not expr.is_Mul:   # a product's constant is _print_Mul's
            return float_literal(value)
        return super()._print(expr, **kwargs)

    def _print_Mul(self, expr):
        """A product as a person writes it; its constant factors, where one is not a Python
        number (sqrt(2)*x/2), as one float literal: 0.7071067811865476*x."""
        numbers = [a for a in expr.args if a.is_number]
        value = as_float(sp.Mul(*numbers))
        if value is None or all(is_weak(n) for n in numbers):
            return StrPrinter._print_Mul(self, expr)
        rest = sp.Mul(*[a for a in expr.args if not a.is_number])
        if rest == 1:
            return float_literal(value)
        sign = "-" if value < 0 else ""
        shown = self.parenthesize(rest, PRECEDENCE["Mul"], strict=True)
        # log(2)/x as 0.6931471805599453/x, not 0.6931471805599453*1/x
        shown = shown[1:] if shown.startswith("1/") else f"*{shown}"
        return f"{sign}{abs(value)!r}{shown}"

    def _print_Pow(self, expr, rational=False):
        base, power = expr.as_base_exp()
        if power == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if power.is_number and power.is_negative:
            return f"1/{self.parenthesize(sp.Pow(base, -power), PRECEDENCE['Mul'])}"
        return StrPrinter._print_Pow(self, expr, rational=rational)

    def _print_Rational(self, expr):
        return f"{expr.p}/{expr.q}"

    def _print_Add(self, expr, order=None):
        terms = self._as_ordered_terms(expr, order=order)
        # matrix products first, as a person writes a layer: X @ W + b, not b + X @ W
        terms = sorted(terms, key=lambda t: not t.has(MatProd))
        # lead with a positive term where there is one: 1 - x*y, not -x*y + 1
        leading = next((t for t in terms if not t.could_extract_minus_sign()), terms[0])
        terms = [leading] + [t for t in terms if t is not leading]
        text = ""
        for term in terms:
            sign, magnitude = ("-", -term) if term.could_extract_minus_sign() else ("+", term)
            printed = self.parenthesize(magnitude, precedence(expr))
            text += (f" {sign} " if text else ("-" if sign == "-" else "")) + printed
        return text

    # --- kinks ---------------------------------------------------------------------------

    def _print_Relational(self, expr):
        lhs, rhs = expr.lhs, expr.rhs
        if rhs == 0 and lhs.is_Add and lhs.as_coeff_Add()[0] == 0:
            negative = [t for t in lhs.args if t.could_extract_minus_sign()]
            positive = [t for t in lhs.args if not t.could_extract_minus_sign()]
            if negative and positive:
                lhs, rhs = sp.Add(*positive), -sp.Add(*negative)
        return f"{self._print(lhs)} {OPERATORS[type(expr)]} {self._print(rhs)}"

    def _holds_arrays(self, side) -> bool:
        """Whether a side of a comparison holds the input array or a temporary (a name
        that is not one of the declaration's own, such as a parameter)."""
        names, array = self._settings["names"], self._settings["dtype_of"]
        return any(s.name == array or s.name not in names for s in side.free_symbols
                   if isinstance(s, sp.Symbol))

    def _print_oriented(self, expr):
        """A comparison of arrays with a threshold reads with the arrays on the left, not
        negated: np.abs(r) <= delta, r < -delta (sympy's canonical order, which CSE
        imposes, gives delta >= np.abs(r) and delta < -r)."""
        if expr.rhs != 0 and self._holds_arrays(expr.rhs) \
                and not self._holds_arrays(expr.lhs):
            expr = expr.reversed
            if expr.lhs.could_extract_minus_sign():
                expr = expr.reversedsign
        return self._print_Relational(expr)

    _print_GreaterThan = _print_StrictGreaterThan = _print_oriented
    _print_LessThan = _print_StrictLessThan = _print_oriented

    def _print_Heaviside(self, expr):
        u = expr.args[0]
        at_zero = expr.args[1] if len(expr.args) > 1 else None
        if at_zero not in (0, 1):
            raise CodegenError("", f"the step {expr} has no 0-or-1 value at its kink")
        return f"({self._print(step_relation(u, at_zero))}).astype(" \
               f"{self._settings['dtype_of']}.dtype)"

    def _print_Piecewise(self, expr):
        (value, condition), rest = expr.args[0], expr.args[1:]
        if condition is sp.true:
            return self._print(value)
        if not rest:
            raise CodegenError("", f"{expr} is undefined where no condition holds")
        otherwise = self._print(sp.Piecewise(*rest))
        return f"np.where({self._print(condition)}, {self._print(value)}, {otherwise})"

    def _print_And(self, expr):
        return " & ".join(f"({self._print(a)})" for a in sorted(expr.args, key=sp.default_sort_key))

    def _pairwise(self, function: str, args) -> str:
        printed = [self._print(a) for a in args]
        text = printed[0]
        for other in printed[1:]:
            text = f"{function}({text}, {other})"
        return text

    def _print_Abs(self, expr):
        return f"np.abs({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return self._pairwise("np.maximum", expr.args)

    def _print_Min(self, expr):
        return self._pairwise("np.minimum", expr.args)

    # --- array operations (symnet.codegen.array_ops) -----------------------------------------

    # reductions are the array's own methods: np.sum(a, ...) and np.max(a, ...) go through
    # a Python wrapper that costs 2-4 us a call, most of a (64, 10) row sum (measured here)

    def _reduction(self, expr, method: str, arguments: str = "") -> str:
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Func'], strict=True)}" \
               f".{method}({arguments})"

    def _print_RowSum(self, expr):
        return self._reduction(expr, "sum", "axis=1, keepdims=True")

    def _print_TotalSum(self, expr):
        if expr.args[0].is_number:      # a Python number has no .sum()
            return f"np.sum({self._print(expr.args[0])})"
        return self._reduction(expr, "sum")

    def _print_RowMax(self, expr):
        return self._reduction(expr, "max", "axis=1, keepdims=True")

    def _print_TakeAlong(self, expr):
        array, index = (self._print(a) for a in expr.args)
        return f"np.take_along_axis({array}, {index}[:, None], axis=1)"

    def _print_OneHot(self, expr):
        index, like = (self._print(a) for a in expr.args)
        return f"(np.arange({like}.shape[1]) == {index}[:, None]).astype({like}.dtype)"

    def _print_OnesLike(self, expr):
        return f"np.ones_like({self._print(expr.args[0])})"

    def _print_SavedMask(self, expr):
        mask, like = (self._print(a) for a in expr.args)
        return f"{mask}.astype({like}.dtype)"

    def _print_ClassCount(self, expr):
        return f"{self._print(expr.args[0])}.shape[1]"

    # --- matrix operations (layers) -------------------------------------------------------

    def _print_MatProd(self, expr):
        left, right = expr.args
        # X @ W1 @ W2 chains to the left; anything looser than a symbol or a call, and a
        # product on the right, is parenthesised: (dA*mask) @ W.T, A @ (B @ C)
        shown_left = self._print(left) if isinstance(left, MatProd) \
            else self.parenthesize(left, PRECEDENCE["Mul"])
        return f"{shown_left} @ {self.parenthesize(right, PRECEDENCE['Mul'])}"

    def _print_Transposed(self, expr):
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Func'], strict=True)}.T"

    def _print_ColSum(self, expr):
        return self._reduction(expr, "sum", "axis=0, keepdims=True")

    # --- stable forms --------------------------------------------------------------------

    def _stable_form(self, expr):
        return expr.row.spell("numpy", printed_operands(self, expr.args))

    # by name: sympy looks up no base class's _print_X for a Function subclass
    _print_Logistic = _print_Softplus = _print_Expm1 = _print_LogOrZero = _stable_form

    def _not_lowered(self, expr):
        kind = type(expr).__name__
        raise CodegenError("", f"{NOT_LOWERED[kind]} ({expr}) reached the printer; lowering "
                           f"should have replaced it")

    _print_Indexed = _print_Sum = _print_KroneckerDelta = _not_lowered
    _print_LogSumExp = _print_Softmax = _print_Derivative = _not_lowered

    # --- a tensor layer's array nodes (symnet.index.arrays), alike in every target ----------

    def _print_Array(self, expr):
        return expr.name

    def _axis_reduction(self, expr):
        body, axis = expr.args
        axis_word, keep_word = self.axis_keywords
        return f"{self.parenthesize(body, PRECEDENCE['Func'], strict=True)}" \
               f".{self.reduction_methods[type(expr).__name__]}({axis_word}={int(axis)}, " \
               f"{keep_word}=True)"

    _print_AxisSum = _print_AxisMean = _print_AxisMax = _axis_reduction

    def _print_KeepDims(self, expr):
        body, axis, ndim = expr.args
        slots = ", ".join("None" if n == axis else ":" for n in range(int(ndim)))
        return f"{self.parenthesize(body, PRECEDENCE['Func'], strict=True)}[{slots}]"

def numpy_code(expr: sp.Expr, names: dict | None = None, dtype_of: str = "x") -> str:
    """The numpy source of one lowered expression."""
    printer = NumpyPrinter({"names": dict(names or {}), "dtype_of": dtype_of,
                            "fully_qualified_modules": True})
    return printer.doprint(expr)


#: (printer class, extra settings) that a module's statements are printed with while
#: symnet.codegen.targets lowers it for torch or jax; None: numpy. numpy_code itself always
#: prints numpy (finite.py evaluates what it prints).
TARGET_PRINTER: ContextVar = ContextVar("target_printer", default=None)


def statement_code(expr: sp.Expr, names: dict | None = None, dtype_of: str = "x") -> str:
    """The source of one lowered statement of a module, in the target being generated."""
    chosen = TARGET_PRINTER.get()
    if chosen is None:
        return numpy_code(expr, names, dtype_of)
    printer_class, settings = chosen
    return printer_class({"names": dict(names or {}), "dtype_of": dtype_of,
                          "fully_qualified_modules": True, **settings}).doprint(expr)


def native_form(form: type) -> bool:
    """Whether the target being generated computes a stable form (Logistic) with a fused
    function of its own: lowering then keeps the form whole for its printer."""
    chosen = TARGET_PRINTER.get()
    return chosen is not None and form.__name__ in chosen[0].native_forms


def array_code(name: str, like: str) -> str:
    """`name` as an array of `like`'s dtype, in the target being generated."""
    chosen = TARGET_PRINTER.get()
    return (NumpyPrinter if chosen is None else chosen[0]).array_like(name, like)
