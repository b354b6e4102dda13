"""A training step's plan (`plan.py`) -> its module: ``step(X, Y, W1, b1, ..., lr, lam,
work)``, one straight-line function that runs the forward, the loss, the penalty and the
backward, then updates every parameter in place, and ``workspace(...)``, the buffers it
reuses from one call to the next.

The stages are the ones every module goes through: matrix expressions as arrays
(`matrices.py`), kinks as masks or branches (`stable.py`), the loss's index notation as
arrays with CSE (`batch.py`, `lower.py`), the one printer. Then `code.py` writes the
large arrays in place. An update beta*P + alpha*A*B (+ rest) is one call
``gemm(A, B, P, alpha=..., beta=...)``: with scipy, one BLAS gemm that scales P and adds
the product without a gradient array; with numpy alone, the same in three passes.
"""

from __future__ import annotations

from functools import partial

import sympy as sp

from symnet.codegen.array_ops import TotalSum
from symnet.codegen.errors import CodegenError
from symnet.codegen.layout import _fill, statement
from symnet.codegen.lower import RENAMES, Function, Module, loss_lines
from symnet.codegen.matrices import ArrayForm
from symnet.codegen.printer import numpy_code
from symnet.codegen.stable import as_masks
from symnet.codegen.step.code import Buffers, in_place, last_reads, sums_of_squares
from symnet.codegen.step.docs import step_docstring
from symnet.codegen.step.elementwise import Elementwise as ElementwiseLines
from symnet.codegen.step.plan import Elementwise, StepPlan, Update, plan
from symnet.derive import derive

#: names the step's own code uses
RESERVED = {"np", "N", "loss", "penalty", "work", "gemm", "sum_of_squares", "workspace",
            "step"}
#: the helpers a step imports from the module beside it, networks/blas.py (templates/blas.py.j2),
#: which every step of a package shares
BLAS_HELPERS = ("gemm", "sum_of_squares", "axpy")


def broken(head: str, items, tail: str, indent: int = 0) -> str:
    """The text between `head` and `tail` of head + items joined by commas + tail, broken
    after commas into lines of at most 100 characters (a long argument list or tuple: an
    optimiser's state arrays); continuation lines indented four more than `indent`."""
    line = f"{head}{', '.join(items)}{tail}"
    lines = _fill(line, indent) or [line]
    text = ("\n" + " " * indent).join(lines)
    return text[len(head):len(text) - len(tail)]


def _symbol(matrix) -> sp.Symbol:
    return sp.Symbol(matrix.name, real=True)


class StepNames:
    """The arrays and scalars of a step by the names its code uses."""

    def __init__(self, p: StepPlan):
        network = p.network
        self.matrices = [network.input, *([network.target] if network.target is not None
                                          else []), *p.params, *p.state]
        self.matrices += [n for n, _ in p.forward] + [p.upstream] + [n for n, _ in p.backward]
        self.matrices += list(p.gradient_buffers)
        self.symbols = {m: _symbol(m) for m in self.matrices}
        loss, reg = network.loss, network.regularizer
        self.hyper = [*p.step.optimizer.hyper, *loss.params, *(reg.params if reg else ())]
        self.names = {str(h): RENAMES.get(str(h), str(h)) for h in self.hyper}
        self.names.update({m.name: m.name for m in self.matrices})
        if p.counter is not None:
            self.names[str(p.counter)] = str(p.counter)
        self.shapes = {m.name: m.shape for m in self.matrices}

    def array_form(self, name: str) -> ArrayForm:
        return ArrayForm(name, self.symbols)

    def of(self, symbol) -> str:
        return self.names[str(symbol)]


def _matrix_statements(p: StepPlan, n: StepNames, pairs, stable) -> list:
    lower = n.array_form(p.step.name)
    return [(name.name, stable(lower(expr, name.name))) for name, expr in pairs]


