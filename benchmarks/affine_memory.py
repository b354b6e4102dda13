"""Peak extra memory of the affine layer's backward, against its Jacobian (lecture L25).

    python benchmarks/affine_memory.py [--batch 64] [--size 4096]

The backward is the VJPs symnet derives for the catalog's `affine` layer (dL/dX = G W^T,
dL/dW = X^T G, dL/db = colsum(G)), written as numpy by sympy's NumPy printer at the given
sizes and run on float64 arrays. Its peak extra memory is what tracemalloc (numpy reports
its allocations to it) sees allocated during the backward, beyond the arrays already
held. The target is at most 3x the bytes of the layer's inputs (X, W, b) and output (Y);
the Jacobian dY/dX alone would hold (N*M) x (N*D) entries (256 GiB in float32 at
N = 64, D = M = 4096, as the lecture says; twice that in float64).

Prints the figures and exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc

import numpy as np
import sympy as sp

from symnet.catalog.layers import affine
from symnet.matrix import derive_layer

TARGET = 3.0


def shown(count: float) -> str:
    """Bytes in the largest binary unit that keeps the number at least 1."""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def backward_function(batch: int, size: int):
    """The derived VJPs of `affine` as one numpy function (X, W, b, G) -> (dX, dW, db)."""
    derivation = derive_layer(affine)
    N, D, M = (sp.Symbol(n, integer=True, positive=True) for n in "NDM")
    sizes = {N: batch, D: size, M: size}
    inputs = [m.xreplace(sizes) for m in (*affine.inputs, affine.upstream)]
    vjps = [derivation.vjps[m].xreplace(sizes) for m in affine.inputs]
    return sp.lambdify(inputs, vjps, modules="numpy")


def measure(batch: int, size: int, seed: int = 0) -> dict:
    backward = backward_function(batch, size)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, size))
    W = rng.standard_normal((size, size))
    b = rng.standard_normal((1, size))
    Y = X @ W + b
    G = rng.standard_normal(Y.shape)
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    gradients = backward(X, W, b, G)
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
    print(f"affine backward, N = {args.batch}, D = M = {args.size}, float64")
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
