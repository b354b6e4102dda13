"""Lowered expressions -> JAX source: symnet's numpy printer with ``jnp`` for ``np``.

``jax.numpy`` mirrors numpy's API, arrays' methods included (``.sum(axis=1,
keepdims=True)``, ``.astype``, ``.T``), so the numpy printer's text serves once its module
is ``jnp`` (sympy's JaxPrinter makes the same substitution). What lowering emits for
activations, losses and layers is pure (no ``out=``, no in-place update): jit and vmap
trace it as it stands. A function numpy's printer takes from Python's math module
(``math.erf``: numpy has none) is jax.scipy.special's where JAX_BEYOND_NUMPY has it (``import
jax`` loads jax.scipy); any other has no jax spelling here and is refused, naming it.
"""

from __future__ import annotations

import re

from symnet.codegen.printer import NumpyPrinter, no_spelling

#: `np.` where it is the module (np is a reserved name: never a variable of the code)
_NUMPY_MODULE = re.compile(r"(?<![\w.])np\.")
#: what numpy lacks and sympy's numpy printer takes from Python's math module -> jax's
JAX_BEYOND_NUMPY = {"math.erf": "jax.scipy.special.erf", "math.erfc": "jax.scipy.special.erfc",
                    "math.lgamma": "jax.scipy.special.gammaln"}


class JaxPrinter(NumpyPrinter):
    """The numpy printer, spelled for jax.numpy; see the module docstring."""

    target = "jax"
    native_forms = frozenset({"Logistic"})

    @staticmethod
    def array_like(name: str, like: str) -> str:
        return f"jnp.asarray({name}, dtype={like}.dtype)"

    def _module_format(self, fqn, register=True):
        module, _, name = fqn.partition(".")
        if fqn in JAX_BEYOND_NUMPY:
            return JAX_BEYOND_NUMPY[fqn]
        if module != "numpy" or not name.isidentifier():
            raise no_spelling("jax", f"{name} ({fqn} in numpy)")
        return f"jnp.{name}"

    def _print_Logistic(self, expr):
        # jax's own (lax.logistic): one op that XLA fuses, finite for any input
        return f"jax.nn.sigmoid({self._print(expr.args[0])})"

    def _print_Softplus(self, expr):
        # the row's stable form max(u, 0) + log1p(exp(-|u|)), which XLA fuses into one loop;
        # jnp.logaddexp computes the same with its own guards for infinities, 2.5x as long
        # under jit (benchmarks/bridges.py, 4096 x 1024 float32)
        u = self._print(expr.args[0])
        return f"jnp.maximum({u}, 0) + jnp.log1p(jnp.exp(-jnp.abs({u})))"

    def doprint(self, expr, assign_to=None):
        return _NUMPY_MODULE.sub("jnp.", super().doprint(expr, assign_to))

    # --- a tensor layer's array nodes (symnet.index.arrays) ------------------------------

    def _print_Einsum(self, expr):
        spec, *operands = expr.args
        shown = ", ".join(self._print(o) for o in operands)
        return f"jnp.einsum('{spec.name}', {shown}, optimize=True)"

    def _print_OnesRow(self, expr):
        size, like = expr.args
        return f"jnp.ones({self._print(size)}, dtype={self._print(like)}.dtype)"
