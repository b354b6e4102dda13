"""An activation that overflows float64 at x = 1000: cosh(x). symnet refuses to generate
it and names a stable form to declare instead (exit status 2).

    symnet generate examples/bad/grows.py:cosh_act -o out
"""

import sympy as sp

from symnet import Activation
from symnet.symbols import x

cosh_act = Activation("cosh_act", sp.cosh(x), inputs=x)
