"""Layers and networks at matrix level: declarations, their VJPs, and verdicts on them.

    layers.py          Layer declarations (affine, maxout_layer, yours), broadcast, elementwise
    elementwise.py     an activation applied entry by entry to a matrix
    networks.py        Network declarations: stages of layers, a loss, a regulariser
    vjp.py             a layer -> its VJPs by sympy's matrix calculus, chain rule as fallback
    network_derive.py  a network -> the gradient of each weight, layer by layer
    explicit.py        the same on explicit small matrices, by scalar calculus
    entrywise.py       proofs entry by entry, away from kinks
    check.py           the verdicts of layers and networks (symnet check)
    text.py            matrix formulas as text and LaTeX
    display.py         what `symnet derive` prints for a layer or a network
"""
