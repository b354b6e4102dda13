"""A loss whose forward jumps: sign(s) is a step, its derivative a Dirac delta, which
symnet refuses in one line (exit status 2) naming the line the declaration is on.

    symnet generate examples/bad/jumps.py:signed -o out
"""

import sympy as sp

from symnet import Loss
from symnet.symbols import C, i, s, y

signed = Loss("signed", sp.Sum(sp.sign(s[i]) * y[i], (i, 0, C - 1)),
              scores=s, size=C, target=y, target_kind="real")
