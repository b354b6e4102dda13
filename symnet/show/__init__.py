"""Human-readable output: one set of row builders per kind of derivation, which every
output reads, each output choosing only its renderer.

    scalar.py     the rows of an activation's and a loss's derivation
    matrix.py     the rows of a layer's and a network's derivation (and of a layer module)
    page.py       the page: `symnet derive` (text or LaTeX) and Jupyter (`describe`)
    docstring.py  the same rows as a generated module's docstring (text, then LaTeX)
    report.py     the Markdown report of `symnet derive --report`

The training step's docstring rows are symnet.codegen.step.docs's (they read the step's
plan), rendered by docstring.py. symnet.display re-exports page.py and the printers.
"""
