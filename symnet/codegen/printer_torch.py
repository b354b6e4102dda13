"""Lowered expressions -> PyTorch source: symnet's numpy printer with torch's spellings.

The lowering is the numpy modules' own (`lower.py`); only the spelling differs, and only
where torch's API does (sympy's `sympy.printing.pytorch.TorchPrinter` shows the same
differences):

* a function numpy's printer calls (``numpy.exp``) is looked up in TORCH_FUNCTIONS, one it
  takes from Python's math module (``math.erf``, which numpy lacks) in TORCH_BEYOND_NUMPY;
  one with no torch spelling there is refused with a CodegenError naming it, never guessed;
* reductions take ``dim=``/``keepdim=``, a row max is ``amax``, a mask is ``.to(dtype)``;
* a product's Python numbers are one factor, multiplied in once (``d*(2/N)``): torch runs
  each operation as its own pass over the tensor;
* ``torch.maximum`` and ``torch.sqrt`` take tensors only: against a Python number (a
  constant or a declared parameter, setting ``scalars``) a bound is ``torch.clamp``, a
  root of a number ``** 0.5``;
* ``np.logaddexp(0, u)`` is ``torch.logaddexp(u, x.new_zeros(()))``: a zero of the input's
  dtype and device (``F.softplus`` returns u itself past its threshold 20, off by 2e-9);
* a new array (a one-hot mask, a target) is made on the input's device, in its dtype.

No constant is a float64 tensor: numbers stay Python numbers, which take a tensor's dtype.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from symnet.codegen.array_ops import SavedMask
from symnet.codegen.printer import NumpyPrinter, no_spelling

#: numpy's name (as sympy's NumPy printer calls it) -> torch's
TORCH_FUNCTIONS = {
    "abs": "torch.abs", "sqrt": "torch.sqrt", "exp": "torch.exp", "exp2": "torch.exp2",
    "expm1": "torch.expm1", "log": "torch.log", "log2": "torch.log2", "log10": "torch.log10",
    "log1p": "torch.log1p", "logaddexp": "torch.logaddexp", "logaddexp2": "torch.logaddexp2",
    "sin": "torch.sin", "cos": "torch.cos", "tan": "torch.tan", "arcsin": "torch.asin",
    "arccos": "torch.acos", "arctan": "torch.atan", "arctan2": "torch.atan2",
    "sinh": "torch.sinh", "cosh": "torch.cosh", "tanh": "torch.tanh", "arcsinh": "torch.asinh",
    "arccosh": "torch.acosh", "arctanh": "torch.atanh", "sign": "torch.sign",
    "floor": "torch.floor", "ceil": "torch.ceil", "hypot": "torch.hypot", "sinc": "torch.sinc",
    "mod": "torch.remainder", "isnan": "torch.isnan", "isinf": "torch.isinf",
    # constants: Python floats
    "pi": "torch.pi", "e": "torch.e", "inf": "torch.inf", "nan": "torch.nan",
}
#: what numpy lacks and sympy's numpy printer takes from Python's math module (which takes
#: no arrays; the numpy printer refuses it) -> torch's elementwise function
TORCH_BEYOND_NUMPY = {"math.erf": "torch.erf", "math.erfc": "torch.erfc",
                      "math.lgamma": "torch.lgamma"}


class TorchPrinter(NumpyPrinter):
    """The numpy printer, spelled for torch; see the module docstring."""

    target = "torch"
    array_methods = {"copy": "clone", "transpose": "permute"}
    axis_keywords = ("dim", "keepdim")
    reduction_methods = {"AxisSum": "sum", "AxisMean": "mean", "AxisMax": "amax"}
    native_forms = frozenset({"Logistic"})

    @staticmethod
    def array_like(name: str, like: str) -> str:
        return f"torch.as_tensor({name}, dtype={like}.dtype, device={like}.device)"

    def _module_format(self, fqn, register=True):
        module, _, name = fqn.partition(".")
        if module == "numpy" and name in TORCH_FUNCTIONS:
            return TORCH_FUNCTIONS[name]
        if fqn in TORCH_BEYOND_NUMPY:
            return TORCH_BEYOND_NUMPY[fqn]
        raise no_spelling("torch", f"{name} ({fqn} in numpy)")

    def _is_scalar(self, expr) -> bool:
        """Whether expr is a Python number at run time: a constant, a declared parameter or
        the batch size N (``N = s.shape[0]``, a Python int)."""
        return all(s.name in self._settings["scalars"] or s.name == "N"
                   for s in expr.free_symbols)

    def _print_Mul(self, expr):
        """A product's Python numbers as one factor: ``2*d/N`` is two passes over the
        tensor in torch (no fusion), ``d*(2/N)`` one."""
        numbers = [f for f in expr.args if self._is_scalar(f)]
        tensors = [f for f in expr.args if not self._is_scalar(f)]
        masks = [f for f in tensors if isinstance(f, SavedMask)]
        if masks and len(tensors) > len(masks):
            # a float tensor times a bool one is the float's dtype: no cast, one pass
            others = sp.Mul(*[f for f in expr.args if f not in masks])
            shown = "*".join(self._print(m.args[0]) for m in masks)
            return f"{self.parenthesize(others, PRECEDENCE['Mul'])}*{shown}"
        if len(numbers) < 2 or not tensors:
            return super()._print_Mul(expr)
        scale = sp.Mul(*numbers)
        shown = self.parenthesize(sp.Mul(*tensors), PRECEDENCE["Mul"])
        return f"{shown}*({self._print(scale)})"

    def _print_Pow(self, expr, rational=False):
        base, power = expr.as_base_exp()
        if power == sp.Rational(1, 2) and self._is_scalar(base):
            return f"{self.parenthesize(base, PRECEDENCE['Pow'])}**0.5"
        if power == sp.Rational(1, 2):
            return f"torch.sqrt({self._print(base)})"
        return super()._print_Pow(expr, rational=rational)

    def _print_Abs(self, expr):
        function = "abs" if self._is_scalar(expr.args[0]) else "torch.abs"
        return f"{function}({self._print(expr.args[0])})"

    def _bound(self, expr, pairwise: str, python: str, side: str) -> str:
        """Max or Min: tensors pairwise with torch.maximum/minimum, then clamped by the
        Python numbers among the arguments."""
        tensors = [a for a in expr.args if not self._is_scalar(a)]
        numbers = [a for a in expr.args if self._is_scalar(a)]
        bound = self._pairwise(python, numbers) if numbers else None
        if not tensors:
            return bound
        text = self._pairwise(pairwise, tensors)
        return f"torch.clamp({text}, {side}={bound})" if numbers else text

    def _print_Max(self, expr):
        return self._bound(expr, "torch.maximum", "max", "min")

    def _print_Min(self, expr):
        return self._bound(expr, "torch.minimum", "min", "max")

    def _print_Heaviside(self, expr):
        mask = super()._print_Heaviside(expr)   # (u > 0).astype(x.dtype)
        return mask.removesuffix(f".astype({self._settings['dtype_of']}.dtype)") \
            + f".to({self._settings['dtype_of']}.dtype)"

    def _print_Piecewise(self, expr):
        (value, condition), rest = expr.args[0], expr.args[1:]
        if condition is sp.true or not rest:
            return super()._print_Piecewise(expr)
        otherwise = sp.Piecewise(*rest)
        shown = self._print(value)
        if self._is_scalar(value) and self._is_scalar(otherwise):
            # torch.where of two Python numbers is a tensor of torch's default dtype
            shown = f"{self._settings['dtype_of']}.new_tensor({shown})"
        return f"torch.where({self._print(condition)}, {shown}, {self._print(otherwise)})"

    # --- array operations ----------------------------------------------------------------

    def _print_RowSum(self, expr):
        return self._reduction(expr, "sum", "dim=1, keepdim=True")

    def _print_ColSum(self, expr):
        return self._reduction(expr, "sum", "dim=0, keepdim=True")

    def _print_RowMax(self, expr):
        return self._reduction(expr, "amax", "dim=1, keepdim=True")

    def _print_TotalSum(self, expr):
        if expr.args[0].is_number:      # a Python number has no .sum(): it is its own sum
            return self._print(expr.args[0])
        return self._reduction(expr, "sum")

    def _print_TakeAlong(self, expr):
        array, index = (self._print(a) for a in expr.args)
        return f"torch.take_along_dim({array}, {index}[:, None], dim=1)"

    def _print_OneHot(self, expr):
        index, like = (self._print(a) for a in expr.args)
        return f"(torch.arange({like}.shape[1], device={like}.device) == {index}[:, None])" \
               f".to({like}.dtype)"

    def _print_SavedMask(self, expr):
        mask, like = (self._print(a) for a in expr.args)
        return f"{mask}.to({like}.dtype)"

    def _print_OnesLike(self, expr):
        return f"torch.ones_like({self._print(expr.args[0])})"

    # --- stable forms --------------------------------------------------------------------

    def _print_Expm1(self, expr):
        return f"torch.expm1({self._print(expr.args[0])})"

    def _print_Logistic(self, expr):
        # torch's own: one fused pass, finite for any input, and its backward is not ours
        return f"torch.sigmoid({self._print(expr.args[0])})"

    def _print_Softplus(self, expr):
        return f"torch.logaddexp({self._print(expr.args[0])}, " \
               f"{self._settings['dtype_of']}.new_zeros(()))"

    def _print_LogOrZero(self, expr):
        t = self._print(expr.args[0])
        return f"torch.log(torch.where({t} == 0, 1, {t}))"

    # --- a tensor layer's array nodes (symnet.index.arrays) ------------------------------

    def _print_Einsum(self, expr):
        spec, *operands = expr.args   # torch contracts in the best order itself (opt_einsum)
        return f"torch.einsum('{spec.name}', {', '.join(self._print(o) for o in operands)})"

    def _print_OnesRow(self, expr):
        size, like = expr.args
        shown = self._print(like)
        return f"torch.ones({self._print(size)}, dtype={shown}.dtype, device={shown}.device)"
