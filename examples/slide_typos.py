"""The two typos of the lecture's slides, declared as a user would, for `symnet check`.

    symnet check examples/slide_typos.py      # exits 1: both typos are refuted
    symnet check examples/slide_typos.py:svm_corrected

L16: the slide expands the SVM loss of a linear model s = W x as
     sum_{j != y} max(0, W_j.x + W_y.x + 1); the sign of W_y.x is wrong.
L31: the slide's derivation of dL/do_i for softmax cross-entropy sums over k != 1
     where k != i is meant.
"""

import sympy as sp

from symnet import Gradient, Identity, Loss, Softmax, log_softmax
from symnet.symbols import C, i, j, k, s, t, y

KD = sp.KroneckerDelta
m = sp.Symbol("m", integer=True)
D = sp.Symbol("D", integer=True, positive=True)
W = sp.IndexedBase("W", real=True)
x = sp.IndexedBase("x", real=True)


def row_times_x(row):
    """W_row . x, the score of class `row` in a linear model."""
    return sp.Sum(W[row, m] * x[m], (m, 0, D - 1))


svm_forward = sp.Sum((1 - KD(j, t)) * sp.Max(0, s[j] - s[t] + 1), (j, 0, C - 1))
svm_of_linear_model = svm_forward.xreplace({s[j]: row_times_x(j), s[t]: row_times_x(t)})


def svm_expansion(sign):
    return sp.Sum((1 - KD(j, t)) * sp.Max(0, row_times_x(j) + sign * row_times_x(t) + 1),
                  (j, 0, C - 1))


svm_slide = Loss(
    "svm_slide", svm_forward, scores=s, size=C, target=t, target_kind="class_index",
    hand=[Identity(svm_of_linear_model, svm_expansion(+1),
                   label="L16 as on the slide: max(0, W_j.x + W_y.x + 1)")],
)

svm_corrected = Loss(
    "svm_corrected", svm_forward, scores=s, size=C, target=t, target_kind="class_index",
    hand=[Identity(svm_of_linear_model, svm_expansion(-1),
                   label="L16 corrected: max(0, W_j.x - W_y.x + 1)")],
)

ce_forward = -sp.Sum(y[i] * log_softmax(s, C, i), (i, 0, C - 1))
p = Softmax(s, C, k)


def ce_middle_line(excluded):
    """-y_k (1 - p_k) + sum_{m != excluded} y_m p_k: a line of the slide's derivation."""
    return -y[k] * (1 - p) + sp.Sum((1 - KD(m, excluded)) * y[m] * p, (m, 0, C - 1))


softmax_ce_slide = Loss(
    "softmax_ce_slide", ce_forward, scores=s, size=C, target=y, target_kind="one_hot",
    constraints=[sp.Eq(sp.Sum(y[i], (i, 0, C - 1)), 1)],
    hand=[Gradient(ce_middle_line(1), label="L31 as on the slide: sum over k != 1")],
)

softmax_ce_corrected = Loss(
    "softmax_ce_corrected", ce_forward, scores=s, size=C, target=y, target_kind="one_hot",
    constraints=[sp.Eq(sp.Sum(y[i], (i, 0, C - 1)), 1)],
    hand=[Gradient(ce_middle_line(k), label="L31 corrected: sum over k != i")],
)
