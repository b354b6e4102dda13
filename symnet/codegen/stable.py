"""Stable by construction: rewrites that keep the generated numpy finite.

General rules, not special cases per catalog entry:

* **logistic form**: wherever ``1 + exp(w)`` appears, exp(+-w) is written through the
  logistic function p = 1/(1 + exp(w)) (``array_ops.Logistic``) and log p as a softplus,
  both printed with ``np.logaddexp``, so sigmoid, softplus and their derivatives
  never exponentiate a large argument;
* **branches**: a step-weighted sum ``A [u > 0] + B (1 - [u > 0])`` becomes
  ``np.where(u > 0, A, B)``, and a branch that could overflow (exp, log, a division) is
  evaluated on its input clamped to the branch's own side of a single-variable
  condition: ELU's ``alpha*(exp(x) - 1)`` is computed at ``min(0, x)``, so the unused
  branch cannot overflow at x = +1000;
* **cases**: several steps of one variable (Huber's r < -delta, |r| <= delta, r > delta,
  a clip's two kinks) become cases over the intervals of that variable in increasing
  order, each kink keeping the value its steps give it; a loss's step that picks between
  two formulas of its arrays is an ``np.where`` too, while steps that weight terms of a
  sum (the SVM's count of positive margins) stay 0/1 masks;
* the declaration's primitives ``Softplus`` and ``Logistic`` (``symnet.primitives``) are
  lowered to the forms above;
* ``exp(u) - 1`` becomes ``np.expm1(u)``, ``log(cosh(u))`` is ``|u| + softplus(-2|u|) -
  log(2)`` and ``sinh(u)/cosh(u)`` is ``tanh(u)``;
* **0 log 0 = 0**: a term t*log(t) (t**n*log(t), n > 0) is 0 where t = 0, its limit, as
  scipy's xlogy has it: a KL divergence's y*log(y) on one-hot targets, an entropy's
  p*log(p) where a probability underflows to 0, would otherwise be 0*(-inf) = NaN.
"""

from __future__ import annotations

import sympy as sp

from symnet.algebra import piecewise_to_steps
from symnet.cases import linear_in, one_variable_cases
from symnet.codegen.array_ops import MIXING, Expm1, Logistic, LogOrZero, Softplus, as_array_forms
from symnet.primitives import TABLE

#: functions that can overflow or leave their domain for some finite input
UNSAFE_FUNCTIONS = (sp.exp, Expm1, sp.log, sp.sinh, sp.cosh)


# --- the logistic form -------------------------------------------------------------------


def _partition_exponents(expr: sp.Expr) -> list:
    """Each w for which 1 + exp(w) occurs in expr, in a fixed order."""
    found = {e.args[1].args[0] for e in expr.atoms(sp.Add)
             if len(e.args) == 2 and e.args[0] == 1 and isinstance(e.args[1], sp.exp)}
    return sorted(found, key=sp.default_sort_key)


def _logistic_terms(expr: sp.Expr, w: sp.Expr) -> sp.Expr:
    """expr with exp(+-w) written through p = 1/(1 + exp(w)) and q = 1 - p, in whichever
    of the two spellings is shorter."""
    p, q = sp.Dummy("p", positive=True), sp.Dummy("q", positive=True)
    ratio = {w: (1 - p) / p, -w: p / (1 - p)}
    replaced = expr.replace(lambda e: isinstance(e, sp.exp) and e.args[0] in ratio,
                            lambda e: ratio[e.args[0]])
    rational = sp.cancel(replaced)
    complements = {p - 1: -q, 1 - p: q, q - 1: -p, 1 - q: p}
    candidates = [sp.factor(rational), sp.factor(sp.expand(rational.subs(p, 1 - q)))]
    candidates = [c.xreplace(complements) for c in candidates]
    best = min(candidates, key=lambda c: (sp.count_ops(c), sp.default_sort_key(c)))
    return best.xreplace({p: Logistic(-w), q: Logistic(w)})


def cosh_forms(expr: sp.Expr) -> sp.Expr:
    """log(cosh(u)) as |u| + softplus(-2|u|) - log(2) and sinh(u)/cosh(u) (log cosh's
    derivative) as tanh(u): the same values without cosh or sinh, which overflow float64
    beyond |u| = 710."""
    def log_cosh(e: sp.Expr) -> sp.Expr:   # its row of the table
        return as_array_forms(TABLE["log_cosh"].stable(e.args[0].args[0]))

    def tanh(product: sp.Expr) -> sp.Expr:   # its row of the table, where sinh meets 1/cosh
        factors = list(product.args)
        for f in product.args:
            reciprocal = sp.cosh(f.args[0]) ** -1 if isinstance(f, sp.sinh) else None
            if reciprocal in factors and f in factors:
                factors.remove(f)
                factors.remove(reciprocal)
                factors.append(TABLE["tanh"].stable(f.args[0]))
        return product.func(*factors)

    expr = expr.replace(lambda e: isinstance(e, sp.log) and isinstance(e.args[0], sp.cosh),
                        log_cosh)
    return expr.replace(lambda e: e.is_Mul and e.has(sp.sinh), tanh)


