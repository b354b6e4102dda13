"""A tensor layer's derivation -> its numpy module (registered with `symnet.codegen.lower`):
``forward(X, gamma, beta, eps=1e-05) -> (Y, cache)`` and ``backward(dY, cache) -> (dX,
dgamma, dbeta)``, the conventions of generated/layers/affine.py.

Every array lives in one layout: the output's indices, then the inputs' other indices,
each at its own axis. An input's entry X[n, d] is the array X with None at the layout
axes it lacks; a statistic is computed once in forward at its place in the layout
(mu[d] as a (1, D) row) and kept in the cache; a sum over an index is the sum over that
index's axis, keepdims=True (``.mean`` where it is divided by its count): never an
N x D x N intermediate. A sum whose index sits on different axes in its factors (a
contraction such as X1[n, d] W[k, d, e] X2[n, e]) is one np.einsum over its factors.
Each sum the backward uses is computed once, named for what it sums.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from symnet.codegen.errors import CodegenError
from symnet.codegen.layout import paragraph, statement
from symnet.codegen.lower import RESERVED, Function, Module, lower
from symnet.codegen.printer import NumpyPrinter
from symnet.index.declare import IndexLayer
from symnet.index.derive import IndexDerivation
from symnet.index.page import describe_index, shape_text

UPSTREAM = "dY"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


class Array(sp.Symbol):
    """An array as the code names it (X, X[:, None], a statistic, a temporary)."""


class AxisSum(sp.Function):
    """The sum of an array over one axis, keepdims=True; `mean` when divided by the count."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class AxisMean(AxisSum):
    pass


class Einsum(sp.Function):
    """np.einsum(spec, *operands), spec the first argument (a Symbol holding the text)."""

    is_real = True

    @classmethod
    def eval(cls, *args):
        return None


class IndexPrinter(NumpyPrinter):
    def _print_Array(self, expr):
        return expr.name

    def _reduce(self, expr, method):
        body, axis = expr.args
        return (f"{self.parenthesize(body, PRECEDENCE['Func'], strict=True)}"
                f".{method}(axis={int(axis)}, keepdims=True)")

    def _print_AxisSum(self, expr):
        return self._reduce(expr, "sum")

    def _print_AxisMean(self, expr):
        return self._reduce(expr, "mean")

    def _print_Einsum(self, expr):
        spec, *operands = expr.args
        shown = ", ".join(self._print(o) for o in operands)
        return f"np.einsum('{spec.name}', {shown}, optimize=True)"


def code_text(expr: sp.Expr) -> str:
    printer = IndexPrinter({"names": {}, "dtype_of": "X", "fully_qualified_modules": True})
    return printer.doprint(expr)


# --- the layout ----------------------------------------------------------------------------


