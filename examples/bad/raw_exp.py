"""A loss with an exp of raw scores: symnet derives it, but refuses to generate code that
would overflow (exp(s) is inf at s = 1000); declare it with LogSumExp, Softmax or
log_softmax instead. `--report` writes nothing then (exit status 2).

    symnet derive examples/bad/raw_exp.py:poisson --report poisson.md
"""

import sympy as sp

from symnet import Loss
from symnet.symbols import C, i, s, y

poisson = Loss("poisson", sp.Sum(sp.exp(s[i]) - y[i] * s[i], (i, 0, C - 1)),
               scores=s, size=C, target=y, target_kind="real")