def _loss_lines(p: StepPlan, n: StepNames, taken: set) -> tuple:
    """The loss over the batch and dS, by the losses' own lowering, in the step's names."""
    decl = p.network.loss
    names = {str(decl.scores.label): p.scores.name, **n.names}
    if p.labels is not None:
        names[str(decl.target)] = p.labels
    elif decl.target is not None:
        names[str(decl.target.label)] = p.network.target.name
    return loss_lines(derive(decl), names, set(RESERVED) | taken, p.network.reduction,
                      ("loss", p.upstream.name))


def _penalty_value(p: StepPlan, n: StepNames) -> sp.Expr:
    """The sum of the regulariser's value on each weight: lam*sum_of_squares(W1) + ..."""
    total = sp.Integer(0)
    reg = p.network.regularizer
    for weight, (entry_sum, entries) in p.penalties.items():
        summed = TotalSum(n.array_form(p.step.name)(entries, f"{reg.name}({weight})"))
        total += reg.forward.xreplace({entry_sum: summed})
    return sums_of_squares(total)


def _operand(matrix, lower, buffers: Buffers, names, dtype_of) -> str:
    """A gemm operand: an array of the step, or the workspace's row of ones."""
    if isinstance(matrix, sp.OneMatrix):
        return buffers.of_ones(matrix.shape)
    return numpy_code(lower(matrix, str(matrix)), names, dtype_of)


def _update_lines(p: StepPlan, n: StepNames, dtype_of: str, buffers: Buffers) -> list[str]:
    """Each rule in place: a parameter's SGD update as one gemm (+= its rest), a state's or
    gradient buffer's gemm with its rest entry by entry, the other rules entry by entry."""
    lines = []
    if p.counter is not None:
        count = n.of(p.counter)
        lines.append(f"{count} = {count} + 1   # the rules below see this step's count")
    params = set(p.params)
    last = _last_rule_reading(p)
    for number, u in enumerate(p.updates):
        if isinstance(u, Elementwise):
            target = u.target.name
            spent = {name for name, k in last.items() if k == number}
            free = {name for name, k in last.items() if k < number}
            writer = _entrywise(p, n, dtype_of, buffers, target, spent, free)
            lines += writer.assign(target, u.value)
        elif u.param in params:
            lines += _parameter_update_lines(u, n, dtype_of, buffers)
        else:
            lines += _buffer_update_lines(p, u, n, dtype_of, buffers)
    return lines


def _parameter_update_lines(u: Update, n: StepNames, dtype_of: str, buffers: Buffers) -> list:
    """beta*P + alpha*A*B + rest: one gemm, then += the rest."""
    lines = []
    name = u.param.name
    lower = n.array_form(name)
    rest = as_masks(lower(u.rest, f"the update of {name}")) if u.rest is not None else None
    code = n.names
    if rest is not None and _symbol(u.param) in rest.free_symbols \
            and (u.product or u.beta != 1):
        lines += statement(f"{name}_step", numpy_code(rest, code, dtype_of))
        rest = sp.Symbol(f"{name}_step", real=True)
    if u.product is not None:
        alpha, A, B = u.product
        a, b = (_operand(m, lower, buffers, code, dtype_of) for m in (A, B))
        lines.append(f"gemm({a}, {b}, {name}, alpha={numpy_code(alpha, code, dtype_of)}, "
                     f"beta={numpy_code(u.beta, code, dtype_of)})")
    elif u.beta != 1:
        lines.append(f"{name} *= {numpy_code(u.beta, code, dtype_of)}")
    if rest is not None:
        negative = rest.could_extract_minus_sign()
        shown = numpy_code(-rest if negative else rest, code, dtype_of)
        lines.append(f"{name} {'-=' if negative else '+='} {shown}")
    return lines