class Layout:
    """Where each index and each array sits; turns index expressions into array ones."""

    def __init__(self, layer: IndexLayer):
        self.layer = layer
        order = list(layer.output.indices)
        for entry in (*layer.inputs, *layer.statistics):
            order += [i for i in entry.indices if i not in order]
        self.order = tuple(order)
        self.axis = {i: n for n, i in enumerate(self.order)}
        declared = layer.declared()
        #: base -> the layout axes of its declared axes
        self.axes_of = {base: tuple(self.axis[i] for i in entry.indices)
                        for base, entry in declared.items()}
        #: arrays held at their place in the layout (statistics); the others are native
        self.placed = {entry.base for entry in layer.statistics}
        self.names = {base: str(base) for base in declared}
        self.names[layer.upstream] = UPSTREAM
        self.temporaries = {}   # Sum -> Array

    def entry(self, e: sp.Indexed, bound: dict) -> sp.Expr:
        """An entry as its array placed in the layout; `bound` maps summation indices to
        the axis they run over (checked against the entry's own axes)."""
        axes = self.axes_of[e.base]
        for i, axis in zip(e.indices, axes, strict=True):
            where = bound.get(i, self.axis.get(i))
            if where != axis:
                raise _Misplaced(e)
        name = self.names[e.base]
        if e.base in self.placed or list(axes) == list(range(axes[0], axes[-1] + 1)):
            return Array(name)
        slots = [":" if n in axes else "None" for n in range(axes[0], axes[-1] + 1)]
        return Array(f"{name}[{', '.join(slots)}]")

    def array(self, expr: sp.Expr, bound: dict | None = None) -> sp.Expr:
        bound = bound or {}
        if isinstance(expr, sp.Indexed):
            return self.entry(expr, bound)
        if isinstance(expr, sp.Sum):
            return self.reduction(expr, bound)
        if isinstance(expr, sp.KroneckerDelta):
            raise CodegenError(self.layer.name, f"a Kronecker delta {expr} was left in a VJP")
        if not expr.args:
            return expr
        if expr.is_Mul:
            return self._mul(expr, bound)
        return expr.func(*[self.array(a, bound) for a in expr.args])

    def _mul(self, expr: sp.Mul, bound: dict) -> sp.Expr:
        """A sum divided by its count as a mean: Sum(f(k), k) / N -> f.mean(axis)."""
        factors = list(expr.args)
        for s in [f for f in factors if isinstance(f, sp.Sum) and len(f.limits) == 1]:
            variable, lower, upper = s.limits[0]
            count = (upper - lower + 1) ** -1
            if count in factors:
                factors.remove(count)
                factors.remove(s)
                return sp.Mul(self.reduction(s, bound, AxisMean),
                              *[self.array(f, bound) for f in factors])
        return sp.Mul(*[self.array(f, bound) for f in factors])

    def reduction(self, s: sp.Sum, bound: dict, kind=AxisSum) -> sp.Expr:
        """A sum over each of its indices' axes (keepdims), or one np.einsum for a
        contraction or where an index's axis is taken."""
        variables = [limit[0] for limit in s.limits]
        axes = [self._axis_of(s.function, v) for v in variables]
        free = {self.axis.get(i, bound.get(i)) for i in _indices(s.function) - set(variables)}
        if None not in axes and len(set(axes)) == len(axes) and not set(axes) & free \
                and not self.is_contraction(s):
            try:
                body = self.array(s.function, {**bound, **dict(zip(variables, axes,
                                                                    strict=True))})
                for axis in axes[:-1]:
                    body = AxisSum(body, sp.Integer(axis))
                return kind(body, sp.Integer(axes[-1]))
            except _Misplaced:
                pass
        einsum = self.einsum(s, bound)
        return einsum if kind is AxisSum else einsum / (s.limits[0][2] + 1)

    def is_contraction(self, s: sp.Sum) -> bool:
        """Whether the sum's body multiplies entries over different axes (X1[n, d] W[k, d, e])
        so that no one of them spans them all: summed by broadcasting, it would build an
        array larger than any of them. (A product with a statistic, held in the layout, is
        summed by broadcasting: correct, if not the least memory.)"""
        flat = flattened(s)
        if flat is None:
            return False
        axes = [set(self.axes_of[f.base]) for f in sp.Mul.make_args(flat.function)
                if isinstance(f, sp.Indexed)]
        union = set().union(*axes) if axes else set()
        return bool(axes) and max(len(a) for a in axes) < len(union) \
            and not any(f.base in self.placed for f in flat.atoms(sp.Indexed))

    def _axis_of(self, body: sp.Expr, variable) -> int | None:
        found = {self.axes_of[e.base][e.indices.index(variable)]
                 for e in body.atoms(sp.Indexed) if variable in e.indices}
        return found.pop() if len(found) == 1 else None

    def einsum(self, s: sp.Sum, bound: dict, order=None) -> sp.Expr:
        """A sum of a product of entries as one np.einsum (output: its free indices at
        their layout axes, None at the axes between; or in `order`, an input's own)."""
        flat = flattened(s)
        if flat is None or any(e.base in self.placed for e in flat.atoms(sp.Indexed)):
            raise CodegenError(self.layer.name, f"cannot lower {s}: only a sum of a product of "
                               f"the inputs' entries becomes np.einsum")
        summed = [limit[0] for limit in flat.limits]
        body = flat.function
        factors = [f for f in sp.Mul.make_args(body) if isinstance(f, sp.Indexed)]
        constant = sp.Mul(*(f for f in sp.Mul.make_args(body) if not isinstance(f, sp.Indexed)))
        letters = _letters(factors)
        free = sorted(_indices(body) - set(summed), key=lambda i: self.axis[i])
        spec = ",".join("".join(letters[i] for i in f.indices) for f in factors) + "->" \
            + "".join(letters[i] for i in free)
        if order is not None:
            free = list(order)
            spec = spec.split("->")[0] + "->" + "".join(letters[i] for i in free)
        operands = [Array(self.names[f.base]) for f in factors]
        result = constant * Einsum(sp.Symbol(spec), *operands)
        axes = [self.axis[i] for i in free]
        if order is None and axes and axes != list(range(axes[0], axes[-1] + 1)):
            slots = [":" if n in axes else "None" for n in range(axes[0], axes[-1] + 1)]
            return Array(f"{code_text(result)}[{', '.join(slots)}]")
        return result


