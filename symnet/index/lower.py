"""A tensor layer's derivation -> its numpy module (registered with `symnet.codegen.lower`):
``forward(X, gamma, beta, eps=1e-05) -> (Y, cache)`` and ``backward(dY, cache) -> (dX,
dgamma, dbeta)``, the conventions of generated/layers/affine.py.

The index expressions become array expressions in one layout of axes (arrays.py); a
statistic is computed once in forward and kept in the cache, each sum the backward uses is
computed once and named for what it sums, and each VJP is given its input's own shape.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from symnet.codegen.errors import CodegenError
from symnet.codegen.layout import paragraph, statement
from symnet.codegen.lower import RESERVED, Function, Module, lower
from symnet.codegen.stable import as_branches, as_masks, logistic_form, zero_log_zero
from symnet.declare.elementwise import ActivationFunction, ActivationPartial
from symnet.declare.tensor import IndexLayer
from symnet.derive.dispatch import derive

# The module, not its names: symnet.codegen imports this module to register it, so
# symnet.index.arrays (which imports symnet.codegen) imported first is still half loaded here.
from symnet.index import arrays, contract, passes
from symnet.index.derive import IndexDerivation
from symnet.index.page import describe_index, shape_text
from symnet.notation import text

# --- the module ----------------------------------------------------------------------------


def _temporary_name(s: sp.Sum, taken: set, layout: arrays.Layout) -> str:
    bases = []
    for e in sorted(s.atoms(sp.Indexed), key=sp.default_sort_key):
        name = layout.names[e.base]
        if name not in bases:
            bases.append(name)
    stem = "sum_" + "_".join(bases)
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}_{k}", k + 1
    taken.add(name)
    return name


def _shared_sums(vjps: dict, layout: arrays.Layout, taken: set) -> tuple[list, dict]:
    """Each outermost sum of the VJPs computed once: ([(name, sum)], the VJPs with each
    sum as its temporary)."""
    sums = []
    whole = [v for v in vjps.values() if isinstance(v, sp.Sum) and layout.is_contraction(v)
             and sum(v.has(w) for w in vjps.values()) == 1]   # an einsum in the input's order
    for expr in vjps.values():
        if expr in whole:
            continue
        for s in sp.preorder_traversal(expr):
            if isinstance(s, sp.Sum) and s not in sums \
                    and not any(s in outer.atoms(sp.Sum) for outer in sums if outer != s):
                sums.append(s)
    named = {s: sp.Indexed(sp.IndexedBase(_temporary_name(s, taken, layout)),
                           *sorted(s.free_symbols & set(layout.order), key=layout.axis.get))
             for s in sums}
    for entry in named.values():
        layout.placed.add(entry.base)
        layout.axes_of[entry.base] = tuple(layout.axis[i] for i in entry.indices)
        layout.names[entry.base] = str(entry.base)
    return [(str(e.base), s) for s, e in named.items()], \
        {b: v.xreplace(named) for b, v in vjps.items()}


def _sizes(layout: arrays.Layout, used: set, source: str, source_base) -> list[str]:
    """`N = dY.shape[0]` for each size the code uses, read off one array's shape, or, for
    a size it lacks (a matrix product's K*E), off the first input that has it."""
    declared = layout.layer.declared()
    sources = [(source, source_base)] + [(str(e.base), e.base) for e in layout.layer.inputs
                                         if e.base != source_base]
    lines = []
    for name, base in sources:
        extents = [layout.layer.ranges[i] for i in declared[base].indices]
        read = [(axis, extent) for axis, extent in enumerate(extents) if extent in used]
        used -= {extent for _, extent in read}
        if len(read) == len(extents) > 1 and len(set(extents)) == len(extents):
            lines.append(f"{', '.join(map(str, extents))} = {name}.shape")
        else:
            lines += [f"{extent} = {name}.shape[{axis}]" for axis, extent in read]
    return lines


def _forward_lines(layer: IndexLayer, layout: arrays.Layout, taken: set,
                   given: tuple = (), planner: contract.Planner | None = None) -> list[str]:
    """The statistics (but those `given`) then the output, each subexpression two of them
    share computed once (passes.shared_temporaries), each full one in few passes; a
    contraction of three or more arrays a chain of pairs (contract.py), each pair first."""
    planner = planner or contract.Planner(layout, taken)
    definitions = [(entry, planner.rewrite(value)) for entry, value in layer.statistics.items()
                   if str(entry.base) not in given] \
        + [(layer.output, planner.rewrite(layer.forward))]
    chained = contract.statements(layout, planner.take())
    temporaries, definitions = passes.shared_temporaries(definitions, layout, taken)
    ordered = []
    for entry, value in definitions:   # each temporary just before its first reader
        ordered += [(t, v) for t, v in temporaries if _reads(value, t.base)
                    and (t, v) not in ordered]
        ordered.append((entry, value))
    statements = passes.Statements(layout, {t.base for t, _ in temporaries})
    lines = chained
    for k, (entry, value) in enumerate(ordered):
        lines += statements.assign(entry, value, [v for _, v in ordered[k + 1:]])
    return lines


def _reads(expr: sp.Expr, base) -> bool:
    return any(e.base == base for e in expr.atoms(sp.Indexed))


def _with_sizes(layout: arrays.Layout, lines: list, source: str, source_base,
                ones_cached: bool = False) -> list[str]:
    """The lines after the sizes they use (`N = dY.shape[0]`) and, where a column sum is
    a product with the row of ones, after that row (unless the forward's is cached)."""
    if arrays.ONES in _words("\n".join(lines)) and not ones_cached:
        batch = layout.layer.ranges[layout.order[0]]
        ones = arrays.OnesRow(batch, arrays.Array(source))
        lines = _lines(arrays.ONES, ones) + lines
    words = _words("\n".join(lines))
    used = {s for s in layout.layer.ranges.values() if str(s) in words}
    return _sizes(layout, used, source, source_base) + lines


def _lines(target: str, value: sp.Expr) -> list[str]:
    return statement(target, arrays.code_text(value))


def _vjp_value(layout: arrays.Layout, entry: sp.Indexed, value: sp.Expr,
               exact: set = frozenset()) -> tuple[str, sp.Expr]:
    """The VJP's array, reshaped to the input's own shape where the layout keeps axes (not
    where it is a sum held in the shape of its axes, those of the input: `exact`)."""
    axes = layout.axes_of[entry.base]
    if isinstance(value, sp.Sum) and layout.is_contraction(value):
        return "", layout.einsum(value, {}, order=entry.indices)   # in the input's own order
    array = layout.array(value)
    if list(axes) == list(range(len(axes))):
        return "", array
    if isinstance(value, sp.Indexed) and layout.names[value.base] in exact \
            and layout.axes_of[value.base] == axes:
        return "", array
    name = layout.names[entry.base]
    if list(axes) == sorted(axes):
        return f".reshape({name}.shape)", array
    # the input's axes run in another order than the layout's: reshape to them in the
    # layout's order, then transpose back to the input's own
    order = sorted(range(len(axes)), key=lambda n: axes[n])
    back = [order.index(n) for n in range(len(axes))]
    shape = ", ".join(f"{name}.shape[{n}]" for n in order)
    return f".reshape({shape}).{arrays.array_method('transpose')}" \
           f"({', '.join(map(str, back))})", array


def spelled(derivation: IndexDerivation) -> tuple[IndexLayer, dict]:
    """(the layer, its VJPs) in the stable forms the matrix lowering computes: each
    activation placeholder (relu, relu' of a network's stage) as its declaration's forward
    and the derivative symnet derived from it (stably_concrete: the printer has no spelling
    of the placeholders, and sigmoid's naive derivative exp(-B)/(1 + exp(-B))**2 is inf/inf
    = NaN below B = -709), and a naive formula the layer writes itself (1/(1 + exp(-u)),
    log(1 + exp(u)), log(cosh(u))) as its row of the table (logistic_form), outside sums."""
    layer = derivation.declaration
    vjps = {base: _stable(v) for base, v in derivation.vjps.items()}
    forward = _stable(layer.forward)
    statistics = {entry: _stable(d) for entry, d in layer.statistics.items()}
    if forward == layer.forward and statistics == layer.statistics:
        return layer, vjps
    return replace(layer, forward=forward, statistics=statistics), vjps


def _stable(expr: sp.Expr) -> sp.Expr:
    return _outside_sums(stably_concrete(expr), logistic_form)


def _outside_sums(expr: sp.Expr, rule) -> sp.Expr:
    """`rule` applied to each largest part of expr with no sum in it (the factors of a
    product beside a sum taken together, a sum's body on its own): logistic_form factors
    and cancels what it is given, which a sum must stay out of."""
    if not expr.has(sp.Sum):
        return rule(expr) if expr.has(sp.exp, sp.cosh, sp.sinh) else expr
    if isinstance(expr, sp.Sum):
        return sp.Sum(_outside_sums(expr.function, rule), *expr.limits)
    if expr.is_Add or expr.is_Mul:
        plain = expr.func(*[a for a in expr.args if not a.has(sp.Sum)])
        return expr.func(_outside_sums(plain, rule),
                         *[_outside_sums(a, rule) for a in expr.args if a.has(sp.Sum)])
    return expr.func(*[_outside_sums(a, rule) for a in expr.args])


def stably_concrete(expr: sp.Expr) -> sp.Expr:
    """Activation placeholders -> the declaration's forward and derived derivatives (its
    parameters at their defaults), each rewritten as lower_activation rewrites them, through
    the rows of the table of stable primitives (symnet.primitives.TABLE): the forward's
    branches clamped to their side (as_branches), the derivative's steps kept as masks
    (as_masks), 1 + exp(w) through the logistic function (printed as its row spells it),
    and 0 log 0 = 0. The logistic function is not expanded to np.where(B >= 0, 1, e)/(1 + e)
    here as lower_activation computes it: the index passes fold that Piecewise into the
    products around it, nested np.where of three cases each."""

    def value(application):
        decl = application.declaration
        if isinstance(application, ActivationPartial):
            formula = as_masks(derive(decl).derivatives[application.variable])
        else:
            formula = as_branches(decl.forward)
        points = dict(zip(decl.inputs, application.args, strict=True))
        return zero_log_zero(formula).xreplace({**decl.params, **points})

    return expr.replace(lambda e: isinstance(e, (ActivationFunction, ActivationPartial)), value)


def lower_index_layer(derivation: IndexDerivation) -> Module:
    layer, derived = spelled(derivation)
    layout = arrays.Layout(layer)
    if layer.statistics and len(layout.order) > 2:
        # a statistic is held at its place in the layout, right-aligned as numpy
        # broadcasts: sound over two indices, not yet over more (batchnorm -> affine)
        raise CodegenError(layer.name, f"a tensor layer with statistics over "
                           f"{len(layout.order)} indices ({', '.join(map(str, layout.order))}) "
                           f"is not lowered yet: only over two; declare such stages as a "
                           f"Network(..., stages=[use(...), ...]), generated stage by stage")
    taken = set(RESERVED) | {str(b) for b in layer.declared()} | {arrays.UPSTREAM}
    taken |= {f"d{b}" for b in layer.bases}
    taken.add(arrays.ONES)
    planner = contract.Planner(layout, taken)
    forward = _forward_lines(layer, layout, taken, planner=planner)
    output = str(layer.output.base)
    vjps = {base: planner.rewrite(value) for base, value in derived.items()}
    backward = contract.statements(layout, planner.take())
    sums, vjps = _shared_sums(vjps, layout, taken)
    exact = set()     # the sums held in their axes' own shape: a VJP that is one is returned
    for name, s in sums:
        array = layout.array(s)
        backward += _lines(name, array)
        if arrays.exact_shape(array):
            exact.add(name)
    results = []
    statements = passes.Statements(layout)
    for entry in layer.inputs:
        target = f"d{entry.base}"
        value = vjps[entry.base]
        results.append(target)
        if statements.whole(entry, value):    # a full array: few passes, one allocation
            backward += statements.assign(sp.IndexedBase(target)[entry.indices], value)
            continue
        reshape, array = _vjp_value(layout, entry, value, exact)
        text = arrays.code_text(array)
        if reshape:
            text = f"({text}){reshape}" if not isinstance(array, arrays.Array) else text + reshape
        backward += statement(target, text)
    # the forward's row of ones is kept in the cache: a backward at 64 x 100 costs its
    # count of numpy calls, and np.ones is one of them
    ones_cached = arrays.ONES in _words("\n".join(forward))
    backward = _with_sizes(layout, backward, arrays.UPSTREAM, layer.upstream, ones_cached)
    first = layer.inputs[0]
    forward = _with_sizes(layout, forward, str(first.base), first.base)
    cached = _cached(layer, layout, backward, results)
    unpack = (f"{', '.join(cached)} = cache" if len(cached) > 1 else f"{cached[0]}, = cache",) \
        if cached else ()
    running = running_statistics(layer)
    if running:     # kept last in the cache, for the runtime's running averages
        unpack = (f"{', '.join(cached)}{',' if len(cached) == 1 else ''} = "
                  f"cache[:{len(cached)}]",) if cached else ()
        cached = cached + [name for name in running if name not in cached]
    cache_text = f"({', '.join(cached)}{',' if len(cached) == 1 else ''})" if cached else "()"
    arguments = ", ".join([str(e.base) for e in layer.arguments]
                          + [f"{s}={_default(v)}" for s, v in layer.params.items()])
    functions = {
        "forward": Function(
            "forward", arguments,
            (f"{output} = {layer.name}({', '.join(str(e.base) for e in layer.arguments)}), "
             f"the batch first.",
             f"Returns ({output}, cache); the cache {cache_text} is what backward needs"
             + ("," if running else "."))
            + ((f"then the batch's {', '.join(running)} (for running averages).",)
               if running else ()),
            tuple(forward) + (f"cache = {cache_text}",), f"{output}, cache"),
        "backward": Function(
            "backward", f"{arrays.UPSTREAM}, cache",
            (f"The gradient of the loss with respect to each input, given {arrays.UPSTREAM} = "
             f"dL/d{output}.",
             f"Returns {', '.join(results)}: the derived VJPs, each of its input's shape."),
            unpack + tuple(backward), ", ".join(results)),
    }
    constants = ()
    if running:
        functions["inference"] = _inference(layer, layout, running, arguments)
        constants = (("CACHE", _names(cached), "the names of forward's cache entries"),
                     ("RUNNING", _names(running), "the batch statistics inference() takes "
                      "as running averages (forward's own are in its cache)"))
    return Module(layer.name, "layer", "forward_backward.py.j2", "layers",
                  tuple(_docstring(derivation)), functions, constants, tuple(cached))


def _names(names: list) -> str:
    return "(" + ", ".join(f'"{name}"' for name in names) + ("," if len(names) == 1 else "") + ")"


def running_statistics(layer: IndexLayer) -> list[str]:
    """The statistics that sum over the batch index and do not carry it (batch norm's mu and
    var): in inference they are running averages, not the batch's own."""
    batch = layer.output.indices[0]
    return [str(entry.base) for entry, definition in layer.statistics.items()
            if batch not in entry.indices
            and any(_over_batch(limit, batch, layer) for s in definition.atoms(sp.Sum)
                    for limit in s.limits)]


def _over_batch(limit: tuple, batch, layer: IndexLayer) -> bool:
    """Whether a sum's limit runs over the batch: its index, or (a network's stage, its
    sums renamed: n_1) an index over the batch's range."""
    variable, lower, upper = limit
    return variable == batch or (lower == 0 and upper == layer.ranges[batch] - 1)


def _inference(layer: IndexLayer, layout: arrays.Layout, running: list, arguments: str) -> Function:
    """The forward with the running statistics given: the declared formula, forward only."""
    taken = set(RESERVED) | {str(b) for b in layer.declared()} | {arrays.ONES}
    first = layer.inputs[0]
    body = _with_sizes(layout, _forward_lines(layer, layout, taken, tuple(running)),
                       str(first.base), first.base)
    output = str(layer.output.base)
    inputs = [str(e.base) for e in layer.arguments]
    head, params = arguments.split(", ")[:len(inputs)], arguments.split(", ")[len(inputs):]
    return Function(
        "inference", ", ".join(head + running + params),
        (f"{output} in inference: {layer.name} with the running statistics "
         f"{', '.join(running)}",
         "(shaped as in forward's cache) in place of the batch's own."),
        tuple(body), output)


def _words(text: str) -> set:
    import re

    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))