def _buffer_update_lines(p: StepPlan, u: Update, n: StepNames, dtype_of: str,
                         buffers: Buffers) -> list:
    """A state's or a gradient buffer's beta*T + alpha*A*B + rest: one gemm (beta 0: the
    product alone), then the rest entry by entry, in place."""
    name, lower, code = u.param.name, n.array_form(u.param.name), n.names
    if u.param in p.gradient_buffers:
        buffers.take(name, u.param.shape, set())         # a workspace array of its own
    lines, value = [], _symbol(u.param)
    rest = as_masks(lower(u.rest, f"the update of {name}")) if u.rest is not None else None
    beta, seed = u.beta, _gemm_seed(u, rest, set(n.shapes))
    if seed is not None:   # dW1 <- X.T*dZ1 + 2*lambda*W1: W1 copied in, the gemm scales it
        (beta, source), rest = seed, None
        lines.append(f"np.copyto({name}, {source})")
    if u.product is not None:
        alpha, A, B = u.product
        a, b = (_operand(m, lower, buffers, code, dtype_of) for m in (A, B))
        scales = [f"alpha={numpy_code(alpha, code, dtype_of)}"] if alpha != 1 else []
        scales += [f"beta={numpy_code(beta, code, dtype_of)}"] if beta != 0 else []
        lines.append(f"gemm({', '.join([a, b, name, *scales])})")
    else:
        value = u.beta * value
    if rest is not None:
        value += rest
    if value != _symbol(u.param):
        lines += _entrywise(p, n, dtype_of, buffers, name).assign(name, value)
    return lines


def _gemm_seed(u: Update, rest, arrays: set):
    """(beta, array) where a gradient buffer's gemm can take its rest as beta*array: the
    buffer's product alone (beta 0) plus a scalar times one other array of its shape (l2's
    2*lambda*W1). Copying W1 in and letting the gemm scale it writes the buffer once, where
    the gemm and then an axpy write it twice and read it once more."""
    if u.product is None or u.beta != 0 or rest is None:
        return None
    matrices = [s for s in rest.free_symbols if s.name in arrays]
    if len(matrices) != 1 or matrices[0].name == u.param.name:
        return None
    scalar, array = rest.as_independent(matrices[0], as_Add=False)
    return (scalar, matrices[0].name) if array == matrices[0] else None


def _last_rule_reading(p: StepPlan) -> dict:
    """gradient buffer (dW1) -> the number of the last update that reads it: after that
    rule, its buffer is free for the rules of its parameter (Adam's P rule reuses it)."""
    names = {m.name for m in p.gradient_buffers}
    last = {}
    for number, u in enumerate(p.updates):
        if isinstance(u, Elementwise):
            for symbol in u.value.free_symbols & {sp.Symbol(m, real=True) for m in names}:
                last[symbol.name] = number
    return last


def _entrywise(p: StepPlan, n: StepNames, dtype_of: str, buffers: Buffers, target: str,
               spent: set = frozenset(), free: set = frozenset()) -> ElementwiseLines:
    """The writer of rules over the arrays of `target`'s shape, its scratch buffers named
    after the first parameter of that shape (W1_scratch, W1_scratch2), a gradient buffer
    nothing reads any more (`free`) taken first; `spent`: the buffers the rule reads last."""
    shape = n.shapes[target]
    owner = next(m.name for m in p.params if tuple(m.shape) == tuple(shape))
    arrays = {name for name, other in n.shapes.items() if tuple(other) == tuple(shape)}
    spares = sorted(name for name in free if name in arrays)

    def scratch() -> str:
        if spares:
            return spares.pop(0)
        base = f"{owner}_scratch"
        count = sum(1 for name in buffers.scratches if name.startswith(base))
        return buffers.take(base if count == 0 else f"{base}{count + 1}", shape, set(),
                            scratch=True)

    def release(name: str) -> None:
        if name in free:
            spares.insert(0, name)       # a gradient buffer stays its own, not a scratch
        else:
            buffers.release(name)

    return ElementwiseLines(arrays, n.names, dtype_of, scratch, release,
                           spent={name for name in spent if name in arrays})


# --- the module ------------------------------------------------------------------------------


