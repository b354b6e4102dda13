"""Layers and networks at matrix level, past their declaration (in symnet/declare/): their
VJPs, and the explicit matrices the checks compare.

    vjp.py             a layer -> its VJPs by sympy's matrix calculus, chain rule as fallback
    network_derive.py  a network -> the gradient of each weight, layer by layer
    explicit.py        the same on explicit small matrices, by scalar calculus
    text.py            matrix formulas as text and LaTeX
    layers.py          a re-export of symnet.declare.layer, where files written before it
                       import the layer's declaration language from

Their verdicts are symnet.verify.matrix's (entry by entry in symnet.verify.entrywise), their
pages symnet.show.matrix's.
"""
