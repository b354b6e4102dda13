"""Fused training steps of whole networks (declared with symnet/declare/step.py, the
catalog's in symnet/catalog/steps.py), one stage after another:

    plan.py         the step's plan: each layer's forward and VJP, the loss, the penalty and
                    each optimiser rule, in the order one step computes them
    code.py         in-place lines over reused buffers, the sums of squares, last reads
    elementwise.py  an optimiser's rules entry by entry, written in place
    lower.py        the plan -> its Module (``lower_step``) for templates/network_step.py.j2,
                    with the BLAS helpers the generated networks import from blas.py
    docs.py         the step module's docstring rows
"""
