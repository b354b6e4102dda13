"""symnet's PyTorch and JAX modules against the same formulas written directly in the
framework (issue 16, section 4).

For each catalog activation and loss, and the README's own Mish and smoothed cross-entropy
(examples/my_declarations.py, generated into a temporary folder), in float32:

* torch: forward + backward of symnet's autograd.Function ("symnet"), of the formula in
  torch operations under autograd ("direct": what a user writes without symnet) and, where
  one exists, of torch's own fused function ("native", e.g. F.cross_entropy), interleaved in
  one process; the bytes each saves for backward, counted with saved_tensors_hooks;
* jax: jax.jit(jax.value_and_grad(...)) of symnet's custom_vjp against the same of the
  direct formula (and of jax.nn's function); the residuals jax.vjp keeps, in bytes.

Sizes: losses N = 4096 rows of C = 1000 scores (hinge, whose score is one number per sample:
N * C samples), activations 4096 x 1024.

    python benchmarks/bridges.py [--quick] [--json]

Targets (printed after the table): symnet's saved bytes <= direct's for every entry, and
<= 0.5x where the direct formula saves two or more intermediates (tensors other than its
inputs); time <= 1.1x direct, in torch and in JAX.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bridges_formulas import Entry, entries  # noqa: E402

#: the saved-bytes ratio for entries whose direct formula saves two or more intermediates
SAVED_TARGET_MANY = 0.5
TIME_TARGET = 1.1


@dataclass
class Result:
    entry: str
    framework: str
    impl: str
    median_us: float
    saved_bytes: int | None
    intermediates: int | None = None  # saved tensors other than the inputs (not in JSON)

    def as_json(self) -> dict:
        return {"entry": self.entry, "framework": self.framework, "impl": self.impl,
                "median_us": round(self.median_us, 1), "saved_bytes": self.saved_bytes}


# --- symnet's modules --------------------------------------------------------------------


def generate_user_modules(folder: Path) -> Path:
    """examples/my_declarations.py generated for torch and jax into folder (by the command
    line, so that this process never imports sympy)."""
    subprocess.run([sys.executable, "-m", "symnet", "generate", "examples/my_declarations.py",
                    "--target", "torch", "--target", "jax", "-o", str(folder)],
                   cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return folder


def symnet_callable(entry: Entry, framework: str, user_folder: Path | None):
    """The callable named after the declaration, from the committed catalog modules or from
    the user's generated folder."""
    package = f"{framework}_modules"
    kind = "activations" if entry.kind == "activation" else "losses"
    if entry.source == "catalog":
        module = importlib.import_module(f"generated.{package}.{kind}.{entry.name}")
    else:
        path = user_folder / package / kind / f"{entry.name}.py"
        spec = importlib.util.spec_from_file_location(f"user_{package}_{entry.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    function = getattr(module, entry.name)
    if entry.kind == "activation":
        return function
    return lambda s, fixed: function(s, fixed["target"])  # as the other losses: (s, fixed)


# --- torch -------------------------------------------------------------------------------


def torch_inputs(entry: Entry, rows: int, cols: int):
    """(differentiable inputs, fixed arguments, upstream) as torch float32 tensors."""
    import torch

    arrays = entry.make_inputs(rows, cols)
    inputs = [torch.from_numpy(a).requires_grad_() for a in arrays["inputs"]]
    fixed = {key: torch.from_numpy(value) for key, value in arrays["fixed"].items()}
    return inputs, fixed


def torch_run(function, entry: Entry, inputs, fixed):
    """One forward and backward; returns nothing, leaves no gradient behind."""
    out = entry.call(function, inputs, fixed)
    out.backward(fixed["upstream"] if entry.kind == "activation" else None)
    for tensor in inputs:
        tensor.grad = None


def torch_saved(function, entry: Entry, inputs, fixed) -> tuple[int, int]:
    """(bytes, intermediates) of the distinct tensors one forward saves for backward."""
    import torch

    saved = {}

    def pack(tensor):
        saved[(tensor.data_ptr(), tuple(tensor.shape))] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = entry.call(function, inputs, fixed)
    del out
    given = {t.data_ptr() for t in [*inputs, *fixed.values()]}
    intermediates = sum(1 for pointer, _ in saved if pointer not in given)
    return sum(saved.values()), intermediates


# --- jax ---------------------------------------------------------------------------------


def jax_arrays(entry: Entry, rows: int, cols: int):
    """(differentiable inputs, fixed arrays) as jax arrays; class indices int32, jax's."""
    import jax.numpy as jnp

    arrays = entry.make_inputs(rows, cols)
    fixed = {key: jnp.asarray(value, jnp.int32 if value.dtype.kind == "i" else value.dtype)
             for key, value in arrays["fixed"].items()}
    return [jnp.asarray(a) for a in arrays["inputs"]], fixed


def jax_step(function, entry: Entry):
    """jax.jit(jax.value_and_grad(...)) over the differentiable inputs."""
    import jax
    import jax.numpy as jnp

    def scalar(*args):  # the inputs, then the fixed arrays: arguments, not baked-in constants
        inputs, fixed = args[:-1], args[-1]
        out = entry.call(function, inputs, fixed)
        return jnp.sum(out * fixed["upstream"]) if entry.kind == "activation" else out

    return jax.jit(jax.value_and_grad(scalar, argnums=tuple(range(entry.arity))))


def jax_saved(function, entry: Entry, inputs, fixed) -> int:
    """Bytes of the residuals jax.vjp keeps for the backward (distinct arrays)."""
    import jax

    _, vjp = jax.vjp(lambda *xs: entry.call(function, xs, fixed), *inputs)
    leaves = {id(leaf): leaf for leaf in jax.tree_util.tree_leaves(vjp) if hasattr(leaf, "nbytes")}
    return int(sum(leaf.nbytes for leaf in leaves.values()))


def value_and_gradients(framework, function, entry: Entry, rows: int, cols: int):
    """(value, [gradient of each input]) as numpy arrays, for checking that every
    implementation of an entry computes the same thing (tests/test_bridge_loops.py)."""
    if framework == "torch":
        inputs, fixed = torch_inputs(entry, rows, cols)
        out = entry.call(function, inputs, fixed)
        value = (out * fixed["upstream"]).sum() if entry.kind == "activation" else out
        value.backward()
        return value.detach().numpy(), [tensor.grad.numpy() for tensor in inputs]
    import numpy as np

    inputs, fixed = jax_arrays(entry, rows, cols)
    value, grads = jax_step(function, entry)(*inputs, fixed)
    return np.asarray(value), [np.asarray(grad) for grad in grads]


# --- measuring ---------------------------------------------------------------------------


def timed(run, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        run()
    return (time.perf_counter() - start) / number * 1e6


def measure_entry(entry: Entry, frameworks, user_folder, rows, cols, repeats, number):
    """Every implementation of one entry, interleaved: repeat r times each in turn."""
    runs, results = {}, []
    for framework in frameworks:
        impls = {"symnet": symnet_callable(entry, framework, user_folder),
                 "direct": entry.direct[framework]}
        if entry.native.get(framework) is not None:
            impls["native"] = entry.native[framework]
        for impl, function in impls.items():
            run, saved, intermediates = prepare(framework, function, entry, rows, cols)
            run()  # warm up (and compile, in jax)
            runs[(framework, impl)] = run
            results.append(Result(entry.name, framework, impl, 0.0, saved, intermediates))
    samples = {key: [] for key in runs}
    for repeat in range(repeats):
        keys = list(runs)
        keys = keys[repeat % len(keys):] + keys[:repeat % len(keys)]  # rotate the order
        for key in keys:
            samples[key].append(timed(runs[key], number))
    for result in results:
        result.median_us = statistics.median(samples[(result.framework, result.impl)])
    return results


def prepare(framework, function, entry, rows, cols):
    """(run, saved bytes, intermediates) for one implementation."""
    if framework == "torch":
        inputs, fixed = torch_inputs(entry, rows, cols)
        saved, intermediates = torch_saved(function, entry, inputs, fixed)
        return (lambda: torch_run(function, entry, inputs, fixed)), saved, intermediates
    inputs, fixed = jax_arrays(entry, rows, cols)
    step = jax_step(function, entry)
    saved = jax_saved(function, entry, inputs, fixed)
    return (lambda: _block(step(*inputs, fixed))), saved, None


def _block(tree):
    import jax

    jax.block_until_ready(tree)


# --- targets and output ------------------------------------------------------------------


def target_lines(results: list[Result]) -> list[tuple[bool, str]]:
    """(met, line) for each target of each entry, against its direct formula."""
    by_key = {(r.entry, r.framework, r.impl): r for r in results}
    lines = []
    for result in results:
        if result.impl != "symnet":
            continue
        direct = by_key[(result.entry, result.framework, "direct")]
        where = f"{result.entry} {result.framework}"
        ratio = result.median_us / direct.median_us
        lines.append((ratio <= TIME_TARGET, f"{where}: time {ratio:.2f}x direct "
                                            f"(target <= {TIME_TARGET})"))
        if result.framework != "torch":
            continue
        many = direct.intermediates >= 2
        limit = SAVED_TARGET_MANY if many else 1.0
        saved = result.saved_bytes / direct.saved_bytes if direct.saved_bytes else float("inf")
        lines.append((saved <= limit, f"{where}: saved {saved:.2f}x direct (target <= {limit}: "
                                      f"direct saves {direct.intermediates} intermediate(s))"))
    return lines


def table(results: list[Result]) -> list[str]:
    by_key = {(r.entry, r.framework, r.impl): r for r in results}
    rows = [f"{'entry':14} {'framework':9} {'impl':7} {'median':>10} {'x direct':>9} "
            f"{'saved':>10} {'x direct':>9}"]
    for r in results:
        direct = by_key[(r.entry, r.framework, "direct")]
        saved = "-" if r.saved_bytes is None else f"{r.saved_bytes / 2**20:.1f} MiB"
        saved_ratio = (f"{r.saved_bytes / direct.saved_bytes:.2f}"
                       if r.saved_bytes is not None and direct.saved_bytes else "-")
        rows.append(f"{r.entry:14} {r.framework:9} {r.impl:7} {duration(r.median_us):>10} "
                    f"{r.median_us / direct.median_us:9.2f} {saved:>10} {saved_ratio:>9}")
    return rows


def duration(us: float) -> str:
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.1f} us"


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--quick", action="store_true", help="3 repeats of 2 calls (default: "
                        "7 repeats of 5)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats per implementation")
    parser.add_argument("--number", type=int, help="calls timed together in one repeat")
    parser.add_argument("--rows", type=int, default=4096, help="N (default 4096)")
    parser.add_argument("--losses-cols", type=int, default=1000, help="a loss's C (1000)")
    parser.add_argument("--activation-cols", type=int, default=1024,
                        help="an activation's width (1024)")
    parser.add_argument("--frameworks", default="torch,jax", help="torch,jax (default both)")
    parser.add_argument("--entries", help="comma-separated names (default: all)")
    parser.add_argument("--modules", type=Path, help="a folder that `symnet generate "
                        "examples/my_declarations.py --target torch --target jax -o` wrote "
                        "(default: generated into a temporary folder)")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.number = args.number or (2 if args.quick else 5)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    frameworks = args.frameworks.split(",")
    chosen = [e for e in entries() if not args.entries or e.name in args.entries.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        user_folder = args.modules
        if user_folder is None and any(e.source == "user" for e in chosen):
            user_folder = generate_user_modules(Path(scratch) / "out")
        results = []
        for entry in chosen:
            if sys.stderr.isatty():  # progress, for a run of minutes
                print(f"measuring {entry.name} ...", file=sys.stderr, flush=True)
            cols = args.activation_cols if entry.kind == "activation" else args.losses_cols
            results += measure_entry(entry, frameworks, user_folder, args.rows, cols,
                                     args.repeats, args.number)
    targets = target_lines(results)
    if args.json:
        print(json.dumps({"results": [r.as_json() for r in results],
                          "targets": [{"met": met, "target": line} for met, line in targets]}))
        return 0
    print("\n".join(table(results)))
    print(f"load average after the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for met, line in targets:
        print(f"{'met   ' if met else 'MISSED'} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
