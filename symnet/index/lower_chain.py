"""A network of tensor stages -> one numpy module (registered with `symnet.codegen.lower`).

Each stage is lowered on its own, by the tensor layers' lowering (symnet.index.lower),
into private functions of the module (`_batchnorm2_forward`, `_batchnorm2_backward`);
the network's functions chain them:

* ``forward(X, W1, b1, ..., eps=1e-05) -> (Y, cache)``: the stages in order, the cache
  holding each stage's cache, then the batch statistics of any batch-norm stage (RUNNING,
  named in CACHE) for running averages;
* ``backward(dY, cache) -> (dX, dW1, db1, ...)``: the stages' backwards last to first, the
  VJP of each stage's input handed to the stage before as its upstream: the chain rule at
  the stage boundaries, as the derivation states it (symnet.index.chain);
* ``inference(...)`` with running statistics, where a stage has some;
* with a loss, ``loss(X, T, W1, ...) -> (loss, dW1, db1, ...)``: forward, the loss's own
  generated lines on the output, backward.

Statistics over three indices or more never arise: each stage keeps its own layout (an
affine stage has no statistic, a batch-norm stage two indices), which is why an MLP with a
batch-norm stage generates here while the composed form of its stages could not.
"""

from __future__ import annotations

from symnet.codegen.errors import CodegenError
from symnet.codegen.layout import paragraph
from symnet.codegen.lower import (
    RESERVED,
    TARGET_KINDS,
    Function,
    Module,
    identifiers,
    loss_lines,
    lower,
)
from symnet.codegen.printer import TARGET_PRINTER
from symnet.index import lower as index_lower
from symnet.index.chain import StagedDerivation, describe_staged
from symnet.notation import text
from symnet.target_kinds import ARRAY_KINDS

TEMPLATE = "staged_network.py.j2"


class Stage:
    """One stage's lowered module and the names the network's functions call it by."""

    def __init__(self, number: int, derivation, network_name: str):
        self.layer = layer = derivation.declaration
        if layer.constants:
            raise CodegenError(network_name, f"stage {number} ({layer.name}) takes data "
                               f"({', '.join(str(e.base) for e in layer.constants)}): a "
                               f"network of stages takes no data input but X yet")
        self.module = index_lower.lower_index_layer(derivation)
        self.number, self.prefix = number, f"_{layer.name}"
        self.running = index_lower.running_statistics(layer)
        self.cache = f"cache{number}"

    def functions(self) -> list[Function]:
        """The stage's functions, renamed private to the network's module."""
        return [Function(f"{self.prefix}_{f.name}", f.arguments,
                         _doc(f"Stage {self.number} of the network, {self.layer.name}: "
                              + " ".join(f.doc)),
                         f.body, f.returns) for f in self.module.functions.values()]

    def call(self, function: str, *leading: str) -> str:
        """`_affine1_forward(X, W1, b1)`: the stage's inputs, then its parameters by name."""
        names = [*leading, *(f"{p}={p}" for p in self.layer.params)]
        return f"{self.prefix}_{function}({', '.join(names)})"

    @property
    def inputs(self) -> list[str]:
        return [str(e.base) for e in self.layer.inputs]


def _params(stages: list) -> str:
    params = {}
    for stage in stages:
        params.update(stage.layer.params)
    return ", ".join(f"{p}={index_lower._default(v)}" for p, v in params.items())


def _forward(stages: list, arguments: str) -> tuple[Function, list]:
    body, cached = [], [s.cache for s in stages]
    for stage in stages:
        body.append(f"{stage.layer.output.base}, {stage.cache} = "
                    f"{stage.call('forward', *stage.inputs)}")
    running = []
    for stage in stages:
        running += [f"{stage.cache}[{stage.module.cache.index(name)}]"
                    for name in stage.running]
    cache = ", ".join(cached + running)
    body.append(f"cache = ({cache}{',' if len(cached + running) == 1 else ''})")
    output = str(stages[-1].layer.output.base)
    doc = _doc(f"{output}: the stages in order, the batch first. Returns ({output}, cache); "
               f"the cache holds each stage's cache" + (", then the batch statistics RUNNING "
                                                        "(for running averages)."
                                                        if running else "."))
    return Function("forward", arguments, doc, tuple(body), f"{output}, cache"), running


