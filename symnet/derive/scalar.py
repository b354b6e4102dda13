"""Activations and losses -> their derivatives, in the closed form a person writes.

* An activation gets d out / d input for each input, with kinks as explicit steps, and
  where it is simpler, the same derivative in terms of the forward output `out`
  (sigma(1 - sigma), 1 - tanh^2), so backward can reuse the forward's cache.
* A loss or regulariser gets its gradient with respect to the entry s[k] of its score
  (or weight) vector, sums collapsed and constraints applied (softmax(s)[k] - y[k]).
* A Jacobian record gets d function(i) / d s[j].
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symnet.algebra import (
    absorb_sign,
    collapse_indexed,
    kinks_to_piecewise,
    linear_parts,
    piecewise_to_steps,
)
from symnet.declare.scalar import Activation, Jacobian, Loss
from symnet.derive.dispatch import derivation_of
from symnet.errors import DerivationError
from symnet.notation import ShowsAsLatex
from symnet.primitives import ScalarPrimitive, Softmax, in_softmax_terms, naive_form
from symnet.symbols import out as OUT
from symnet.target_kinds import CLASS_INDEX
from symnet.tidy import SIMPLIFY_SECONDS, tidy
from symnet.timeout import within


@dataclass(frozen=True)
class ActivationDerivation(ShowsAsLatex):
    declaration: Activation
    #: input -> d forward / d input, in terms of the inputs
    derivatives: dict
    #: input -> the same derivative in terms of `out` (and inputs only where needed),
    #: or None when that is not simpler
    in_output: dict


@dataclass(frozen=True)
class LossDerivation(ShowsAsLatex):
    declaration: Loss
    #: d forward / d s[k] in closed form
    gradient: sp.Expr
    #: the Jacobian records of the declaration, each with its derived Jacobian
    jacobians: tuple


def _branch_gap(pw: sp.Piecewise):
    """(condition, difference) where a branch of `pw` and the one after it disagree on the
    boundary of the branch's condition, or None when they all agree or it is unclear.

    At a root of a branch's boundary the next branch takes over unless an earlier branch
    rules there or the next one's condition is decidably false there (then another one
    does, and comparing with the next would refuse a continuous function)."""
    branches = pw.args
    for n in range(len(branches) - 1):
        (this, condition), (following, next_condition) = branches[n], branches[n + 1]
        if not isinstance(condition, sp.core.relational.Relational) \
                or isinstance(condition, (sp.Eq, sp.Ne)):
            continue
        difference = this - following
        for root in _roots(condition.lhs - condition.rhs):
            if any(_holds(earlier, root) is True for _, earlier in branches[:n]) \
                    or _holds(next_condition, root) is False:
                continue
            gap = within(SIMPLIFY_SECONDS,
                         lambda r=root, d=difference: sp.simplify(d.subs(r)), None)
            if gap is not None and gap.is_number and gap != 0:
                return condition, gap
    return None


def _holds(condition, point: dict) -> bool | None:
    """Whether `condition` holds at `point`: True, False, or None when sympy cannot tell."""
    value = condition.subs(point)
    return bool(value) if value in (sp.true, sp.false) else None


def _roots(expr: sp.Expr) -> list[dict]:
    """Points where expr = 0, solved for one of its real variables (a symbol or a vector's
    entry such as s[i], never the index i): directly for the first one expr is linear in
    (huber's delta - |s - y|: sympy's solve would first split the |.| into cases), else by
    sympy's solve for the first."""
    variables = sorted((a for a in expr.atoms(sp.Indexed) | expr.free_symbols
                        if (a.is_Symbol or a.is_Indexed) and a.is_real and not a.is_integer),
                       key=sp.default_sort_key)
    for variable in variables:
        parts = linear_parts(expr, variable)
        if parts is not None:
            slope, offset = parts
            return [{variable: -offset / slope}]
    if not variables:
        return []
    return within(SIMPLIFY_SECONDS, lambda: sp.solve(expr, variables[0], dict=True), [])


def check_continuous(name: str, expr: sp.Expr) -> None:
    """A Piecewise forward must not jump where its branches meet: its derivative would
    silently miss the jump (symnet handles continuous, piecewise-smooth functions)."""
    for pw in expr.atoms(sp.Piecewise):
        if len(pw.args) < 2:
            continue
        found = _branch_gap(pw)
        if found is not None:
            condition, gap = found
            raise DerivationError(name, f"the forward jumps by {gap} where {condition} "
                                  f"switches; symnet handles continuous, piecewise-smooth "
                                  f"functions")


