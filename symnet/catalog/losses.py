"""The lecture's per-sample losses and the L2 regulariser, then more, with their hand
derivations.

Scores are a vector s of symbolic length C (``s[i]`` in ``Sum(..., (i, 0, C - 1))``);
the target is a class index t or a one-hot vector y. The batch and its mean are added
by code generation, not here.
"""

import sympy as sp

from symnet.declare.scalar import Gradient, Identity, Jacobian, Loss, Regularizer
from symnet.primitives import Logistic, LogSumExp, Softmax, Softplus, log_softmax
from symnet.symbols import C, K, W, i, j, k, label, lam, s, score, t, y
from symnet.target_kinds import CLASS_INDEX, ONE_HOT, REAL, SIGN

KD = sp.KroneckerDelta
m = sp.Symbol("m", integer=True)
e = sp.Symbol("e", integer=True)
D = sp.Symbol("D", integer=True, positive=True)
hinge_weight = sp.Symbol("c", positive=True)


def _margin(n):
    return s[n] - s[t] + 1


# L02: the multiclass SVM loss and the same loss of a linear model s = W x (L01).
_svm_forward = sp.Sum((1 - KD(j, t)) * sp.Max(0, _margin(j)), (j, 0, C - 1))
_weights, _features = sp.IndexedBase("W", real=True), sp.IndexedBase("x", real=True)


def _linear_score(n):
    return sp.Sum(_weights[n, m] * _features[m], (m, 0, D - 1))


def _in_linear_model(expr):
    """expr with every score s_n replaced by W_n . x (L01's s = W x)."""
    return expr.xreplace({s[n]: _linear_score(n) for n in (j, k, t)})


def _active(n):
    return sp.Heaviside(_margin(n), 0)


_positive_margins = sp.Sum((1 - KD(j, t)) * _active(j), (j, 0, C - 1))

svm = Loss(
    "svm", _svm_forward, scores=s, size=C, target=t, target_kind=CLASS_INDEX,
    hand=[
        Gradient((1 - KD(k, t)) * _active(k) - KD(k, t) * _positive_margins,
                 label="L02 dL/ds_k: 1[margin_k > 0], and minus their count at the true class"),
        Gradient(_in_linear_model((1 - KD(k, t)) * _active(k) - KD(k, t) * _positive_margins)
                 * _features[e],
                 of=_in_linear_model(_svm_forward), wrt=_weights[k, e],
                 label="L02 dL/dW_k = 1[margin_k > 0] x; dL/dW_t = -(count) x"),
    ],
    doc="Multiclass SVM (hinge) loss with margin 1: sum over j != t of max(0, s_j - s_t + 1).",
)

hinge = Loss(
    "hinge", hinge_weight * sp.Max(0, 1 - label * score), scores=score,
    target=label, target_kind=SIGN, params={hinge_weight: 1},
    hand=[Gradient(-hinge_weight * label * sp.Heaviside(1 - label * score, 0),
                   label="L27 dL/ds = -C y where the margin 1 - y s > 0")],
    doc="Binary hinge loss C max(0, 1 - y s) for a label y in {-1, +1} (L27).",
)

_one_hot = [sp.Eq(sp.Sum(y[i], (i, 0, C - 1)), 1)]
_p = Softmax(s, C, i)
P = sp.IndexedBase("P", positive=True)
Q = sp.IndexedBase("Q", positive=True)

