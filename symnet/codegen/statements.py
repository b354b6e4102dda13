"""Straight-line statements: common subexpressions named for what they are, and every
statement placed right before the first one that needs it. Pure functions."""

from __future__ import annotations

import keyword
import re
import unicodedata

import sympy as sp

from symnet.codegen.array_ops import Logistic, MatProd, RowSum, SavedMask, TotalSum, Transposed
from symnet.codegen.printer import step_relation

#: how a comparison reads in a name
RELATIONS = {sp.StrictGreaterThan: "gt", sp.GreaterThan: "ge", sp.StrictLessThan: "lt",
             sp.LessThan: "le"}


def unique(name: str, taken: set) -> str:
    """`name` as a fresh identifier: not a keyword, not taken (then taken)."""
    # in the form Python reads it (NFKC): a parameter 𝐱 beside an input x is x twice
    name = re.sub(r"\W", "_", unicodedata.normalize("NFKC", name))
    if not name.isidentifier():
        name = "v_" + name
    base, n = name, 2
    while keyword.iskeyword(name) or name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def fresh_identifiers(names, reserved: set, differentiated=()) -> list[str]:
    """Each of `names` as a fresh identifier (`unique`), in order, none of them d + the
    identifier of a name in `differentiated`, under which the code returns its gradient
    (a parameter dx beside an input x would be overwritten by x's gradient)."""
    def attempt(taken: set) -> list[str]:
        return [unique(name, taken) for name in names]

    found = attempt(set(reserved))
    gradients = {"d" + found[n] for n, name in enumerate(names) if name in differentiated}
    if gradients & set(found):
        found = attempt(set(reserved) | gradients)
    return found


def kink_arguments(exprs) -> set:
    """The expressions whose sign switches a kink: arguments of steps, max and min."""
    found = set()
    for expr in exprs:
        for kink in expr.atoms(sp.Heaviside, sp.Max, sp.Min):
            arguments = kink.args[:1] if isinstance(kink, sp.Heaviside) else kink.args
            found |= {a for a in arguments if not a.is_number}
    return found


def readable_name(value: sp.Expr, is_kink: bool) -> str:
    """A name for a temporary that says what it holds (`value` in terms of the names
    given so far)."""
    if is_kink:
        return "margin"
    inner = value.args[0] if value.args else None
    named = isinstance(inner, sp.Symbol)
    if isinstance(value, sp.Heaviside):
        relation = "nonnegative" if value.args[1] == 1 else "positive"
        if named:
            return f"{inner}_{relation}"
        # [a - b >= 0] reads as a_ge_b, the comparison it is
        return _comparison_name(step_relation(*value.args)) or relation
    if isinstance(value, SavedMask):   # a saved boolean mask as 0/1 numbers
        return f"{inner}_mask" if named else "mask"
    if isinstance(value, (RowSum, TotalSum)):
        return f"sum_{inner}" if named else "total"
    if isinstance(value, Logistic):
        return f"{value.row.name}_{inner}" if named else value.row.name
    if isinstance(value, sp.exp):
        magnitude = -inner
        if isinstance(magnitude, sp.Abs) and isinstance(magnitude.args[0], sp.Symbol):
            return f"exp_neg_abs_{magnitude.args[0]}"
        return f"exp_{inner}" if named else "exp_term"
    if isinstance(value, MatProd):
        factors = [f"{a.args[0]}T" if isinstance(a, Transposed) else str(a) for a in value.args]
        named = all(isinstance(a, sp.Symbol) or is_view(a) for a in value.args)
        return "_".join(factors) if named else "product"
    if type(value) in RELATIONS:
        return _comparison_name(value) or "condition"
    difference = _difference(value)
    return f"{difference[0]}_minus_{difference[1]}" if difference else "tmp"


def _difference(value: sp.Expr):
    """(a, b) for a - b with a and b named arrays, else None."""
    if not (value.is_Add and len(value.args) == 2):
        return None
    positive = [a for a in value.args if isinstance(a, sp.Symbol)]
    negative = [-a for a in value.args if isinstance(-a, sp.Symbol)]
    return (positive[0], negative[0]) if len(positive) == 1 and len(negative) == 1 else None


def _comparison_name(value: sp.Expr) -> str | None:
    """a - b >= 0 -> a_ge_b; x > 0 -> x_gt_0."""
    lhs, rhs = value.args
    if rhs == 0 and _difference(lhs):
        lhs, rhs = _difference(lhs)
    if all(isinstance(a, sp.Symbol) or a.is_Integer for a in (lhs, rhs)):
        return f"{lhs}_{RELATIONS[type(value)]}_{rhs}".replace("-", "minus")
    return None


def is_view(value: sp.Expr) -> bool:
    """X.T: a view of an array, as cheap to write again as a name (X.T @ dA twice)."""
    return isinstance(value, Transposed) and isinstance(value.args[0], sp.Symbol)


def common_subexpressions(exprs: list, taken: set) -> tuple[dict, list]:
    """({temporary: value} in computing order, exprs in terms of the temporaries)."""
    kinks = kink_arguments(exprs)
    replacements, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_cse", cls=sp.Dummy),
                                   order="canonical")
    originals, renamed, definitions = {}, {}, {}
    for temporary, value in replacements:
        originals[temporary] = value.xreplace(originals)
        value = value.xreplace(renamed)
        if is_view(value) or value.is_number:   # a constant reads best where it is used
            renamed[temporary] = value
            continue
        name = readable_name(value, originals[temporary] in kinks)
        symbol = sp.Symbol(unique(name, taken), real=True)
        renamed[temporary] = symbol
        definitions[symbol] = value
    return definitions, [e.xreplace(renamed) for e in reduced]


def schedule(definitions: dict, outputs: list) -> list[tuple[str, sp.Expr]]:
    """(target, value) statements: each output of `outputs` ((name, value) pairs, in
    order) preceded by the definitions it needs that are not computed yet."""
    order = list(definitions)
    done, statements = set(), []

    def need(expr):
        for symbol in sorted(expr.free_symbols & set(order), key=order.index):
            if symbol not in done:
                done.add(symbol)
                need(definitions[symbol])
                statements.append((symbol.name, definitions[symbol]))

    for target, value in outputs:
        need(value)
        statements.append((target, value))
    return statements


def shared_exponentials(nodes: dict, taken: set) -> dict:
    """Named arrays {symbol: value} with each exp(u - log_z), where log_z = log(z) and z
    sums exp(u), written exp(u)/z, exp(u) and z named and computed once: a softmax's
    probabilities from the exponentials its normaliser summed, not a second exp (numpy's
    float64 exp is scalar code on AVX2 machines: at C = 10 classes it is the loss's cost)."""
    found = dict(nodes)
    for symbol, value in nodes.items():
        if not isinstance(value, sp.exp):
            continue
        for log_name, log_value in nodes.items():
            u = sp.expand(value.args[0] + log_name)
            inner = log_value.args[0] if isinstance(log_value, sp.log) else None
            if inner is None or u.has(log_name) or not inner.has(sp.exp(u)):
                continue
            exp_u = sp.Symbol(unique(f"exp_{u}" if isinstance(u, sp.Symbol) else "exp_term",
                                     taken), real=True)
            norm = sp.Symbol(unique(log_name.name.removeprefix("log_") or "norm", taken),
                             real=True)
            ordered = {}
            for s, v in found.items():
                if s == log_name:
                    ordered[exp_u], ordered[norm] = sp.exp(u), inner.xreplace({sp.exp(u): exp_u})
                    v = sp.log(norm)
                ordered[s] = exp_u / norm if s == symbol else v
            found = ordered
            break
    return found