def _numbered(p: StepPlan, n: StepNames, forward: list, backward: list) -> list:
    """Every statement of the step in order as (number, target, what it reads): the
    forward, the loss (reads S and Y), the penalty, the backward, the updates."""
    network, symbols = p.network, n.symbols
    reads = [(t, v) for t, v in forward]
    loss_reads = [p.scores] + ([network.target] if network.target is not None else [])
    reads.append(("loss", sp.Tuple(*[symbols[m] for m in loss_reads])))
    reads.append(("penalty", sp.Tuple(*[symbols[w] for w in p.penalties])))
    reads += backward
    for u in p.updates:
        if isinstance(u, Elementwise):
            reads.append((u.target.name, sp.Tuple(symbols[u.target], *u.value.free_symbols)))
            continue
        matrices = {u.param} | (set(u.product[1:]) if u.product else set())
        if u.rest is not None:
            matrices |= u.rest.atoms(sp.MatrixSymbol)
        used = [symbols[m] for m in sorted(matrices, key=str) if m in symbols]
        used += [symbols[m.arg] for m in matrices if isinstance(m, sp.Transpose)]
        reads.append((u.param.name, sp.Tuple(*used)))
    return [(number, target, value) for number, (target, value) in enumerate(reads)]


def _size(leading, size) -> str:
    """How workspace() reads a size off its arguments: N = X.shape[0], H = W1.shape[1]."""
    if size.is_number:
        return str(size)
    for matrix in leading:
        for axis, dim in enumerate(matrix.shape):
            if dim == size:
                first = matrix == leading[0] and axis == 0
                return "N" if first else f"{matrix.name}.shape[{axis}]"
    raise CodegenError("", f"no argument of the step has a side of size {size}")


def _workspace(p: StepPlan, buffers: Buffers, arguments: str) -> Function:
    leading = [p.network.input, *p.params]
    dtype = f"{p.params[0].name}.dtype"
    body = [f"N = {p.network.input.name}.shape[0]"]
    for name, shape in buffers.shapes.items():
        sides = ", ".join(_size(leading, size) for size in shape)
        kind = "bool" if name in buffers.booleans else dtype
        body.append(f"{name} = np.empty(({sides}), dtype={kind})")
    for shape, name in buffers.ones.items():
        sides = ", ".join(_size(leading, size) for size in shape)
        body.append(f"{name} = np.ones(({sides}), dtype={dtype})   # column sums as products")
    names = list(buffers.shapes) + list(buffers.ones.values())
    returns = ", ".join(names)
    if len(f"    return {returns}") > 100:
        returns = f"({broken('    return (', names, ')', 4)})"
    return Function("workspace", arguments,
                    ("The arrays step() writes in place, for batches of X's size, in the "
                     "parameters' dtype:", "allocate them once and pass them to every step of "
                     "that batch size."),
                    tuple(body), returns)


def _step_body(p: StepPlan, n: StepNames) -> tuple[list, Buffers]:
    """The step's lines after the workspace is unpacked, and the buffers they use."""
    dtype_of = p.network.input.name
    in_buffers = partial(as_masks, in_buffers=True)
    forward = _matrix_statements(p, n, p.forward, in_buffers)
    backward = _matrix_statements(p, n, p.backward, in_buffers)
    numbered = _numbered(p, n, forward, backward)
    reads, buffers = last_reads(numbered), Buffers()
    shapes, names = n.shapes, n.names
    network, first_backward = p.network, len(forward) + 2
    lines = ["# forward: each layer's output into its buffer"]
    lines += in_place(numbered[:len(forward)], shapes, names, dtype_of, reads, buffers)
    lines.append(f"# {network.loss.name}: the {network.reduction} loss over the batch and "
                 f"{p.upstream.name} = dL/d{p.scores.name}")
    lines += _loss_lines(p, n, set(names.values()))
    if p.penalties:
        weights = ", ".join(w.name for w in p.penalties)
        lines.append(f"# {network.regularizer.name} on {weights}")
        lines += statement("penalty", numpy_code(_penalty_value(p, n), names, dtype_of))
    else:
        # no regulariser: a zero of the scores' dtype (a Python 0.0 would be float64)
        lines.append(f"penalty = {p.scores.name}.dtype.type(0)")
    lines.append(f"# backward: each layer's VJPs, the last layer first; none for the data "
                 f"{network.input.name}")
    lines += in_place(numbered[first_backward:first_backward + len(backward)], shapes, names,
                      dtype_of, reads, buffers)
    lines.append(f"# {p.step.optimizer.name}: every parameter{' and its state' if p.state else ''} "
                 f"in place, now that no gradient needs its old value")
    lines += _update_lines(p, n, dtype_of, buffers)
    return lines, buffers


