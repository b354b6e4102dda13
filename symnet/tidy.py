"""A derivative as a person writes it: the shortest of a few bounded rewrites.

sympy's derivative of a product of powers is the product rule's sum, each term holding
most of the product again; a person factors it (x^2 (1 - x)^3 -> x (1 - x)^2 (2 - 5x)).
`tidy` tries, each within a time bound, and keeps the form with the fewest operations
(sympy's count_ops):

* the derivative as it comes and with common factors pulled out;
* factoring, with steps, vector entries, sums and function applications held as symbols
  (sympy's factor would open them up), and a second time with each 1 - tanh(u)^2 held
  too: it is tanh's own derivative, and factoring it into (1 - tanh)(1 + tanh) hides it;
* sympy's simplify, its result also brought back into the declaration's own terms by
  the identities of the functions it rewrites into (1/cosh(u)^2 = 1 - tanh(u)^2); a
  form using a function the derivative did not is refused (cosh, sinh);
* a derivative with kinks as the value on the left of them plus the jump at each
  (Huber's -delta + (r + delta) [r >= -delta] - (r - delta) [r > delta]), when its steps
  split it into cases of one variable;
* each with a leading minus sign absorbed by a factor (-x (x - 1) -> x (1 - x)).
"""

from __future__ import annotations

import sympy as sp

from symnet.algebra import (
    absorb_sign,
    clean_steps,
    indicator,
    linear_parts,
    piecewise_to_steps,
    split_at_steps,
)
from symnet.timeout import within

SIMPLIFY_SECONDS = 5.0


def tidy(expr: sp.Expr) -> sp.Expr:
    """A light, bounded simplification that keeps steps explicit."""
    expr = clean_steps(piecewise_to_steps(expr))
    candidates = [expr, sp.factor_terms(expr)]
    if expr.has(sp.Heaviside) and not expr.has(sp.Sum):
        candidates.append(_idempotent_steps(sp.expand(expr)))
        candidates.append(within(SIMPLIFY_SECONDS, lambda: by_jumps(expr), None))
    candidates.append(within(SIMPLIFY_SECONDS, lambda: factored(expr), None))
    candidates.append(within(SIMPLIFY_SECONDS, lambda: _factored_with_tanh_primes(expr), None))
    candidates.append(within(SIMPLIFY_SECONDS, lambda: _simplify_around_steps(expr), None))
    kinds = _function_kinds(expr)
    forms = [absorb_sign(clean_steps(c)) for c in candidates if c is not None]
    # simplify may trade e^-x for cosh(x/2): keep only forms in the declaration's own terms
    forms = [form for f in forms for form in (f, in_own_terms(f))
             if _function_kinds(form) <= kinds]
    return min(forms, key=lambda e: (sp.count_ops(e), sp.default_sort_key(e)))


def in_own_terms(expr: sp.Expr) -> sp.Expr:
    """expr with 1/cosh(u)^2 as 1 - tanh(u)^2, tanh's derivative, where simplify wrote
    the one for the other; a minus sign absorbed."""
    return absorb_sign(expr.replace(
        lambda e: e.is_Pow and isinstance(e.base, sp.cosh) and e.exp.is_even
        and e.exp.is_negative,
        lambda e: (1 - sp.tanh(e.base.args[0]) ** 2) ** (-e.exp / 2)))


# --- factoring ---------------------------------------------------------------------------


def factored(expr: sp.Expr) -> sp.Expr:
    """sympy's factor with every step, vector entry, sum and function application held
    as one symbol: factor has no rule for them and would expand or factor inside each."""
    symbols: dict = {}

    def hold(e):
        if isinstance(e, (sp.Function, sp.Indexed, sp.Sum)):
            if e not in symbols:
                symbols[e] = sp.Dummy(**_facts(e))
            return symbols[e]
        if isinstance(e, (sp.Add, sp.Mul, sp.Pow)):   # never a sum's body: its index is bound
            return e.func(*[hold(a) for a in e.args])
        return e

    return sp.factor(hold(expr)).xreplace({d: e for e, d in symbols.items()})


def _facts(e: sp.Expr) -> dict:
    """What sympy knows of e's sign and reality, for the symbol that stands in for it."""
    return {fact: value for fact in ("real", "positive", "nonnegative", "integer")
            if (value := getattr(e, f"is_{fact}")) is not None}


def with_tanh_primes(expr: sp.Expr) -> tuple[sp.Expr, dict]:
    """expr with each c - c tanh(u)^2 in a sum as c D(u) for a symbol D(u) that stands for
    1 - tanh(u)^2, tanh's derivative (the chain rule writes it so, and sympy distributes
    the factor c over it), and the map back from the symbols."""
    primes: dict = {}

    def fold(total: sp.Expr) -> sp.Expr:
        constant, rest = total.as_coeff_Add()
        if constant == 0:
            return total
        for term in sp.Add.make_args(rest):
            coefficient, factor = term.as_coeff_Mul()
            if coefficient == -constant and factor.is_Pow and factor.exp == 2 \
                    and isinstance(factor.base, sp.tanh):
                prime = primes.setdefault(1 - factor, sp.Dummy("D", positive=True))
                return constant * prime + rest - term
        return total

    return expr.replace(lambda e: e.is_Add, fold), {d: e for e, d in primes.items()}