def _letters(factors) -> dict:
    """Each index's einsum letter: its own name where that is one letter (n, d, e)."""
    order = list(dict.fromkeys(i for f in factors for i in f.indices))
    own = [str(i) for i in order]
    if all(len(name) == 1 and name in LETTERS for name in own) and len(set(own)) == len(own):
        return dict(zip(order, own, strict=True))
    return {i: LETTERS[n] for n, i in enumerate(order)}


def flattened(s: sp.Sum):
    """A nest of sums of a product as one sum over all their indices, every factor inside
    (Sum_k G[n, k] Sum_e W[k, d, e] X2[n, e] -> Sum_{k, e} G W X2); None when a body is not
    a product of entries, sums and constants."""
    limits, factors = [], []
    pending = [s]
    while pending:
        term = pending.pop()
        if isinstance(term, sp.Sum):
            limits += list(term.limits)
            pending.append(term.function)
            continue
        for factor in sp.Mul.make_args(term):
            if isinstance(factor, sp.Sum):
                pending.append(factor)
            elif isinstance(factor, sp.Indexed) or not _indices(factor) and not factor.has(
                    sp.Indexed):
                factors.append(factor)
            else:
                return None
    return sp.Sum(sp.Mul(*factors), *limits)


class _Misplaced(Exception):
    """An index used on another axis than its array declares: needs an einsum."""


def _indices(expr: sp.Expr) -> set:
    return {i for e in expr.atoms(sp.Indexed) for i in e.indices}


# --- the module ----------------------------------------------------------------------------


def _temporary_name(s: sp.Sum, taken: set, layout: Layout) -> str:
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


def _shared_sums(vjps: dict, layout: Layout, taken: set) -> tuple[list, dict]:
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


def _sizes(layout: Layout, used: set, source: str, source_base) -> list[str]:
    """`N = dY.shape[0]` for each size the code uses, read off one array's shape."""
    entry = layout.layer.declared()[source_base]
    lines = []
    for axis, i in enumerate(entry.indices):
        extent = layout.layer.ranges[i]
        if extent in used:
            lines.append(f"{extent} = {source}.shape[{axis}]")
            used.discard(extent)
    return lines


def _lines(target: str, value: sp.Expr) -> list[str]:
    return statement(target, code_text(value))


def _vjp_value(layout: Layout, entry: sp.Indexed, value: sp.Expr) -> tuple[str, sp.Expr]:
    """The VJP's array, reshaped to the input's own shape where the layout keeps axes."""
    axes = layout.axes_of[entry.base]
    if isinstance(value, sp.Sum) and layout.is_contraction(value):
        return "", layout.einsum(value, {}, order=entry.indices)   # in the input's own order
    array = layout.array(value)
    if list(axes) == list(range(len(axes))):
        return "", array
    return f".reshape({layout.names[entry.base]}.shape)", array


