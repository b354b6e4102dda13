"""Code generation: derivations -> readable, stable numpy modules in generated/ (and
PyTorch and JAX ones in generated/torch_modules/, generated/jax_modules/).

    printer.py      sympy -> numpy source (one printer, special cases as _print_X)
    array_ops.py    the operations on whole arrays lowered expressions use (row sums,
                    take-along, matrix products, the stable logistic and softplus)
    batch.py        a loss's index notation -> whole (N, C) arrays
    matrices.py     a layer's matrix expressions -> array forms
    stable.py       stable by construction: branches, clamps, logistic and softplus forms
    finite.py       an activation whose code would overflow at +-1000 is refused
    statements.py   CSE with readable temporaries, statements in computing order
    lower.py        derivation -> Module (plain data for a template); `lower` dispatches on
                    the derivation's type
    lower_layer.py  a layer's derivation -> Module (registers itself with `lower`); a tensor
                    layer's is symnet/index/lower.py, registered the same way
    step/           fused training steps of whole networks (declared with
                    symnet/declare/step.py, the catalog's in symnet/catalog/steps.py):
                    planned, lowered to in-place lines over reused buffers, made a module
                    and documented, a module each (listed in its package docstring)
    layout.py       lines that fit ruff's 100 columns
    (module docstrings are symnet/show/docstring.py's: the derivation's rows, kinks, shapes)
    emit.py         templates rendered, files written as a whole, checked against disk
    targets.py      the same modules for PyTorch and JAX (`--target torch|jax`), printed by
                    printer_torch.py and printer_jax.py (subclasses of the numpy printer)
    errors.py       CodegenError
(the `symnet generate` subcommand is symnet/cli/generate.py)
"""

from symnet.codegen import lower_layer  # noqa: F401  (registers the layers' lowering)
from symnet.codegen.emit import Source, differences, files_for, write_files
from symnet.codegen.errors import CodegenError
from symnet.codegen.lower import Module, lower
from symnet.index import lower as _index_lower  # noqa: F401  (and the tensor layers')
from symnet.index import lower_chain as _chain_lower  # noqa: F401  (and their networks')

__all__ = ["CodegenError", "Module", "Source", "differences", "files_for", "lower",
           "write_files"]
