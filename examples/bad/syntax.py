"""A declaration file with a syntax error (a `+` with nothing after it): symnet names the
file and the line (exit status 2). ruff skips this file (pyproject.toml).

    symnet check examples/bad/syntax.py
"""
from symnet import Activation
from symnet.symbols import x

mine = Activation("mine", x**2 +, inputs=x)