def lower_index_layer(derivation: IndexDerivation) -> Module:
    layer = derivation.declaration
    layout = Layout(layer)
    taken = set(RESERVED) | {str(b) for b in layer.declared()} | {UPSTREAM}
    taken |= {f"d{b}" for b in layer.bases}
    forward = []
    for entry, definition in layer.statistics.items():
        forward += _lines(str(entry.base), layout.array(definition))
    output = str(layer.output.base)
    forward += _lines(output, layout.array(layer.forward))
    sums, vjps = _shared_sums(derivation.vjps, layout, taken)
    backward = []
    for name, s in sums:
        backward += _lines(name, layout.array(s))
    results = []
    for entry in layer.inputs:
        reshape, array = _vjp_value(layout, entry, vjps[entry.base])
        target = f"d{entry.base}"
        text = code_text(array)
        if reshape:
            text = f"({text}){reshape}" if not isinstance(array, Array) else text + reshape
        backward += statement(target, text)
        results.append(target)
    words = _words("\n".join(backward))
    used = {s for s in layer.ranges.values() if str(s) in words}
    backward = _sizes(layout, used, UPSTREAM, layer.upstream) + backward
    words = _words("\n".join(forward))
    forward_sizes = {s for s in layer.ranges.values() if str(s) in words}
    first = layer.inputs[0]
    forward = _sizes(layout, forward_sizes, str(first.base), first.base) + forward
    cached = _cached(layer, backward, results)
    unpack = (f"{', '.join(cached)} = cache" if len(cached) > 1 else f"{cached[0]}, = cache",) \
        if cached else ()
    running = running_statistics(layer)
    if running:     # kept last in the cache, for the runtime's running averages
        unpack = (f"{', '.join(cached)} = cache[:{len(cached)}]",) if cached else ()
        cached = cached + [name for name in running if name not in cached]
    cache_text = f"({', '.join(cached)}{',' if len(cached) == 1 else ''})" if cached else "()"
    arguments = ", ".join([str(e.base) for e in layer.inputs]
                          + [f"{s}={_default(v)}" for s, v in layer.params.items()])
    functions = {
        "forward": Function(
            "forward", arguments,
            (f"{output} = {layer.name}({', '.join(str(e.base) for e in layer.inputs)}), "
             f"the batch first.",
             f"Returns ({output}, cache); the cache {cache_text} is what backward needs"
             + ("," if running else "."))
            + ((f"then the batch's {', '.join(running)} (for running averages).",)
               if running else ()),
            tuple(forward) + (f"cache = {cache_text}",), f"{output}, cache"),
        "backward": Function(
            "backward", f"{UPSTREAM}, cache",
            (f"The gradient of the loss with respect to each input, given {UPSTREAM} = "
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
                  tuple(_docstring(derivation)), functions, constants)


def _names(names: list) -> str:
    return "(" + ", ".join(f'"{name}"' for name in names) + ("," if len(names) == 1 else "") + ")"


def running_statistics(layer: IndexLayer) -> list[str]:
    """The statistics that sum over the batch index and do not carry it (batch norm's mu and
    var): in inference they are running averages, not the batch's own."""
    batch = layer.output.indices[0]
    return [str(entry.base) for entry, definition in layer.statistics.items()
            if batch not in entry.indices
            and any(batch in s.variables for s in definition.atoms(sp.Sum))]


def _inference(layer: IndexLayer, layout: Layout, running: list, arguments: str) -> Function:
    """The forward with the running statistics given: the declared formula, forward only."""
    body = []
    for entry, definition in layer.statistics.items():
        if str(entry.base) not in running:
            body += _lines(str(entry.base), layout.array(definition))
    output = str(layer.output.base)
    body += _lines(output, layout.array(layer.forward))
    inputs = [str(e.base) for e in layer.inputs]
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


def _cached(layer: IndexLayer, backward: list, results: list) -> list:
    """The arrays and parameters backward reads that it does not compute itself."""
    words = _words("\n".join(backward))
    computed = {line.split(" = ")[0] for line in backward if " = " in line}
    order = [str(e.base) for e in (*layer.inputs, *layer.statistics, layer.output)] \
        + [str(s) for s in layer.params]
    return [name for name in order if name in words and name not in computed
            and name not in results]


def _default(value) -> str:
    return str(int(value)) if value.is_integer else repr(float(value))


def _docstring(derivation: IndexDerivation) -> list[str]:
    from symnet.display import text

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
                               for e in (*layer.inputs, layer.output))
        + f", the batch first; {UPSTREAM} = dL/d{layer.output.base} has the shape of "
          f"{layer.output.base}; each gradient has its input's shape. Statistics are "
          f"computed once in forward and kept in the cache; the dtype of the inputs is kept "
          f"(float32 in, float32 out).")
    return lines


@lower.register
def _(derivation: IndexDerivation, reduction: str = "mean") -> Module:
    return lower_index_layer(derivation)   # a layer's VJPs carry no batch reduction
