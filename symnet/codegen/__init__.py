"""Code generation: derivations -> readable, stable numpy modules in generated/.

    printer.py     sympy -> numpy source (one printer, special cases as _print_X)
    forms.py       the array operations lowered expressions use (row sums, take-along, ...)
    batch.py       a loss's index notation -> whole (N, C) arrays
    stable.py      stable by construction: branches, clamps, logistic and softplus forms
    statements.py  CSE with readable temporaries, statements in computing order
    lower.py       derivation -> Module (plain data for a template)
    layout.py      lines that fit ruff's 100 columns
    docs.py        module docstrings: the derived formulas, kinks, shapes
    emit.py        templates rendered, files written atomically, checked against disk
    cli.py         `symnet generate`
"""

from symnet.codegen.emit import Source, differences, files_for, write_files
from symnet.codegen.errors import CodegenError
from symnet.codegen.lower import Module, lower

__all__ = ["CodegenError", "Module", "Source", "differences", "files_for", "lower",
           "write_files"]
