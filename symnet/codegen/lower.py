"""Derivations -> modules: straight-line numpy statements, ready for a template.

The stages, each a pure function:

1. array form: an activation is already elementwise; a loss's index notation becomes
   whole (N, C) arrays (`batch.py`);
2. stable form: kinks as branches or masks, overflow-free spellings (`stable.py`);
3. statements: common subexpressions named for what they hold, each statement right
   before its first use, the backward working from the forward's cache
   (`statements.py`);
4. text: each statement printed by the one printer (`printer.py`) and laid out to fit
   (`layout.py`).

The result, a `Module`, is plain data that a template places. A module's shape is one
template: `forward_backward.py.j2` (activations and layers, a forward and a backward),
`loss.py.j2` (losses and regularisers), `network_step.py.j2` (training steps); layers
have their own stage 1 (`matrices.py`) and lowering (`lower_layer.py`) and reuse
stages 2-4.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy as sp

from symnet.codegen.array_ops import (
    Logistic,
    LogOrZero,
    OnesLike,
    RowMax,
    RowSum,
    SavedMask,
    Softplus,
    TotalSum,
)
from symnet.codegen.batch import Lowering, batched
from symnet.codegen.errors import CodegenError
from symnet.codegen.finite import check_finite
from symnet.codegen.layout import WIDTH, paragraph, statement
from symnet.codegen.printer import array_code, native_form, statement_code, step_relation
from symnet.codegen.stable import (
    UNSAFE_FUNCTIONS,
    as_branches,
    as_masks,
    bounded_exp,
    expand_logistic,
    is_unsafe,
    zero_log_zero,
)
from symnet.codegen.statements import (
    common_subexpressions,
    fresh_identifiers,
    readable_name,
    schedule,
    shared_exponentials,
)
from symnet.declare.scalar import Regularizer
from symnet.derive import ActivationDerivation, LossDerivation
from symnet.primitives import TABLE

# the module, not its functions: show.docstring imports this package (its paragraph),
# so imported first it is still half loaded here
from symnet.show import docstring
from symnet.symbols import out as OUT
from symnet.target_kinds import ARRAY_KINDS, CLASS_INDEX, ONE_HOT, REAL, SIGN

REDUCTIONS = ("mean", "sum")
#: what a loss module's TARGET_KIND means (the runtime encodes labels by it)
TARGET_KINDS = (f"the target the loss takes: {ONE_HOT} or {REAL} (N, C) rows, {CLASS_INDEX} "
                f"(N,) integers, {SIGN} (N,)")
#: symbol names that cannot be Python identifiers as they stand
RENAMES = {"lambda": "lam"}
#: names the generated code itself uses (the torch and jax modules' too: symnet.codegen.targets)
RESERVED = {"np", "N", "dout", "cache", "loss", "penalty", "torch", "ctx", "jax", "jnp",
            "functools", "residuals", "value", "upstream"}
DOUT = sp.Symbol("dout", real=True)


@dataclass(frozen=True)
class Function:
    """One generated function: its argument list, docstring lines and body lines."""

    name: str
    arguments: str
    doc: tuple
    body: tuple
    returns: str


@dataclass(frozen=True)
class Module:
    """A generated module: what a template needs, every piece computed."""

    name: str
    kind: str
    template: str
    folder: str
    docstring: tuple
    functions: dict
    #: module-level constants as (NAME, Python literal, why or ""), in order
    constants: tuple = ()
    #: the names forward's cache holds, in order (a torch or jax module saves the arrays)
    cache: tuple = ()

    @property
    def uses_numpy(self) -> bool:
        """Whether any function's code calls numpy (an L2 penalty needs only its array's
        own methods, and an unused import would fail ruff)."""
        return any("np." in line for f in self.functions.values() if isinstance(f, Function)
                   for line in (*f.body, f.returns))


def _name(symbol) -> str:
    return str(symbol.label if isinstance(symbol, sp.IndexedBase) else symbol)


def identifiers(symbols, reserved=RESERVED, differentiated=()) -> dict:
    """Each symbol's name -> the Python identifier the code uses for it; none is d + the
    identifier of a `differentiated` symbol (the name of its gradient in the code)."""
    names = list(dict.fromkeys(map(_name, symbols)))
    found = fresh_identifiers([RENAMES.get(n, n) for n in names], reserved,
                              {RENAMES.get(n, n) for n in map(_name, differentiated)})
    return dict(zip(names, found, strict=True))


def _default(value) -> str:
    return str(int(value)) if value.is_integer else repr(float(value))


def _arguments(leading, params: dict, names: dict) -> str:
    parts = [names[str(s)] for s in leading]
    parts += [f"{names[str(p)]}={_default(v)}" for p, v in params.items()]
    return ", ".join(parts)


def _clamped(value: sp.Expr) -> bool:
    return any(f.has(sp.Min, sp.Max) for f in value.atoms(*UNSAFE_FUNCTIONS))


#: why a statement is written as it is: (applies to the value?, the comment above it); the
#: stable primitives' comments are those of their rows (symnet.primitives.TABLE)
WHY = (
    (lambda v: isinstance(v, RowMax), TABLE["logsumexp"].why),
    (lambda v: any(bounded_exp(e) for e in v.atoms(sp.exp)), TABLE["sigmoid_of_bounded_exp"].why),
    (lambda v: v.has(Softplus), Softplus.row.why),
    (lambda v: v.has(Logistic) and not native_form(Logistic), Logistic.row.why),
    (lambda v: v.has(LogOrZero), LogOrZero.row.why),
    (lambda v: v.has(sp.Piecewise) and _clamped(v),
     "each branch on its input clamped to its side of the kink: the discarded one cannot "
     "overflow"),
)


def why_lines(value: sp.Expr) -> list[str]:
    """The comments saying why the code of `value` is written as it is (WHY)."""
    return [line for applies, why in WHY if applies(value)
            for line in paragraph(why, indent="# ", width=WIDTH - 4, hanging="")]


def as_computed(expr: sp.Expr) -> sp.Expr:
    """expr in the stable forms the code computes: the logistic function from exp(-|z|)
    (expand_logistic), unless the target has a fused one (torch.sigmoid: one pass, where the
    expansion takes five), and 0 log 0 = 0."""
    return zero_log_zero(expr if native_form(Logistic) else expand_logistic(expr))


def _lines(statements, names: dict, dtype_of: str) -> tuple:
    lines = []
    for target, value in statements:
        lines += why_lines(value)
        lines += statement(target, statement_code(value, names, dtype_of))
    return tuple(lines)


def _code(outputs: list, names: dict, dtype_of: str, definitions=None, scale=1) -> tuple:
    """Body lines computing each (target, expr) of `outputs`, common terms shared, each
    output then multiplied by `scale` (the batch mean's 1/N, kept out of the sharing)."""
    definitions = definitions or {}
    taken = set(RESERVED) | set(names.values()) | {t for t, _ in outputs}
    taken |= {s.name for s in definitions}
    exprs = [as_computed(e) for _, e in outputs]
    temporaries, reduced = common_subexpressions(exprs, taken)
    definitions = {**definitions, **temporaries}
    computed = [(t, e * scale) for (t, _), e in zip(outputs, reduced, strict=True)]
    return _lines(schedule(definitions, computed), names, dtype_of)


# --- activations -------------------------------------------------------------------------


def _cache(backward_lines_symbols: set, decl, masks=()) -> list:
    order = [*masks, *decl.inputs, OUT, *decl.params]
    return [s for s in order if s in backward_lines_symbols]


def saved_masks(grads: dict, decl, taken: set) -> dict:
    """{step: the name of its boolean mask} where the backward reads the inputs and the
    output only through steps ([x > 0] of relu, leaky_relu, maxout's [x >= y]): the forward
    then saves those masks, 1 byte an entry, instead of the float inputs (as torch's own
    autograd of torch.where saves its condition); else {}."""
    steps = sorted(set().union(*(g.atoms(sp.Heaviside) for g in grads.values())),
                   key=sp.default_sort_key)
    arrays = {*decl.inputs, OUT}
    if not steps or any(step.args[0].free_symbols - arrays - set(decl.params)
                        for step in steps):
        return {}
    stand_in = {step: sp.Dummy() for step in steps}
    if any(g.xreplace(stand_in).free_symbols & arrays for g in grads.values()):
        return {}
    names = fresh_identifiers([_mask_name(step) for step in steps], taken)
    return {step: sp.Symbol(name) for step, name in zip(steps, names, strict=True)}


def _mask_name(step: sp.Heaviside) -> str:
    """The name of a step's saved mask: x_positive, a_ge_b, or for a step of x + c (or
    c - x) the comparison of x with its threshold (x_gt_minus1, x_lt_1)."""
    named = readable_name(step, False)
    u, at_zero = step.args
    if named not in ("positive", "nonnegative") or len(u.free_symbols) != 1:
        return named
    v = next(iter(u.free_symbols))
    slope, offset = u.diff(v), u.subs(v, 0)
    if slope not in (1, -1) or not offset.is_Integer or u != slope * v + offset:
        return named
    relation = {(1, 1): sp.Ge, (1, 0): sp.Gt, (-1, 1): sp.Le, (-1, 0): sp.Lt}[
        (int(slope), int(at_zero))]
    return readable_name(relation(v, -offset * slope, evaluate=False), False)


def lower_activation(derivation: ActivationDerivation) -> Module:
    decl = derivation.declaration
    names = identifiers([*decl.inputs, *decl.params, OUT], differentiated=decl.inputs)
    dtype_of = names[str(decl.inputs[0])]
    inputs = ", ".join(names[str(v)] for v in decl.inputs)
    lowered = as_branches(decl.forward)
    forward = _code([("out", lowered)], names, dtype_of)
    grads, used = {}, {}
    for v in decl.inputs:
        rewritten = derivation.in_output[v]
        # the cached output serves where it is a polynomial of it (sigma(1 - sigma));
        # softplus' 1 - exp(-out) would overflow where its derivative in x does not
        reuse = rewritten is not None and not is_unsafe(rewritten)
        used[v] = rewritten if reuse else derivation.derivatives[v]
        # steps as 0/1 masks times dout, not np.where: on a sign that changes from one
        # entry to the next, np.where(x > 0, dout, 0) took 1.5-6x as long as the product
        grads["d" + names[str(v)]] = as_masks(DOUT * used[v])
    masks = saved_masks(grads, decl, set(RESERVED) | set(names.values()) | set(grads))
    saved = {step: SavedMask(mask, DOUT) for step, mask in masks.items()}
    grads = {name: g.xreplace(saved) for name, g in grads.items()}
    needed = set().union(*(g.free_symbols for g in grads.values()))
    names.update({m.name: m.name for m in masks.values()})
    cache = [names[str(s)] for s in _cache(needed, decl, masks.values())]
    cached = f"({cache[0]},)" if len(cache) == 1 else f"({', '.join(cache)})"
    unpacked = cached if len(cache) == 1 else ", ".join(cache)
    # a constant derivative (2*x) needs nothing from the cache: nothing to unpack
    unpack = (f"{unpacked} = cache",) if cache else ()
    computed = [as_computed(e.xreplace({v: k for k, v in saved.items()}))
                for e in [lowered, *grads.values()]]
    check_finite(decl, names, computed[0], computed[1:])   # as _code computes them
    backward = _code(list(grads.items()), names, dtype_of)
    forward += tuple(line for step, mask in masks.items() for line in statement(
        mask.name, statement_code(step_relation(*step.args), names, dtype_of)))
    functions = {
        "forward": Function(
            "forward", _arguments(decl.inputs, decl.params, names),
            (f"out = {decl.name}({inputs}), elementwise.",
             f"Returns (out, cache); the cache {cached} is what backward needs."),
            forward + (f"cache = {cached}",), "out, cache"),
        "backward": Function(
            "backward", "dout, cache",
            ("The gradient of the loss with respect to each input, given dout = dloss/dout.",
             f"Returns {', '.join(grads)}: dout times the derivative, from the cache."),
            unpack + backward, ", ".join(grads)),
    }
    doc = docstring.module_docstring(derivation, names, used)
    return Module(decl.name, decl.kind, "forward_backward.py.j2", "activations", tuple(doc),
                  functions, cache=tuple(cache))


# --- losses and regularisers -------------------------------------------------------------


def _scalar(expr: sp.Expr, decl) -> bool:
    return expr.free_symbols <= set(decl.params)


def _total(expr: sp.Expr, decl) -> sp.Expr:
    """The sum over the batch of a per-sample expression: a row sum inside a batch sum
    is one sum; factors that are parameters stay outside."""
    factors = sp.Mul.make_args(expr)
    outside = [f for f in factors if _scalar(f, decl)]
    inside = sp.Mul(*[f for f in factors if not _scalar(f, decl)])
    if isinstance(inside, (RowSum, TotalSum)):
        inside = inside.args[0]
    return sp.Mul(*outside) * TotalSum(inside)


def _check_shifted(decl, lowering: Lowering, exprs) -> None:
    """Never exp of an unshifted score: every exp must be of shifted or clamped values."""
    scores = lowering.scores
    for expr in exprs:
        for e in expr.atoms(sp.exp):
            argument = e.args[0].replace(lambda a: isinstance(a, sp.Min), lambda a: 0)
            argument = 0 if bounded_exp(e) else argument
            if scores in argument.free_symbols:
                raise CodegenError(decl.name, f"the code would compute {e} of raw scores, "
                                   f"which overflows; declare the loss with LogSumExp, "
                                   f"Softmax or log_softmax (symnet.primitives)")


def loss_lines(derivation, names: dict, reserved: set, reduction: str,
               outputs: tuple[str, str]) -> tuple:
    """The lines computing a loss's (or a regulariser's) value over the batch and its
    gradient, into the two names of `outputs`, the declaration's symbols printed by
    `names`: the loss modules' code and the same lines inside a fused training step."""
    decl = derivation.declaration
    regularizer = isinstance(decl, Regularizer)
    lowering = Lowering(decl, set(reserved) | set(names.values()))
    per_sample = as_masks(batched(lowering, decl.forward))
    gradient = as_masks(batched(lowering, derivation.gradient,
                                decl.index if decl.is_vector else None))
    if not lowering.entrywise(gradient):   # a gradient constant along the classes
        gradient = gradient * OnesLike(lowering.scores)
    if not regularizer:
        _check_shifted(decl, lowering, [per_sample, gradient, *lowering.nodes.values()])
    scores = names[str(decl.scores.label if decl.is_vector else decl.scores)]
    value = per_sample if regularizer else _total(per_sample, decl)
    preamble, scale = [], 1
    if not regularizer:
        if reduction == "mean":   # N is only the mean's 1/N: a sum assigning it fails F841
            preamble.append(f"N = {scores}.shape[0]")
            scale = 1 / sp.Symbol("N", positive=True)
        if decl.target_kind in ARRAY_KINDS:
            target = names[str(decl.target.label if decl.is_vector else decl.target)]
            preamble.append(f"{target} = {array_code(target, scores)}")
    nodes = shared_exponentials(lowering.nodes, lowering.taken)
    value_name, gradient_name = outputs
    return tuple(preamble) + _code([(value_name, value), (gradient_name, gradient)], names,
                                   scores, nodes, scale)


def lower_loss(derivation, reduction: str = "mean") -> Module:
    decl = derivation.declaration
    if reduction not in REDUCTIONS:
        raise CodegenError(decl.name, f"the reduction over the batch must be one of "
                           f"{', '.join(REDUCTIONS)}; got {reduction!r}")
    regularizer = isinstance(decl, Regularizer)
    targets = [decl.target] if decl.target is not None else []
    names = identifiers([decl.scores, *targets, *decl.params, decl.size])
    scores = names[str(decl.scores.label if decl.is_vector else decl.scores)]
    value_name = "penalty" if regularizer else "loss"
    body = loss_lines(derivation, names, RESERVED, reduction, (value_name, "d" + scores))
    leading = [decl.scores, *targets]
    what = "penalty on the weights" if regularizer else f"{reduction} loss over the batch"
    function = Function(value_name, _arguments(leading, decl.params, names),
                        (f"{decl.name}: the {what} and its gradient.",
                         f"Returns ({value_name}, d{scores}): a scalar of {scores}'s dtype, "
                         f"and d{value_name}/d{scores}."),
                        body, f"{value_name}, d{scores}")
    notes = () if regularizer else (_reduction_note(reduction),)
    doc = docstring.module_docstring(derivation, names, extra=notes)
    constants = () if regularizer else (("TARGET_KIND", f'"{decl.target_kind}"', TARGET_KINDS),)
    return Module(decl.name, decl.kind, "loss.py.j2",
                  "regularizers" if regularizer else "losses", tuple(doc),
                  {"loss": function}, constants)


def _reduction_note(reduction: str) -> str:
    if reduction == "mean":
        return ("Batch: the loss is the mean over the N samples of the per-sample loss L "
                "above, so each gradient row carries a factor 1/N.")
    return ("Batch: the loss is the sum over the N samples of the per-sample loss L above "
            "(generated with --reduction sum).")


@functools.singledispatch
def lower(derivation, reduction: str = "mean") -> Module:
    """The module of an activation's, a loss's, a regulariser's or a layer's derivation:
    each kind of derivation registers its lowering (layers in lower_layer.py, which builds
    on this module and so cannot be imported by it)."""
    decl = derivation.declaration
    raise CodegenError(decl.name, f"a {decl.kind} gets no module of its own: the runtime "
                       f"composes it from the generated modules of its layers and "
                       f"activations (symnet.runtime.network)")


@lower.register
def _(derivation: ActivationDerivation, reduction: str = "mean") -> Module:
    return lower_activation(derivation)


@lower.register
def _(derivation: LossDerivation, reduction: str = "mean") -> Module:
    return lower_loss(derivation, reduction)
