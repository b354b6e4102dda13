"""The checks every declaration shares, at declaration: its name, its scalar expressions,
its real symbols and parameters; each failure is one DeclarationError naming the
declaration (symnet.declare.scalar, layer, network and tensor read them)."""

from __future__ import annotations

import keyword

import sympy as sp

from symnet.errors import DeclarationError


def scalar_expr(name: str, what: str, value) -> sp.Expr:
    """`value` as a finite scalar sympy expression, or a DeclarationError saying what it is."""
    try:
        expr = sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError) as exc:
        raise DeclarationError(name, f"{what} is not a sympy expression: {value!r}") from exc
    if isinstance(expr, sp.MatrixBase) or getattr(expr, "is_Matrix", False):
        raise DeclarationError(
            name, f"{what} has the wrong shape: expected a scalar expression, got a "
            f"{expr.shape[0]}x{expr.shape[1]} matrix")
    if not isinstance(expr, sp.Expr):
        raise DeclarationError(name, f"{what} is not a scalar expression: {value!r}")
    require_finite(name, what, expr)
    return expr


def require_finite(name: str, what: str, expr: sp.Expr) -> None:
    """No nan, zoo (complex infinity) or oo in a declared expression: a claim about one is
    neither true nor false, and a module computing one passes NaN on quietly."""
    for atom in (sp.nan, sp.zoo, sp.oo, -sp.oo):
        if expr.has(atom):
            raise DeclarationError(name, f"{what} holds {atom}, which is not a finite number "
                                         f"(in {expr})")


def plain_symbols(expr: sp.Expr) -> set:
    """Free Symbols, without the Indexed entries sympy also counts as free."""
    return {s for s in expr.free_symbols if isinstance(s, sp.Symbol)}


def listed(symbols) -> str:
    """Names sorted and joined with commas, as an error message lists them."""
    return ", ".join(sorted(str(s) for s in symbols))


def require_real(name: str, role: str, symbol) -> None:
    """An input or parameter must be a real Symbol: the derivatives are proved over the
    reals, and a plain sympy Symbol may be complex."""
    if not isinstance(symbol, sp.Symbol):
        raise DeclarationError(name, f"{role} must be a sympy Symbol, got {symbol!r}")
    if symbol.is_real is not True:
        raise DeclarationError(
            name, f"{role} {symbol} is not declared real; write "
            f"sympy.Symbol({str(symbol)!r}, real=True)")


def checked_params(name: str, params) -> dict:
    """Parameters as {real Symbol: numeric default}, sorted by name (argument order)."""
    params = dict(params or {})
    for symbol, default in params.items():
        require_real(name, "parameter", symbol)
        value = sp.sympify(default)
        if not value.is_number:
            raise DeclarationError(name, f"parameter {symbol} needs a numeric default, "
                                   f"got {default!r}")
        params[symbol] = value
    return dict(sorted(params.items(), key=lambda kv: kv[0].name))


def check_name(name) -> str:
    """A declaration's name, which becomes a module's file name and a function's name: a
    Python identifier, not a keyword and not a dunder (`__init__` would replace a package's
    own `__init__.py` in the generated tree)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise DeclarationError(str(name), "a declaration's name must be a Python identifier")
    if keyword.iskeyword(name) or (name.startswith("__") and name.endswith("__")):
        raise DeclarationError(name, "a declaration's name may not be a Python keyword or a "
                                     "dunder name like __init__: it names a generated module")
    return name


def undefined_functions(expr: sp.Expr) -> set:
    """Applied functions sympy knows nothing of (f(x) for f = sympy.Function("f"))."""
    return {f for f in expr.atoms(sp.core.function.AppliedUndef)}


def size(name: str) -> sp.Symbol:
    """A symbolic size (a matrix's rows, an index's range): a positive integer symbol, the
    same symbol at every level, so that a layer's N is a tensor layer's N."""
    return sp.Symbol(name, integer=True, positive=True)