def logistic_form(expr: sp.Expr) -> sp.Expr:
    expr = cosh_forms(primitive_forms(expr))
    for w in _partition_exponents(expr):
        expr = _logistic_terms(expr, w)
    # log p = -log(1 + exp(-z)): softplus, which never exponentiates a large argument
    return expr.replace(lambda e: isinstance(e, sp.log) and isinstance(e.args[0], Logistic),
                        lambda e: -Softplus(-e.args[0].args[0]))


def bounded_exp(e: sp.Expr) -> bool:
    """exp(-|u|), which is at most 1."""
    return isinstance(e, sp.exp) and e.args[0].could_extract_minus_sign() \
        and isinstance(-e.args[0], sp.Abs)


def expand_logistic(expr: sp.Expr) -> sp.Expr:
    """logistic(z) -> where(z >= 0, 1, e) / (1 + e) with e = exp(-|z|) <= 1 (its row
    sigmoid_of_bounded_exp): as finite as exp(-logaddexp(0, -z)), about twice as fast, and
    e is shared by logistic(z) and logistic(-z)."""
    bounded = TABLE["sigmoid_of_bounded_exp"]
    return expr.replace(lambda e: isinstance(e, Logistic), lambda e: bounded.stable(*e.args))


def use_expm1(expr: sp.Expr) -> sp.Expr:
    """exp(u) - 1 + rest -> expm1(u) + rest."""

    def rewrite(add: sp.Expr) -> sp.Expr:
        constant, rest = add.as_coeff_Add()
        exps = [t for t in sp.Add.make_args(rest) if isinstance(t, sp.exp)]
        if constant != -1 or not exps:
            return add
        first = exps[0]
        return Expm1(first.args[0]) + sp.Add(*[t for t in sp.Add.make_args(rest)
                                               if t is not first])

    return expr.replace(lambda e: e.is_Add, rewrite)


def zero_log_zero(expr: sp.Expr) -> sp.Expr:
    """Each log(t) multiplied by t (or a positive power of it) as LogOrZero(t), so that the
    product is 0 where t = 0: the 0 log 0 = 0 convention."""

    def vanishes_with(factor: sp.Expr, t: sp.Expr) -> bool:
        base, power = factor.as_base_exp()
        return base == t and bool(power.is_positive)

    def rewrite(product: sp.Expr) -> sp.Expr:
        return product.func(*[
            LogOrZero(f.args[0]) if isinstance(f, sp.log)
            and any(vanishes_with(g, f.args[0]) for g in product.args) else f
            for f in product.args])

    return expr.replace(lambda e: e.is_Mul and any(isinstance(f, sp.log) for f in e.args),
                        rewrite)


# --- branches ----------------------------------------------------------------------------


def is_unsafe(expr: sp.Expr) -> bool:
    """Whether expr may overflow, divide by zero or leave a function's domain somewhere."""
    if expr.atoms(*UNSAFE_FUNCTIONS):
        return True
    return any(not (p.exp.is_integer and p.exp.is_nonnegative) and not p.base.is_number
               for p in expr.atoms(sp.Pow))


def top_level_steps(expr: sp.Expr) -> list:
    """The steps of expr outside any reduction or matrix product, in a fixed order."""
    found, stack = set(), [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, sp.Heaviside):
            found.add(e)
        elif not isinstance(e, MIXING):
            stack.extend(e.args)
    return sorted(found, key=sp.default_sort_key)


def _condition(step: sp.Heaviside) -> sp.Expr:
    u, at_zero = step.args
    relation = sp.Ge if at_zero == 1 else sp.Gt
    # delta - |r| >= 0 as |r| <= delta, the side with more symbols first: the condition
    # then shares |r| (not -|r|) with the branches, and reads as declared
    kept = [t for t in sp.Add.make_args(u) if not t.could_extract_minus_sign()]
    moved = [-t for t in sp.Add.make_args(u) if t.could_extract_minus_sign()]
    if kept and moved and len(sp.Add(*moved).free_symbols) > len(sp.Add(*kept).free_symbols):
        return relation(sp.Add(*kept), sp.Add(*moved), evaluate=False).reversed
    return relation(u, 0, evaluate=False)


def _bound(step: sp.Heaviside, holds: bool):
    """(variable, lower, upper) implied for a single-variable linear step, else None."""
    u = step.args[0]
    variables = [v for v in u.free_symbols if v.is_Symbol]
    parts = linear_in(u, variables[0]) if len(variables) == 1 else None
    if parts is None or not parts[1].is_number:
        return None
    v, (slope, offset) = variables[0], parts
    edge = -offset / slope
    above = holds == bool(slope > 0)   # v on the upper side of the edge
    return (v, edge, None) if above else (v, None, edge)