softmax_ce = Loss(
    "softmax_ce", -sp.Sum(y[i] * log_softmax(s, C, i), (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind=ONE_HOT, constraints=_one_hot,
    hand=[
        Gradient(Softmax(s, C, k) - y[k], label="L31 dL/do_i = p_i - y_i"),
        Gradient(-y[k] * (1 - Softmax(s, C, k))
                 + sp.Sum((1 - KD(m, k)) * y[m] * Softmax(s, C, k), (m, 0, C - 1)),
                 label="L31 -y_i (1 - p_i) + sum_{k != i} y_k p_i"),
        Jacobian(sp.exp(s[i]) / sp.Sum(sp.exp(s[m]), (m, 0, C - 1)),
                 Softmax(s, C, i) * (KD(i, j) - Softmax(s, C, j)),
                 label="L29 dp_i/da_j = p_i (delta_ij - p_j)"),
        Jacobian(sp.exp(s[i]) / sp.Sum(sp.exp(s[m]), (m, 0, C - 1)),
                 sp.Piecewise((_p * (1 - Softmax(s, C, j)), sp.Eq(i, j)),
                              (-Softmax(s, C, j) * _p, True)),
                 label="L29 p_i (1 - p_j) if i = j, -p_j p_i otherwise"),
        Identity(-sp.log(sp.exp(s[t]) / sp.Sum(sp.exp(s[m]), (m, 0, C - 1))),
                 -s[t] + LogSumExp(s, C),
                 label="L28 -log(e^{f_y} / sum_j e^{f_j}) = -f_y + log sum_j e^{f_j}"),
        Identity(-sp.Sum(KD(i, t) * log_softmax(s, C, i), (i, 0, C - 1)),
                 -sp.log(sp.exp(s[t]) / sp.Sum(sp.exp(s[m]), (m, 0, C - 1))),
                 label="L30 cross-entropy with a one-hot p and q = softmax is the softmax loss"),
        Identity(-sp.Sum(P[i] * sp.log(Q[i]), (i, 0, C - 1)),
                 -sp.Sum(P[i] * sp.log(P[i]), (i, 0, C - 1))
                 + sp.Sum(P[i] * sp.log(P[i] / Q[i]), (i, 0, C - 1)),
                 label="L30 H(p, q) = H(p) + KL(p || q)"),
    ],
    doc="Softmax cross-entropy -sum_i y_i log softmax(s)_i for a one-hot y (L28, L30, L31).",
)

squared_error = Loss(
    "squared_error", sp.Sum((s[i] - y[i]) ** 2, (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind=REAL,
    hand=[Gradient(2 * (s[k] - y[k]), label="L12 grad_y_pred = 2 (y_pred - y)")],
    doc="Squared error sum_i (s_i - y_i)^2, the loss of the lecture's 20-line network (L12).",
)

l2 = Regularizer(
    "l2", lam * sp.Sum(W[i] ** 2, (i, 0, K - 1)), weights=W, size=K,
    params={lam: sp.Rational(1, 1000)},
    hand=[Gradient(2 * lam * W[k], label="L03 d/dW lambda sum W^2 = 2 lambda W")],
    doc="The L2 regulariser lambda sum_k W_k^2 (L03).",
)


# --- past the lecture ----------------------------------------------------------------------

delta = sp.Symbol("delta", positive=True)
_residual = s[i] - y[i]
_r = s[k] - y[k]

huber = Loss(
    "huber", sp.Sum(sp.Piecewise((_residual ** 2 / 2, sp.Abs(_residual) <= delta),
                                 (delta * (sp.Abs(_residual) - delta / 2), True)),
                    (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind=REAL, params={delta: 1},
    hand=[
        Gradient(sp.Piecewise((-delta, _r < -delta), (_r, _r <= delta), (delta, True)),
                 label="huber' = -delta, r or delta where r < -delta, |r| <= delta, "
                       "r > delta (r = s - y)"),
        Gradient(sp.Max(-delta, sp.Min(delta, _r)),
                 label="huber' = r clipped to [-delta, delta]"),
    ],
    doc="The Huber loss with threshold delta: r^2 / 2 where |r| <= delta, "
        "delta (|r| - delta / 2) elsewhere, for the residual r = s - y of a real target.",
)

bce_logits = Loss(
    "bce_logits", sp.Sum(Softplus(s[i]) - y[i] * s[i], (i, 0, C - 1)),
    scores=s, size=C, target=y, target_kind=REAL,
    hand=[
        Gradient(Logistic(s[k]) - y[k], label="dL/ds_k = sigmoid(s_k) - y_k"),
        Identity(Softplus(s[i]) - y[i] * s[i],
                 -y[i] * sp.log(Logistic(s[i])) - (1 - y[i]) * sp.log(1 - Logistic(s[i])),
                 label="softplus(s) - y s = -y log p - (1 - y) log(1 - p) with p = sigmoid(s)"),
    ],
    doc="Binary cross-entropy on logits, one independent label y_i in [0, 1] per score: "
        "sum_i softplus(s_i) - y_i s_i, i.e. -y log sigma(s) - (1 - y) log(1 - sigma(s)), "
        "computed without overflow.",
)

l1 = Regularizer(
    "l1", lam * sp.Sum(sp.Abs(W[i]), (i, 0, K - 1)), weights=W, size=K,
    params={lam: sp.Rational(1, 1000)},
    hand=[
        Gradient(lam * sp.sign(W[k]), label="d/dW lambda sum |W| = lambda sign(W), W != 0"),
        Gradient(lam * (2 * sp.Heaviside(W[k], 1) - 1),
                 label="lambda (2 [W >= 0] - 1): the step [W >= 0] is 1 at W = 0, so "
                       "the gradient there is +lambda"),
    ],
    doc="The L1 regulariser lambda sum_k |W_k|. At W_k = 0, where |W| has a kink, the "
        "gradient is +lambda: |w| is w for w >= 0 and -w elsewhere, and the branch that "
        "holds at 0 decides (a subgradient: any value in [-lambda, lambda] is one).",
)