def differentiate(name: str, expr: sp.Expr, wrt: sp.Expr) -> sp.Expr:
    """d expr / d wrt with kinks resolved as explicit steps; errors name the declaration."""
    check_continuous(name, expr)
    try:
        derivative = sp.diff(kinks_to_piecewise(expr), wrt)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise DerivationError(name, f"sympy cannot differentiate the forward with respect "
                              f"to {wrt}: {exc}") from exc
    if derivative.has(sp.Derivative):
        stuck = sorted(str(d) for d in derivative.atoms(sp.Derivative))
        raise DerivationError(name, f"sympy cannot differentiate {', '.join(stuck)}")
    if derivative.has(sp.DiracDelta):
        raise DerivationError(name, "the forward jumps (its derivative holds a Dirac delta); "
                              "symnet handles continuous, piecewise-smooth functions")
    try:
        return piecewise_to_steps(derivative)
    except ValueError as exc:
        raise DerivationError(name, str(exc)) from exc


# --- activations -------------------------------------------------------------------------


def in_terms_of_output(derivative: sp.Expr, forward: sp.Expr, variable: sp.Symbol):
    """The derivative written with `out` = forward, if that removes `variable`, is no more
    complex and is safe to compute from out; otherwise None.

    Safe means a polynomial in out (sigma' = out (1 - out), tanh' = 1 - out^2): a form
    such as softplus' = 1 - exp(-out), or (exp(out) - 1) exp(-out), would overflow or
    lose precision where the derivative in terms of x does not, so it is not offered."""
    for candidate in _output_candidates(derivative, forward, variable):
        if variable not in candidate.free_symbols and OUT in candidate.free_symbols \
                and candidate.is_polynomial(OUT) \
                and sp.count_ops(candidate) <= sp.count_ops(derivative):
            return absorb_sign(candidate)
    return None


def _output_candidates(derivative: sp.Expr, forward: sp.Expr, variable: sp.Symbol):
    """The derivative with the forward replaced by `out` where it appears as it is
    (1 - tanh(x)^2), then through each solution x = f^-1(out); a generator, since solving
    costs far more than the substitution and is not needed when that already works."""
    yield derivative.subs(forward, OUT)
    opaque, back = _opaque_primitives(forward)
    solutions = within(SIMPLIFY_SECONDS, lambda: sp.solve(sp.Eq(OUT, opaque), variable), [])
    for solution in solutions:
        solution = solution.replace(lambda e: getattr(e, "func", None) in back,
                                    lambda e: back[e.func](*e.args))
        yield within(SIMPLIFY_SECONDS,
                     lambda s=solution: sp.factor(sp.simplify(derivative.subs(variable, s))),
                     derivative)


def _opaque_primitives(forward: sp.Expr) -> tuple[sp.Expr, dict]:
    """The forward with each scalar primitive (softplus, sigmoid) as an opaque function
    with the same assumptions, and the map back. sympy cannot invert a primitive (it has
    no inverse) and sees it only through its derivative, which solve would derive afresh
    at each of its steps: with the stand-ins the same solve gives up (or succeeds) in a
    tenth of the time."""
    back = {}

    def stand_in(application):
        facts = {fact: value for fact in ("real", "positive")
                 if (value := getattr(application, f"is_{fact}")) is not None}
        function = sp.Function(f"_{type(application).__name__}", **facts)
        back[function] = type(application)
        return function(*application.args)

    return forward.replace(lambda e: isinstance(e, ScalarPrimitive), stand_in), back


def derive_activation(decl: Activation) -> ActivationDerivation:
    derivatives, in_output = {}, {}
    for variable in decl.inputs:
        derivative = tidy(differentiate(decl.name, decl.forward, variable))
        derivatives[variable] = derivative
        rewritten = None
        if len(decl.inputs) == 1 and not derivative.has(sp.Heaviside):
            rewritten = in_terms_of_output(derivative, decl.forward, variable)
        in_output[variable] = rewritten
    return ActivationDerivation(decl, derivatives, in_output)


