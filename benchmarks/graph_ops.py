"""Reverse mode against naive symbolic differentiation, in operations (lecture section 02).

For f = tanh(w_d * tanh(... tanh(w_1 * x))) (a weight per level), prints for d = 2..24:
the operations of symnet's emitted forward and backward, and of the naive gradients
`sympy.diff(f, v)`, w.r.t. the d weights and w.r.t. every input (the weights and x, the
same gradients the backward computes). An operation is one of `sympy.count_ops` on a
right-hand side, for all four columns.

    python benchmarks/graph_ops.py [--max-depth 24]

Reverse mode grows linearly (5 operations per level against 2 for the forward: 2.5x);
the naive gradients grow about as d^3.
"""

from __future__ import annotations

import argparse
import time

import sympy as sp

from symnet.graph import build, op_counts


def nested_tanh(depth: int) -> tuple[sp.Expr, tuple, sp.Symbol]:
    x = sp.Symbol("x")
    weights = sp.symbols(f"w1:{depth + 1}")
    f = x
    for w in weights:
        f = sp.tanh(w * f)
    return f, weights, x


def naive_ops(f: sp.Expr, variables) -> int:
    return sum(int(sp.count_ops(sp.diff(f, v))) for v in variables)


def row(depth: int) -> dict:
    f, weights, x = nested_tanh(depth)
    started = time.perf_counter()
    ops = op_counts(build(f))
    graph_seconds = time.perf_counter() - started
    started = time.perf_counter()
    naive_weights = naive_ops(f, weights)
    naive_all = naive_weights + naive_ops(f, (x,))
    naive_seconds = time.perf_counter() - started
    return {"d": depth, **ops, "ratio": ops["backward"] / ops["forward"],
            "naive_weights": naive_weights, "naive_all": naive_all,
            "graph_s": graph_seconds, "naive_s": naive_seconds}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-depth", type=int, default=24)
    args = parser.parse_args(argv)
    print(f"{'d':>3} {'forward':>8} {'backward':>9} {'bwd/fwd':>8} "
          f"{'naive(w)':>9} {'naive(all)':>11} {'graph s':>8} {'naive s':>8}")
    for depth in range(2, args.max_depth + 1):
        r = row(depth)
        print(f"{r['d']:>3} {r['forward']:>8} {r['backward']:>9} {r['ratio']:>8.2f} "
              f"{r['naive_weights']:>9} {r['naive_all']:>11} {r['graph_s']:>8.3f} "
              f"{r['naive_s']:>8.3f}")


if __name__ == "__main__":
    main()