def _cached(layer: IndexLayer, layout: arrays.Layout, backward: list, results: list) -> list:
    """The arrays and parameters backward reads that it does not compute itself (the
    forward's intermediates of a contraction among them)."""
    words = _words("\n".join(backward))
    computed = {line.split(" = ")[0] for line in backward if " = " in line}
    order = [str(e.base) for e in (*layer.arguments, *layer.statistics, layer.output)] \
        + sorted(layout.names[b] for b in layout.intermediates) + [arrays.ONES] \
        + [str(s) for s in layer.params]
    return [name for name in order if name in words and name not in computed
            and name not in results]


def _default(value) -> str:
    return str(int(value)) if value.is_integer else repr(float(value))


def _docstring(derivation: IndexDerivation) -> list[str]:
    layer = derivation.declaration
    lines = paragraph(f"{layer.name} ({layer.kind})" + (f": {layer.doc}" if layer.doc else ""))
    lines += ["", "Derived by symnet, entry by entry (G = dL/dY; sums over an index run over "
                  "its whole range):"]
    width = max(len(row.label) for row in describe_index(derivation))
    for row in describe_index(derivation):
        shown = f"{row.label:{width}s}  {text(row.math)}" + (f"   ({row.note})" if row.note
                                                            else "")
        lines += paragraph(shown, indent="    ", hanging="        ")
    lines += [""] + paragraph(
        "Shapes: " + ", ".join(f"{e.base}: {shape_text(layer, e)}"
                               for e in (*layer.arguments, layer.output))
        + f", the batch first; {arrays.UPSTREAM} = dL/d{layer.output.base} has the shape of "
          f"{layer.output.base}; each gradient has its input's shape. Statistics are "
          f"computed once in forward and kept in the cache; the dtype of the inputs is kept "
          f"(float32 in, float32 out).")
    return lines


@lower.register
def _(derivation: IndexDerivation, reduction: str = "mean") -> Module:
    return lower_index_layer(derivation)   # a layer's VJPs carry no batch reduction