def _factored_with_tanh_primes(expr: sp.Expr) -> sp.Expr | None:
    folded, back = with_tanh_primes(expr)
    return factored(folded).xreplace(back) if back else None


# --- sympy's simplify --------------------------------------------------------------------


def _simplify_around_steps(expr: sp.Expr) -> sp.Expr:
    """sympy's simplify with each step H(u) and vector entry s[k] outside any sum held as
    one symbol (of the same assumptions): simplify has no rule for either, but would
    simplify inside every one of them (most of its time on huber's gradient)."""
    symbols = {}

    def hold(e):
        if isinstance(e, (sp.Heaviside, sp.Indexed)):
            if e not in symbols:
                symbols[e] = sp.Dummy(**e.assumptions0)
            return symbols[e]
        if isinstance(e, (sp.Add, sp.Mul, sp.Pow)):   # never a sum's body: its index is bound
            return e.func(*[hold(a) for a in e.args])
        return e

    held = hold(expr)
    return sp.simplify(held).xreplace({d: e for e, d in symbols.items()})


def _function_kinds(expr: sp.Expr) -> set:
    """The kinds of functions and big operators an expression uses."""
    kinds = {type(f) for f in expr.atoms(sp.Function)}
    return kinds | {kind for kind in (sp.Product, sp.Integral, sp.Piecewise) if expr.has(kind)}


# --- steps -------------------------------------------------------------------------------


def _idempotent_steps(expr: sp.Expr) -> sp.Expr:
    """H(u)^n as H(u): a step is 0 or 1, so the products an expanded chain of kinks makes
    ((1 - [x + 1 > 0])*[1 - x > 0]^2 ...) collapse (hardtanh': [x + 1 > 0]*[1 - x > 0])."""
    return expr.replace(lambda e: e.is_Pow and isinstance(e.base, sp.Heaviside)
                        and e.exp.is_Integer and e.exp > 0, lambda e: e.base)


def by_jumps(expr: sp.Expr) -> sp.Expr | None:
    """expr as its value below every kink of one variable v plus, at each kink b, the
    jump there times [v > b] (or [v >= b]): Huber's gradient, 13 products of steps as
    its cases nest, is -delta + (r + delta) [r >= -delta] - (r - delta) [r > delta]. A
    kink where expr is continuous drops out (the |r| inside Huber's at r = 0). None when
    the steps do not split expr into cases of one variable (`split_at_steps`) or the
    value at a kink is neither side's."""
    cases = split_at_steps(expr)
    if cases is None:
        return None
    variable, pieces = cases.variable, [_shortest(p) for p in cases.pieces]
    total = pieces[0]
    for point, below, above in zip(cases.breakpoints, pieces[:-1], pieces[1:], strict=True):
        jump = _shortest(above - below)
        if jump == 0:
            continue
        closed = _closed_above(expr, variable, point, below, jump)
        if closed is None:
            return None
        total += jump * indicator((sp.Ge if closed else sp.Gt)(variable, point))
    return total


def _shortest(expr: sp.Expr) -> sp.Expr:
    """A piece between kinks, expanded or factored, whichever is shorter."""
    return min((sp.expand(expr), sp.factor_terms(expr), factored(expr)),
               key=lambda e: (sp.count_ops(e), sp.default_sort_key(e)))


def _closed_above(expr, variable, point, below, jump) -> bool | None:
    """Whether expr at the kink `point` takes the value from above it (the step there is
    [v >= point]) rather than from below ([v > point]); None when it takes neither. Where
    expr is continuous either holds: the step keeps the convention of the declaration's
    own step at that point."""
    at_kink = jump.subs(variable, point)
    if sp.simplify(at_kink) == 0:
        return _declared_closed_above(expr, variable, point)
    share = sp.simplify((expr.subs(variable, point) - below.subs(variable, point)) / at_kink)
    return {sp.Integer(0): False, sp.Integer(1): True}.get(share)


def _declared_closed_above(expr, variable, point) -> bool:
    """Whether a step of expr at `point` is 1 there while rising ([v >= point]) or 0 there
    while falling ([point - v > 0]): both are 1 at the kink and above it."""
    for step in sorted(expr.atoms(sp.Heaviside), key=sp.default_sort_key):
        u, at_zero = step.args
        parts = linear_parts(u, variable)
        if parts is not None and parts[0].is_number \
                and sp.simplify(u.subs(variable, point)) == 0:
            return bool(at_zero == 1) == bool(parts[0] > 0)
    return False
