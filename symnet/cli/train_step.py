"""`symnet train`'s fused step: a committed one of generated/networks/ where one fits the
network and the optimiser, else one generated now from the run's own declarations.

The command line may import sympy and the code generator; the runtime may not. So the
step is declared here (`catalog.steps.training_step`: the depth, the activation, the loss
and regulariser, catalog entries or FILE.py:NAME declarations, and the optimiser), lowered
and rendered, kept in symnet's cache, and handed to the runtime as a module:

* the module's text is a sealed cache entry (`symnet.cache`: keyed by the step's content,
  each user declaration's file bytes, symnet's code and the libraries' versions; an entry
  that is damaged or altered is never served), so the derivation runs once per
  combination;
* its files are written under modules/<hash of the text>/networks/ beside the blas.py it
  imports (with the cache off, SYMNET_NO_CACHE=1, nothing is written), and executed from
  the text itself (`modules.load_text`), never from what
  another process may have left at that path: the same rules as `train`'s user modules.

Where no step can be generated (a loss with a sign target, hinge's; a declaration the
code generator refuses), `choose` says why in one line and the run goes layer by layer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from symnet.errors import SymnetError
from symnet.files import write_atomically
from symnet.runtime import modules
from symnet.runtime.fused import fused_step, optimizer_name
from symnet.target_kinds import CLASS_INDEX, ONE_HOT, REAL

#: the targets a generated step takes: rows of a matrix, or one class index per row
STEP_TARGETS = (ONE_HOT, REAL, CLASS_INDEX)


@dataclass(frozen=True)
class Choice:
    """The module to train with (None: the runtime finds a committed one, or none), what
    the JSON's "step" says, and why there is no fused step (None when there is)."""

    module: object
    label: str
    why: str | None = None


def choose(net, optimizer, declared: dict) -> Choice:
    """The fused step of `net` trained by `optimizer`; `declared` holds the run's
    declarations by role (activation, loss, regularizer)."""
    committed = fused_step(net, optimizer)
    if committed is not None:
        return Choice(None, f"fused: {committed.label}")
    name = optimizer_name(optimizer)
    loss = declared["loss"]
    if name is None:
        why = f"the optimiser {type(optimizer).__name__} is none of sgd, momentum, adam"
    elif loss.target_kind not in STEP_TARGETS:
        why = (f"{loss.name} takes a {loss.target_kind} target; a fused step is generated "
               f"for one-hot or real target rows or class indices")
    else:
        try:
            module, step_name = generated_step(net, name, declared)
        except SymnetError as exc:
            why = f"cannot generate one: {exc}"
        except Exception as exc:    # a lowering not foreseen: train anyway, layer by layer
            why = f"cannot generate one ({type(exc).__name__}: {exc})"
        else:
            found = fused_step(net, optimizer, module, f"cache {step_name}")
            if found is not None:
                return Choice(module, f"fused: {found.label}")
            why = f"the generated step {step_name} does not take this network's parameters"
    return Choice(None, "layer by layer", why)


def declared_step(depth: int, optimizer: str, declared: dict):
    from symnet.catalog.losses import l2
    from symnet.catalog.steps import OPTIMIZERS, training_step

    # lambda 0: no penalty to compute; any regulariser's step computes 0 at lam = 0
    regularizer = declared.get("regularizer") or l2
    return training_step(declared["activation"], depth, declared["loss"], regularizer,
                         OPTIMIZERS[optimizer])


def generated_step(net, optimizer: str, declared: dict):
    """(the step's module, its name): from the cache, or generated and kept there."""
    from symnet import cache

    step = declared_step(net.depth, optimizer, declared)
    # each declaration's own key holds the bytes of the user's file it came from
    parts = [cache.key("part", d) for d in (declared["activation"], declared["loss"],
                                             declared.get("regularizer")) if d is not None]
    kept = cache.lookup("step", step, _decoded(step.name), *parts)
    if kept is None:
        kept = _rendered(step)
        cache.store("step", step, kept, list, *parts)
    return _loaded(step.name, kept[1]), step.name


def _rendered(step) -> tuple[str, str]:
    from symnet.codegen.emit import Source, module_file

    return module_file(Source(step.name, step))


def _decoded(name: str):
    def decode(payload) -> tuple[str, str]:
        """(path, text) of an entry; ValueError for anything but this step's module."""
        if not (isinstance(payload, list) and len(payload) == 2
                and payload[0] == f"networks/{name}.py" and isinstance(payload[1], str)):
            raise ValueError("not this step's module")
        return payload[0], payload[1]
    return decode


def _loaded(name: str, text: str):
    """The module of `text`, with the blas.py it imports, both executed from their texts;
    written under modules/<hash>/networks/ for tracebacks and for the curious."""
    from symnet import cache
    from symnet.codegen.emit import render_blas

    blas = render_blas()
    digest = hashlib.sha256(f"{blas}\0{text}".encode()).hexdigest()[:16]
    # SYMNET_NO_CACHE=1: nothing written, the path only names the modules
    modules_folder = cache.folder("modules") if cache.enabled() else cache.home() / "modules"
    folder = modules_folder / digest / "networks"
    for path, content in ((folder / "blas.py", blas), (folder / f"{name}.py", text)):
        if cache.enabled() and _text_of(path) != content:
            try:
                write_atomically(path, content)
            except OSError:
                pass            # a read-only home: the module still runs from its text
    modules.load_text(folder / "blas.py", blas, in_package=True)
    return modules.load_text(folder / f"{name}.py", text, in_package=True)


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
