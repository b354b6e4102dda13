"""Swish, x sigmoid(x), written as a user first writes it: with a raw exp.

    symnet generate examples/swish.py:swish -o out

symnet lowers x / (1 + exp(-x)) to the logistic function computed from exp(-|x|) <= 1, so
the generated module is finite at x = -1000 although the formula as written overflows.
"""

import sympy as sp

from symnet import Activation
from symnet.symbols import x

swish = Activation("swish", x / (1 + sp.exp(-x)), inputs=x,
                   doc="Swish: x sigmoid(x), as x / (1 + e^-x).")