def lower_step(step) -> Module:
    """The module of a training step: workspace() and step()."""
    p = plan(step)
    n = StepNames(p)
    body, buffers = _step_body(p, n)
    targets = [p.network.target.name] if p.network.target is not None else []
    leading = [p.network.input.name, *targets, *([p.labels] if p.labels else []),
               *(m.name for m in p.params)]
    state = [m.name for m in p.state] + ([n.of(p.counter)] if p.counter is not None else [])
    hyper = [n.of(h) for h in n.hyper]
    parameters = ", ".join(m.name for m in p.params)
    allocate = f"work = workspace({p.network.input.name}, {parameters})"
    arrays = [*buffers.shapes, *buffers.ones.values()]
    unpack = f"{', '.join(arrays)} = work"
    if len(f"    {unpack}") > 100:
        unpack = f"({broken('    (', arrays, ') = work', 4)}) = work"
    step_function = Function(
        "step", broken("def step(", [*leading, *state, *hyper, "work=None"], "):"),
        (f"One {step.optimizer.name} step on the batch ({', '.join(leading[:2])}), every "
         f"parameter{' and its state' if p.state else ''} updated in place.",
         *([f"{p.counter}: the number of steps done before this one."]
           if p.counter is not None else []),
         "Returns (loss, penalty) at the parameters as they were. work: workspace()'s "
         "arrays,", "made here if None; pass them again to reuse them."),
        ("if work is None:", f"    {allocate}", unpack, *body), "loss, penalty")
    workspace = _workspace(p, buffers, f"{p.network.input.name}, {parameters}")
    # only the helpers the step calls: an unused import would fail ruff
    blas = tuple(sorted(h for h in BLAS_HELPERS if any(f"{h}(" in line for line in body)))
    return Module(step.name, step.kind, "network_step.py.j2", "networks",
                  tuple(step_docstring(p)),
                  {"step": step_function, "workspace": workspace, "blas": blas},
                  _constants(p, n))


def _constants(p: StepPlan, n: StepNames) -> tuple:
    """What the runtime matches a network against, as Python literals."""
    network = p.network
    stages = tuple(stage.layer.name for stage in network.stages)
    regularizer = network.regularizer.name if network.regularizer else None
    literals = (
        ("STAGES", repr(stages)),
        ("LOSS", repr(network.loss.name)),
        ("REGULARIZER", repr(regularizer)),
        ("OPTIMIZER", repr(p.step.optimizer.name)),
        ("PARAMETERS", repr(tuple(m.name for m in p.params))),
        ("HYPERPARAMETERS", repr(tuple(n.of(h) for h in n.hyper))),
    )
    if p.state:    # (the runtime optimiser's name of the state, the parameter), in order
        pairs = [repr(tuple(m.name.split("_", 1))) for m in p.state]
        literals += (("STATE", f"({broken('STATE = (', pairs, ')')})"),)
    if p.counter is not None:
        literals += (("COUNTER", repr(n.of(p.counter))),)
    if network.loss.params:     # the loss module's own defaults, which layer by layer uses
        defaults = {n.of(k): float(v) for k, v in network.loss.params.items()}
        literals += (("DEFAULTS", repr(defaults)),)
    return tuple((name, value, "") for name, value in literals)   # their names say why
