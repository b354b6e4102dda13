"""One training step of a ReLU network with softmax cross-entropy and L2, by SGD, momentum or
Adam, of depth 2 or 3: symnet's generated fused step against layer by layer, hand-written
numpy with the same update, the bare matrix products, PyTorch (eager, torch.optim's foreach
optimisers; Adam's fused=True beside), JAX (jit, the update in jax.numpy) and autograd (SGD,
depth 2), all in this one process.

    python benchmarks/train_step.py              # SGD at depth 2, the table (about 7 minutes)
    python benchmarks/train_step.py --optimizers sgd,momentum,adam --depth 2,3   # issue 17
    python benchmarks/train_step.py --quick      # fewer repeats, float64 only (< 1 minute)
    python benchmarks/train_step.py --json       # one line: {"results": [...], ...}
    python benchmarks/train_step.py --symbolic   # the cost of symnet check and generate

Contenders take turns (the order rotates every repeat) and each timed batch starts after a
pause, so that the thread pools of the library before it (OpenBLAS's, PyTorch's, XLA's)
have gone to sleep: without it, one library's spinning threads slow the next one down.
Each time is the median of the repeats; each repeat is a batch of calls long enough to
time. Ratios are against `gemm_limit` (the five matrix products alone, through numpy) and
against symnet's fused step, measured in the same run; `gemm_limit_scipy` is the same five
products through scipy's BLAS, the library the fused step's gemms use, so that the part of
fused / gemm_limit owed to the BLAS build shows. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from step_contenders import CONTENDERS, problem  # noqa: E402

SHAPES = {"small": (64, 64, 100, 10), "medium": (256, 784, 512, 10),
          "large": (512, 3072, 1024, 10)}
#: the targets of issue 7: fused / gemm_limit at most this, per shape
GEMM_TARGETS = {"small": 1.5, "medium": 1.10, "large": 1.10}
JAX_TARGETS = {"small": 1.3, "medium": 1.0, "large": 1.0}
#: issue 17's targets at medium and large: fused momentum / fused SGD, fused Adam / PyTorch's
#: and JAX's Adam; and at every shape each fused step / its layer-by-layer path
MOMENTUM_TARGET, ADAM_TARGET, LAYERS_TARGET = 1.15, 1.0, 0.7
#: deriving, checking and generating the whole catalog (check + generate --check), seconds
SYMBOLIC_TARGETS = {"cold": 15.0, "nothing changed": 1.0}


def calibrate(step, seconds: float) -> int:
    """How many calls make one timed batch of about `seconds`."""
    step()
    started = time.perf_counter()
    step()
    once = time.perf_counter() - started
    return max(1, int(seconds / max(once, 1e-7)))


def timed_batch(step, calls: int, pause: float) -> float:
    """Seconds per call over one batch, after the pause and one call to wake the pool."""
    time.sleep(pause)
    step()
    started = time.perf_counter()
    for _ in range(calls):
        step()
    return (time.perf_counter() - started) / calls


def measure(steps: dict, repeats: int, pause: float, seconds: float) -> dict:
    """name -> median seconds per call, the contenders interleaved."""
    calls = {name: calibrate(step, seconds) for name, step in steps.items()}
    samples = {name: [] for name in steps}
    names = list(steps)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(timed_batch(steps[name], calls[name], pause))
    return {name: statistics.median(times) for name, times in samples.items()}


def run(shapes, dtypes, contenders, repeats, pause, seconds, optimizers=("sgd",),
        depths=(2,)) -> list[dict]:
    results = []
    for optimizer in optimizers:
        for depth in depths:
            for shape in shapes:
                for dtype in dtypes:
                    p = problem(*SHAPES[shape], dtype, optimizer=optimizer, depth=depth)
                    results += _rows(p, contenders, repeats, pause, seconds,
                                     {"optimizer": optimizer, "depth": depth, "shape": shape,
                                      "dtype": np.dtype(dtype).name})
    return results


def _rows(p, contenders, repeats, pause, seconds, labels: dict) -> list[dict]:
    steps = {name: make(p) for name, make in contenders.items()}
    steps = {name: step for name, step in steps.items() if step is not None}
    load = os.getloadavg()[0]
    medians = measure(steps, repeats, pause, seconds)
    print(f"  done {' '.join(map(str, labels.values()))} (load {load:.2f})", file=sys.stderr)
    return [{**labels, "impl": name, "median_us": round(median * 1e6, 1),
             "load": round(load, 2)} for name, median in medians.items()]


def _versions() -> dict:
    found = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("scipy", "torch", "jax", "autograd", "sympy"):
        try:
            module = __import__(name)
            found[name] = getattr(module, "__version__", "installed")
        except ImportError:
            found[name] = None
    return found


def blas_versions() -> dict:
    """The BLAS each library was built with: numpy's matmul (gemm_limit, hand-written
    numpy) and scipy's gemm (symnet's fused step) are separate OpenBLAS builds, and the
    same product differs by a few per cent between them."""
    found = {}
    for name in ("numpy", "scipy"):
        try:
            config = __import__(name).show_config(mode="dicts")
            found[name] = config["Build Dependencies"]["blas"].get("version")
        except (ImportError, KeyError, TypeError, AttributeError):
            found[name] = None
    return found


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    blas_env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))}
    return {"cpu": cpu, "cores": os.cpu_count(), "load": [round(v, 2) for v in os.getloadavg()],
            "versions": _versions(), "blas": blas_versions(), "blas_env": blas_env}


# --- the report ------------------------------------------------------------------------------


def table(results: list[dict]) -> list[str]:
    lines = [f"{'optimizer':9} {'depth':5} {'shape':7} {'dtype':8} {'impl':18} {'median':>11} "
             f"{'x gemm_limit':>13} {'fused/impl':>11}  load"]
    for (optimizer, depth, shape, dtype), rows in _groups(results).items():
        by_impl = {r["impl"]: r["median_us"] for r in rows}
        limit, fused = by_impl.get("gemm_limit"), by_impl.get("symnet_fused")
        for r in rows:
            us = r["median_us"]
            shown = f"{us / 1000:8.2f} ms" if us >= 1000 else f"{us:8.1f} us"
            versus_limit = f"{us / limit:13.2f}" if limit else " " * 13
            versus_fused = f"{fused / us:11.2f}" if fused else " " * 11
            lines.append(f"{optimizer:9} {depth:<5} {shape:7} {dtype:8} {r['impl']:18} "
                         f"{shown:>11} {versus_limit} {versus_fused}  {r['load']:.2f}")
    return lines


def _groups(results: list[dict]) -> dict:
    groups: dict = {}
    for r in results:
        key = (r.get("optimizer", "sgd"), r.get("depth", 2), r["shape"], r["dtype"])
        groups.setdefault(key, []).append(r)
    return groups


def verdicts(results: list[dict]) -> list[str]:
    """Each target of issues 7 and 17, met or missed, in this run."""
    lines, groups = [], _groups(results)
    for (optimizer, depth, shape, dtype), rows in groups.items():
        by_impl = {r["impl"]: r["median_us"] for r in rows}
        fused = by_impl.get("symnet_fused")
        if fused is None:
            continue
        checks = [("symnet_layers", LAYERS_TARGET)]
        if optimizer == "sgd" and depth == 2:
            checks += [("gemm_limit", GEMM_TARGETS[shape]), ("jax_jit", JAX_TARGETS[shape])]
            checks += [(name, 1.0) for name in ("numpy_handwritten", "torch", "autograd")]
        if optimizer == "adam" and shape != "small":
            checks += [("torch", ADAM_TARGET), ("jax_jit", ADAM_TARGET)]
        label = f"{optimizer:8} {depth} {shape:6} {dtype:7}"
        for name, target in checks:
            if name in by_impl:
                lines.append(_verdict(label, f"fused / {name}", fused / by_impl[name], target))
        sgd = groups.get(("sgd", depth, shape, dtype))
        sgd_fused = {r["impl"]: r["median_us"] for r in sgd or []}.get("symnet_fused")
        if optimizer == "momentum" and shape != "small" and sgd_fused:
            lines.append(_verdict(label, "fused / fused sgd", fused / sgd_fused,
                                  MOMENTUM_TARGET))
        for name, what in (("gemm_limit_scipy", "the BLAS the step uses"),
                           ("torch_fused_adam", "PyTorch's fused=True Adam")):
            if name in by_impl:     # no target
                lines.append(f"info   {label} fused / {name:17} = "
                             f"{fused / by_impl[name]:5.2f} ({what})")
    return lines


def _verdict(label: str, what: str, ratio: float, target: float) -> str:
    mark = "met   " if ratio <= target else "MISSED"
    return f"{mark} {label} {what:25} = {ratio:5.2f} (target <= {target})"


def symbolic_cost() -> list[dict]:
    """Seconds (wall and CPU) of deriving and checking the whole catalog (`symnet check`)
    and of generating it (`symnet generate --check`), each in a fresh process: first from
    cold (an empty cache), then with nothing changed (symnet.cache and symnet.cli.replay
    filled). CPU counts every process, the workers of symnet.cli.parallel included."""
    import resource
    import subprocess
    import tempfile

    found = []
    with tempfile.TemporaryDirectory() as folder:
        env = {**{k: v for k, v in os.environ.items() if k != "SYMNET_NO_CACHE"},
               "SYMNET_CACHE": folder}
        for run in ("cold", "nothing changed"):
            for command in (["check"], ["generate", "--check"]):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "symnet", *command], env=env,
                               capture_output=True, cwd=Path(__file__).resolve().parents[1],
                               check=False)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                found.append({"command": "symnet " + " ".join(command), "run": run,
                              "wall_s": round(time.perf_counter() - started, 2),
                              "cpu_s": round(cpu, 2)})
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="float64 only, 5 repeats, short batches: under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--impl", help="comma-separated contenders (default: all installed)")
    parser.add_argument("--optimizers", default="sgd",
                        help="comma-separated: sgd, momentum, adam (default: sgd)")
    parser.add_argument("--depth", default="2",
                        help="comma-separated depths: 2 (one hidden layer), 3 (default: 2)")
    parser.add_argument("--symbolic", action="store_true",
                        help="time `symnet check` and `symnet generate --check` instead")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds before each timed batch, for the thread pools of the "
                             "contender before to settle (0.3 s left XLA's or PyTorch's still "
                             "slowing the next one by up to 35%%)")
    args = parser.parse_args(argv)
    if args.symbolic:
        costs = symbolic_cost()
        if args.json:
            print(json.dumps({"symbolic": costs, "machine": machine()}))
            return 0
        for c in costs:
            print(f"{c['command']:24} {c['run']:16} {c['wall_s']:6.2f} s wall, "
                  f"{c['cpu_s']:6.2f} s CPU")
        for which, target in SYMBOLIC_TARGETS.items():
            wall = sum(c["wall_s"] for c in costs if c["run"] == which)
            print(f"{'met   ' if wall <= target else 'MISSED'} the whole catalog, {which}: "
                  f"{wall:.2f} s wall (target <= {target} s)")
        return 0
    dtypes = ["float64"] if args.quick else args.dtypes.split(",")
    repeats, pause, seconds = (5, 0.3, 0.05) if args.quick else (args.repeats, args.pause, 0.2)
    chosen = args.impl.split(",") if args.impl else list(CONTENDERS)
    contenders = {name: CONTENDERS[name] for name in chosen}
    results = run(args.shapes.split(","), [np.dtype(d) for d in dtypes], contenders,
                  max(repeats, 5), pause, seconds, args.optimizers.split(","),
                  [int(d) for d in args.depth.split(",")])
    if args.json:
        print(json.dumps({"results": results, "machine": machine()}))
        return 0
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores; load after the run {info['load']}; "
          f"BLAS environment {info['blas_env'] or 'none'}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))
    print("BLAS: " + ", ".join(f"{k}'s OpenBLAS {v}" for k, v in info["blas"].items() if v))
    print("\n".join(table(results)))
    print("\n".join(verdicts(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