# --- losses and regularisers -------------------------------------------------------------


def free_indices(decl: Loss, *indices) -> set:
    """The indices that name a position (k, a Jacobian's i and j, a class index t)."""
    found = set(indices)
    if decl.target_kind == CLASS_INDEX:
        found.add(decl.target)
    return found


def closed_form(decl: Loss, expr: sp.Expr, *indices) -> sp.Expr:
    """Collapse sums, apply the declaration's constraints, express softmax as softmax."""
    if decl.is_vector:
        positions = free_indices(decl, *indices)
        expr = sum_deltas(expr, positions, decl.size)
        expr = collapse_indexed(expr, positions, decl.constraints)
        expr = in_softmax_terms(expr, decl.scores, decl.size)
    return tidy(expr)


def sum_deltas(expr: sp.Expr, positions: set, size: sp.Expr) -> sp.Expr:
    """Sum(g(i)*KroneckerDelta(i, k), (i, 0, size - 1)) -> g(k) term by term, for a
    position k (always in range): what collapse_indexed's Sum.doit gives once it drops the
    range condition, without sympy's delta summation on every term of the expanded body
    (most of huber's derivation). Other terms stay in the sum, for collapse_indexed."""

    def collapse(total: sp.Sum) -> sp.Expr:
        if len(total.limits) != 1 or total.limits[0][1:] != (0, size - 1):
            return total
        index = total.limits[0][0]
        summed, kept = [], []
        for term in sp.Add.make_args(sp.expand(total.function)):
            position = _delta_position(term, index, positions)
            if position is None:
                kept.append(term)
            else:
                rest = term / sp.KroneckerDelta(index, position)
                summed.append(rest.xreplace({index: position}))
        if not summed:
            return total
        return sp.Add(*summed, *([sp.Sum(sp.Add(*kept), *total.limits)] if kept else []))

    return expr.replace(lambda e: isinstance(e, sp.Sum), collapse)


def _delta_position(term: sp.Expr, index: sp.Symbol, positions: set):
    """k when `term` is KroneckerDelta(index, k) times factors with no other delta on
    `index` and no inner sum that involves `index` (whose deltas collapse_indexed would
    sum first, giving another form); None otherwise."""
    deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.KroneckerDelta)
              and index in f.args]
    if len(deltas) != 1 or any(index in inner.free_symbols
                               or index in (limit[0] for limit in inner.limits)
                               for inner in term.atoms(sp.Sum)):
        return None
    first, second = deltas[0].args
    position = second if first == index else first
    return position if position in positions else None


def derive_gradient(decl: Loss, of: sp.Expr | None = None, wrt: sp.Expr | None = None):
    # A primitive is a function of the whole vector s: substituting s[i] = W_i . x in
    # `of` cannot reach inside it, so differentiate such an expression in naive form.
    of = decl.forward if of is None else naive_form(of)
    wrt = decl.wrt if wrt is None else wrt
    indices = wrt.indices if isinstance(wrt, sp.Indexed) else ()
    return closed_form(decl, differentiate(decl.name, of, wrt), *indices)


def derive_jacobian(decl: Loss, record: Jacobian) -> sp.Expr:
    wrt = decl.scores[record.col]
    derivative = differentiate(decl.name, record.function, wrt)
    return closed_form(decl, derivative, record.row, record.col)


def derive_loss(decl: Loss) -> LossDerivation:
    jacobians = tuple((record, derive_jacobian(decl, record))
                      for record in decl.hand if isinstance(record, Jacobian))
    return LossDerivation(decl, derive_gradient(decl), jacobians)


@derivation_of.register
def _(decl: Activation) -> ActivationDerivation:
    return derive_activation(decl)


@derivation_of.register
def _(decl: Loss) -> LossDerivation:
    return derive_loss(decl)


def softmax_legend(expr: sp.Expr) -> tuple[sp.Expr, dict]:
    """Show softmax(s)[k] as p[k], the way the lecture writes it; returns the legend."""
    found = expr.atoms(Softmax)
    if not found:
        return expr, {}
    p = sp.IndexedBase("p")
    vector = next(iter(found)).vector
    shown = expr.replace(lambda e: isinstance(e, Softmax), lambda e: p[e.position])
    return shown, {p: f"softmax({vector})"}
