"""Peak extra memory of the affine layer's backward, against its Jacobian (lecture L25).

    python benchmarks/affine_memory.py [--batch 64] [--size 4096]

The backward is the generated module generated/layers/affine.py (`symnet generate`), the
VJPs symnet derives for the catalog's `affine` layer (dX = dY @ W.T, dW = X.T @ dY,
db = np.sum(dY, axis=0, keepdims=True)), run on float64 arrays after its forward. Its peak
extra memory is what tracemalloc (numpy reports its allocations to it) sees allocated
during the backward, beyond the arrays already held (the cache holds references, no
copies). The target is at most 3x the bytes of the layer's inputs (X, W, b) and output (Y);
the Jacobian dY/dX alone would hold (N*M) x (N*D) entries (256 GiB in float32 at
N = 64, D = M = 4096, as the lecture says; twice that in float64).

Prints the figures and exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

TARGET = 3.0
MODULE = Path(__file__).resolve().parents[1] / "generated" / "layers" / "affine.py"


def shown(count: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1."""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def generated_affine():
    """The generated module, loaded from its file (numpy only: no sympy, no symnet)."""
    spec = importlib.util.spec_from_file_location("generated_affine", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(batch: int, size: int, seed: int = 0) -> dict:
    affine = generated_affine()
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, size))
    W = rng.standard_normal((size, size))
    b = rng.standard_normal((1, size))
    Y, cache = affine.forward(X, W, b)
    G = rng.standard_normal(Y.shape)
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    gradients = affine.backward(G, cache)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    layer_bytes = X.nbytes + W.nbytes + b.nbytes + Y.nbytes
    jacobian_entries = (batch * size) * (batch * size)
    return {"peak": peak, "layer": layer_bytes, "ratio": peak / layer_bytes,
            "jacobian64": jacobian_entries * 8, "jacobian32": jacobian_entries * 4,
            "seconds": seconds, "shapes": [g.shape for g in gradients]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="N (default 64)")
    parser.add_argument("--size", type=int, default=4096, help="D = M (default 4096)")
    args = parser.parse_args(argv)
    r = measure(args.batch, args.size)
    print(f"generated affine backward ({MODULE.relative_to(MODULE.parents[2])}), "
          f"N = {args.batch}, D = M = {args.size}, float64")
    print(f"  gradients         dX {r['shapes'][0]}, dW {r['shapes'][1]}, db {r['shapes'][2]}")
    print(f"  inputs + output   {shown(r['layer'])}  (X, W, b, Y)")
    print(f"  peak extra        {shown(r['peak'])}  = {r['ratio']:.2f}x the inputs + output "
          f"(target: at most {TARGET:.0f}x)")
    print(f"  Jacobian dY/dX    {shown(r['jacobian64'])} in float64, "
          f"{shown(r['jacobian32'])} in float32 (never formed)")
    print(f"  backward took     {r['seconds']:.3f} s")
    return 0 if r["ratio"] <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