def _clamp(expr: sp.Expr, path: tuple) -> sp.Expr:
    """expr with each single-variable input clamped to the side the path's steps chose."""
    lower, upper = {}, {}
    for step, holds in path:
        bound = _bound(step, holds)
        if bound is None:
            continue
        v, low, high = bound
        if low is not None:
            lower[v] = low if v not in lower else sp.Max(lower[v], low)
        if high is not None:
            upper[v] = high if v not in upper else sp.Min(upper[v], high)
    clamps = {}
    for v in sorted(set(lower) | set(upper), key=sp.default_sort_key):
        clamped = sp.Max(v, lower[v]) if v in lower else v
        clamps[v] = sp.Min(clamped, upper[v]) if v in upper else clamped
    return expr.xreplace(clamps)


def _leaf(expr: sp.Expr, path: tuple) -> sp.Expr:
    expr = logistic_form(expr)
    if is_unsafe(expr):
        expr = _clamp(expr, path)
    return use_expm1(expr)


def _split(expr: sp.Expr, path: tuple) -> sp.Expr:
    steps = top_level_steps(expr)
    if not steps:
        return _leaf(expr, path)
    cases = one_variable_cases(expr, steps, path) if len(steps) > 1 else None
    if cases is not None:
        return sp.Piecewise(*[(_leaf(value, where), condition)
                              for value, where, condition in cases])
    step = steps[0]
    on = _split(expr.xreplace({step: sp.Integer(1)}), path + ((step, True),))
    off = _split(expr.xreplace({step: sp.Integer(0)}), path + ((step, False),))
    if on == off:
        return on
    return sp.Piecewise((on, _condition(step)), (off, True))


def _in_reductions(expr: sp.Expr, rule) -> sp.Expr:
    """Apply `rule` to each operand of every reduction and matrix product (whose entries
    mix entries of the operands: a step cannot cross them), innermost first."""
    if isinstance(expr, MIXING):
        return expr.func(*[rule(_in_reductions(a, rule)) for a in expr.args])
    if not expr.args:
        return expr
    return expr.func(*[_in_reductions(a, rule) for a in expr.args])


def as_branches(expr: sp.Expr) -> sp.Expr:
    """Steps (and Piecewise) as np.where branches, unsafe branches clamped to their side."""
    expr = piecewise_to_steps(expr)
    return _split(_in_reductions(expr, lambda body: _split(body, ())), ())


def as_masks(expr: sp.Expr, in_buffers: bool = False) -> sp.Expr:
    """Steps kept as 0/1 masks (they read best in sums such as the SVM's count of positive
    margins); only where a step weights an unsafe term are the steps made branches, and
    where a step picks between two formulas (np.where reads better), unless the value is
    computed `in_buffers`, one ufunc at a time into a fused step's workspace: there
    leaky relu's x*(9*[x > 0]/10 + 1/10) took 0.16-0.19 ms at 256 x 512 against 1.8 ms for
    np.where(x > 0, x, x/10). With a fresh temporary per operation (a module's forward)
    the same arithmetic took 2.0-2.1 ms, so modules keep np.where there."""
    masked = logistic_form(piecewise_to_steps(expr))
    if (is_unsafe(masked) and top_level_steps(masked)) \
            or (not in_buffers and picks_formulas(masked)):
        return as_branches(masked)
    return use_expm1(masked)


# --- primitives and cases ----------------------------------------------------------------


def primitive_forms(expr: sp.Expr) -> sp.Expr:
    """The declaration's stable primitives (symnet.primitives) as the forms printed without
    overflow: softplus(u) as logaddexp(0, u), sigmoid(u) from exp(-|u|) <= 1."""
    return as_array_forms(expr)


def _mixing_nodes(expr: sp.Expr) -> list:
    """The outermost reductions and matrix products in expr."""
    if isinstance(expr, MIXING):
        return [expr]
    return [node for a in expr.args for node in _mixing_nodes(a)]


def picks_formulas(expr: sp.Expr) -> bool:
    """Whether a step chooses between two non-zero formulas (Huber's r^2/2 or its linear
    part) where no sum beside it holds steps too (as the SVM's count of positive margins
    does): np.where then reads better than mask arithmetic."""
    inner = [a for node in _mixing_nodes(expr) for a in node.args]
    if any(picks_formulas(a) for a in inner):
        return True
    if any(a.has(sp.Heaviside) for a in inner):
        return False
    for step in top_level_steps(expr):
        on, off = expr.xreplace({step: sp.Integer(1)}), expr.xreplace({step: sp.Integer(0)})
        # a formula of the step's own arrays keeps np.where in their dtype (+-lambda alone
        # would come out float64, so L1's step stays a mask)
        arrays = step.args[0].free_symbols & (on.free_symbols | off.free_symbols)
        if on != 0 and off != 0 and on != off and arrays:
            return True
    return False