def _backward(stages: list, upstream: str, results: list) -> Function:
    doc = _doc(f"The gradient of the loss with respect to each input, given {upstream} = "
               f"dL/d{stages[-1].layer.output.base}: each stage's backward, last to first. "
               f"Returns {', '.join(results)}, each of its input's shape.")
    body = [f"{', '.join(s.cache for s in stages)}"
            f"{',' if len(stages) == 1 else ''} = cache[:{len(stages)}]"]
    for stage in reversed(stages):
        grads = [f"d{name}" for name in stage.inputs]   # one is returned as it is
        body.append(f"{', '.join(grads)} = {stage.prefix}_backward({upstream}, {stage.cache})")
        if stage.number > 1:    # the VJP of the previous stage's output: its upstream
            upstream = f"d{stages[stage.number - 2].layer.output.base}"
    return Function("backward", f"{index_lower.arrays.UPSTREAM}, cache", doc, tuple(body),
                    ", ".join(results))


def _inference(stages: list, inputs: list, params: str) -> Function:
    running = [name for s in stages for name in s.running]
    body = []
    for stage in stages:
        output = str(stage.layer.output.base)
        if stage.running:
            body.append(f"{output} = {stage.call('inference', *stage.inputs, *stage.running)}")
        else:
            body.append(f"{output} = {stage.call('forward', *stage.inputs)}[0]")
    arguments = ", ".join([*inputs, *running] + ([params] if params else []))
    output = str(stages[-1].layer.output.base)
    doc = _doc(f"{output} in inference: the stages with the running statistics "
               f"{', '.join(running)} in place of the batch's own.")
    return Function("inference", arguments, doc, tuple(body), output)


def _scores_loss(derivation: StagedDerivation, taken: set) -> Function:
    """The loss's own generated lines (symnet.codegen.lower.loss_lines) on the output."""
    network = derivation.declaration
    decl, output = network.loss, str(network.staged[-1].output.base)
    target = _target_name(network)
    names = identifiers([decl.scores, *([decl.target] if decl.target is not None else []),
                         *decl.params, decl.size], taken | {output, target})
    names[str(decl.scores.label if decl.is_vector else decl.scores)] = output
    if decl.target is not None:     # an IndexedBase's label (y), or a class index (t)
        names[str(getattr(decl.target, "label", decl.target))] = target
    body = loss_lines(derivation.loss, names, taken, network.reduction,
                      ("loss", f"d{output}"))
    loss_params = [f"{names[str(p)]}={index_lower._default(v)}"
                   for p, v in decl.params.items()]
    kind = decl.target_kind
    shape = "(N, C)" if kind in ARRAY_KINDS else "(N,)"
    doc = _doc(f"The {network.reduction} {decl.name} loss over the batch of the scores "
               f"{output} (N, C), the target {target} {kind} {shape}. Returns (loss, "
               f"d{output}).")
    return Function("scores_loss", ", ".join([output, target, *loss_params]), doc,
                    tuple(body), f"loss, d{output}")


def _target_name(network) -> str:
    decl = network.loss
    if network.target is not None:
        return str(network.target)
    return str(getattr(decl.target, "label", decl.target))


def _loss(derivation: StagedDerivation, inputs: list, params: str) -> Function:
    """forward, scores_loss, backward: the loss and each weight's gradient."""
    network = derivation.declaration
    output, target = str(network.staged[-1].output.base), _target_name(network)
    keywords = f", {_keywords(params)}" if params else ""
    grads = [f"d{name}" for name in inputs]
    body = (f"{output}, cache = forward({', '.join(inputs)}{keywords})",
            f"value, d{output} = scores_loss({output}, {target})",
            f"{', '.join(grads)} = backward(d{output}, cache)")
    doc = _doc(f"The {network.reduction} {network.loss.name} loss of the network on the "
               f"batch {inputs[0]} with the target {target}, and each weight's gradient. "
               f"Returns (loss, {', '.join(grads[1:])}).")
    arguments = ", ".join([inputs[0], target, *inputs[1:]] + ([params] if params else []))
    return Function("loss", arguments, doc, body, ", ".join(["value", *grads[1:]]))


