"""The symbols the catalog uses, shared so a user's declarations read the same way.

    from symnet.symbols import x, s, y, C, i, j, k, t

Index symbols are plain integer symbols; ranges live in the `Sum` limits
(`Sum(y[i], (i, 0, C - 1))`), so a declaration reads like the formula on paper.
"""

import sympy as sp

#: the real input of an elementwise activation
x = sp.Symbol("x", real=True)
#: Maxout's two pre-activations
a, b = sp.symbols("a b", real=True)
#: the forward output of an activation, for hand derivations written in terms of it
out = sp.Symbol("out", real=True)

#: the number of classes (length of the score vector)
C = sp.Symbol("C", integer=True, positive=True)
#: index symbols: i and j for sums and Jacobians, k for the gradient's entry
i, j, k = sp.symbols("i j k", integer=True)
#: the target class of a sample (a class index in 0..C-1)
t = sp.Symbol("t", integer=True, nonnegative=True)

#: the score vector s (logits) and a one-hot or real target vector y
s = sp.IndexedBase("s", real=True)
y = sp.IndexedBase("y", real=True)

#: a scalar score and a +-1 label (the binary hinge)
score = sp.Symbol("s", real=True)
label = sp.Symbol("y", real=True)

#: a weight vector of length K (regularisers)
W = sp.IndexedBase("W", real=True)
K = sp.Symbol("K", integer=True, positive=True)

#: the regularisation strength
lam = sp.Symbol("lambda", positive=True)