def _shapes(derivation: StagedDerivation) -> tuple:
    """Module constants the runtime builds a network from: each input's shape in the
    declaration's sizes and its role in its stage's layer (W, b, gamma, beta)."""
    network = derivation.declaration
    shapes, roles = {}, {}
    for stage, step in zip(network.staged, network.stages, strict=True):
        for entry in stage.inputs:
            if entry.base in derivation.vjps:     # a network input, not a stage's output
                shapes[str(entry.base)] = tuple(str(s) for s in stage.shape_of(entry))
        for mine, theirs in step.bindings.items():
            if theirs != 0:
                roles[str(theirs)] = str(getattr(mine, "base", mine))
    last = network.staged[-1]
    shapes[str(last.output.base)] = tuple(str(s) for s in last.shape_of(last.output))
    return (("SHAPES", _literal({k: index_lower._names(v) for k, v in shapes.items()}),
             "each input's and the output's shape, in the declaration's sizes"),
            ("ROLES", _literal({k: f'"{v}"' for k, v in roles.items()}),
             "each weight's input of its stage's layer (how the runtime initialises it)"))


def _literal(values: dict) -> str:
    """A dict literal, an entry a line."""
    return "{\n" + "".join(f'    "{k}": {v},\n' for k, v in values.items()) + "}"


def _doc(text: str) -> tuple:
    """A function's docstring lines, wrapped to fit the module's 100 columns."""
    return tuple(paragraph(text, width=92, hanging=""))


def _keywords(params: str) -> str:
    return ", ".join(f"{p.split('=')[0]}={p.split('=')[0]}" for p in params.split(", "))


def _docstring(derivation: StagedDerivation) -> list[str]:
    network = derivation.declaration
    lines = paragraph(f"{network.name} (network of {len(network.staged)} stages)"
                      + (f": {network.doc}" if network.doc else ""))
    lines += [""] + paragraph("Each stage is derived and proved on its own (symnet check "
                              f"{network.name}); backward chains the stages' VJPs, last to "
                              "first (G = dL/dY; sums over an index run over its whole range):")
    rows = describe_staged(derivation)
    width = max(len(row.label) for row in rows)
    for row in rows:
        if row.math is None:
            shown = f"{row.label:{width}s}  {row.note}"
        else:
            shown = f"{row.label:{width}s}  {text(row.math)}" + (f"   ({row.note})"
                                                                 if row.note else "")
        lines += paragraph(shown, indent="    ", hanging="        ")
    return lines


def lower_staged(derivation: StagedDerivation) -> Module:
    network = derivation.declaration
    if TARGET_PRINTER.get() is not None:
        raise CodegenError(network.name, "a network of tensor stages is generated for numpy "
                           "only: generate its layers one by one for torch or jax")
    stages = [Stage(n, d, network.name) for n, d in enumerate(derivation.stages, start=1)]
    inputs = [str(e) for e in derivation.inputs]
    params = _params(stages)
    arguments = ", ".join(inputs + ([params] if params else []))
    forward, running = _forward(stages, arguments)
    results = [f"d{name}" for name in inputs]
    functions = {"forward": forward,
                 "backward": _backward(stages, index_lower.arrays.UPSTREAM, results)}
    constants = ()
    if running:
        names = [name for s in stages for name in s.running]
        functions["inference"] = _inference(stages, inputs, params)
        constants = (("CACHE", index_lower._names([s.cache for s in stages] + names),
                      "the names of forward's cache entries"),
                     ("RUNNING", index_lower._names(names), "the batch statistics "
                      "inference() takes as running averages (forward's own are in its "
                      "cache)"))
    constants += _shapes(derivation)
    if derivation.loss is not None:
        taken = set(RESERVED) | set(inputs) | {f"d{name}" for name in inputs}
        functions["scores_loss"] = _scores_loss(derivation, taken)
        functions["loss"] = _loss(derivation, inputs, params)
        constants += (("TARGET_KIND", f'"{network.loss.target_kind}"', TARGET_KINDS),)
    own = [f for s in stages for f in s.functions()]
    ordered = own + list(functions.values())
    return Module(network.name, "network", TEMPLATE, "layers", tuple(_docstring(derivation)),
                  {**{f.name: f for f in own}, **functions, "ordered": tuple(ordered)},
                  constants)


@lower.register
def _(derivation: StagedDerivation, reduction: str = "mean") -> Module:
    return lower_staged(derivation)
