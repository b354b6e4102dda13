"""The lecture's layers and networks at matrix level, batch first (the third
level of declaration, after scalars and per-sample vectors).

Batch first: a batch X is N x D, one sample per row, so the lecture's column-vector
formulas appear transposed here. Its f = W2 max(0, W1 x) with W1 in R^{H x D} is
S = relu(X W1) W2 with W1 in R^{D x H}; each network carries an Identity that checks the
batch-first forward against the lecture's own orientation.

Every activation of the catalog is also a layer under its own name (`LAYERS["relu"]`, made
by `symnet.declare.layer.activation_layer`): the activation's declaration is the one place it is
declared, at both levels.
"""

import sympy as sp
from sympy import HadamardProduct as hadamard
from sympy import MatrixSymbol as Matrix
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symnet.catalog import activations
from symnet.catalog.activations import maxout, relu, sigmoid
from symnet.catalog.losses import l2, softmax_ce, squared_error, svm
from symnet.declare.layer import Layer, activation_layer, broadcast, elementwise, size
from symnet.declare.network import Network, use
from symnet.declare.scalar import Activation, Gradient, Identity
from symnet.declare.tensor import IndexLayer, indices, max_over, over, tensors
from symnet.declare.tensor import size as index_size
from symnet.symbols import lam, x

N, D, M, H, H1, H2, C = (size(n) for n in ("N", "D", "M", "H", "H1", "H2", "C"))


def step(matrix, at_zero=0):
    """[U > 0] entry by entry (at_zero=1: [U >= 0]), for hand derivations."""
    return ElementwiseApplyFunction(sp.Lambda(x, sp.Heaviside(x, at_zero)), matrix)


def ones(rows, cols):
    return sp.OneMatrix(rows, cols)


# --- layers ------------------------------------------------------------------------------------

X, W, b, G = Matrix("X", N, D), Matrix("W", D, M), Matrix("b", 1, M), Matrix("G", N, M)

affine = Layer(
    "affine", X * W + broadcast(b, N), inputs=(X, W, b), upstream=G,
    hand=[
        Gradient(G * W.T, wrt=X, label="L26 dL/dx = (dL/dy) w^T  (N x D)"),
        Gradient(X.T * G, wrt=W, label="L26 dL/dw = x^T (dL/dy)  (D x M)"),
        Gradient(ones(1, N) * G, wrt=b, label="dL/db = the column sums of dL/dy  (1 x M)"),
    ],
    doc="The affine layer Y = X W + b, the bias row b broadcast over the batch (L26).",
)

W1, b1, W2, b2 = Matrix("W1", D, M), Matrix("b1", 1, M), Matrix("W2", D, M), Matrix("b2", 1, M)
_first, _second = X * W1 + broadcast(b1, N), X * W2 + broadcast(b2, N)
_routed_to_first = hadamard(G, step(_first - _second, 1))

maxout_layer = Layer(
    "maxout_layer", elementwise(maxout, _first, _second), inputs=(X, W1, b1, W2, b2),
    upstream=G,
    hand=[
        Gradient(X.T * _routed_to_first, wrt=W1,
                 label="L10 Maxout routes G to the larger map: dL/dW1 = X^T (G .* [A >= B])"),
        Gradient(X.T * hadamard(G, step(_second - _first)), wrt=W2,
                 label="L10 dL/dW2 = X^T (G .* [B > A])"),
        Gradient(ones(1, N) * _routed_to_first, wrt=b1, label="dL/db1 = colsum(G .* [A >= B])"),
    ],
    doc="Maxout over two affine maps: max(X W1 + b1, X W2 + b2) entry by entry (L10).",
)


# --- tensor layers, in index notation (symnet.index) ---------------------------------------

Nb, Db = index_size("N"), index_size("D")
n, d, k = indices("n d k")
Xi, Yi, Gi, gamma, beta, mu, var, sigma, x_hat = tensors("X Y G gamma beta mu var sigma x_hat")
eps = sp.Symbol("eps", positive=True)


def colsum(entry_of_k) -> sp.Sum:
    """The sum over the batch, sum_k f(k), of an expression in the batch index k."""
    return over(entry_of_k, k, Nb)


# cs231n's staged backward through the graph mean -> centred -> variance -> inverse
# deviation -> normalised -> scaled, each intermediate's gradient summed over the batch
_dxhat = Gi[n, d] * gamma[d]
_dvar = colsum(Gi[k, d] * gamma[d] * (Xi[k, d] - mu[d])) * sp.Rational(-1, 2) \
    * (var[d] + eps) ** sp.Rational(-3, 2)
_dmu = -colsum(Gi[k, d] * gamma[d]) / sigma[d] \
    + _dvar * colsum(-2 * (Xi[k, d] - mu[d])) / Nb
_staged_dX = _dxhat / sigma[d] + _dvar * 2 * (Xi[n, d] - mu[d]) / Nb + _dmu / Nb
_compact_dX = gamma[d] / (Nb * sigma[d]) * (
    Nb * Gi[n, d] - colsum(Gi[k, d]) - x_hat[n, d] * colsum(Gi[k, d] * x_hat[k, d]))

batchnorm = IndexLayer(
    "batchnorm", Yi[n, d], gamma[d] * x_hat[n, d] + beta[d],
    inputs=(Xi[n, d], gamma[d], beta[d]), ranges={n: Nb, d: Db},
    statistics={mu[d]: over(Xi[n, d], n, Nb) / Nb,
                var[d]: over((Xi[n, d] - mu[d]) ** 2, n, Nb) / Nb,
                sigma[d]: sp.sqrt(var[d] + eps),
                x_hat[n, d]: (Xi[n, d] - mu[d]) / sigma[d]},
    params={eps: sp.Float("1e-5")},
    hand=[
        Gradient(_staged_dX, wrt=Xi, label="staged: dX through mean, centred, variance, "
                                           "inverse deviation, normalised, scaled"),
        Gradient(_compact_dX, wrt=Xi, label="compact: dX = gamma/(N sigma) (N G - colsum(G) "
                                            "- x_hat colsum(G .* x_hat))"),
        Gradient(colsum(Gi[k, d] * x_hat[k, d]), wrt=gamma,
                 label="dgamma = colsum(G .* x_hat)"),
        Gradient(colsum(Gi[k, d]), wrt=beta, label="dbeta = colsum(G)"),
    ],
    doc="Batch normalisation in training mode: each column of X normalised by its mean and "
        "variance over the batch, then scaled by gamma and shifted by beta.",
)

C, c = index_size("C"), indices("c")[0]
shift, Z = tensors("shift Z")

# the softmax is the same for any shift of a row: the row max bounds exp's argument by 0
# (no overflow, and Z >= 1); symnet proves dY/dshift = 0 and never differentiates the max
softmax_rows = IndexLayer(
    "softmax_rows", Yi[n, c], sp.exp(Xi[n, c] - shift[n]) / Z[n],
    inputs=(Xi[n, c],), ranges={n: Nb, c: C},
    statistics={shift[n]: max_over(Xi[n, k], k, C),
                Z[n]: over(sp.exp(Xi[n, k] - shift[n]), k, C)},
    invariant=(shift,),
    hand=[Gradient(Yi[n, c] * (Gi[n, c] - over(Gi[n, k] * Yi[n, k], k, C)), wrt=Xi,
                   label="dX = Y .* (G - rowsum(G .* Y))")],
    doc="The softmax over each row of X as a layer (the attention-weights pattern).",
)

p_drop = sp.Symbol("p", positive=True)
M_mask = tensors("M")[0]

dropout = IndexLayer(
    "dropout", Yi[n, d], Xi[n, d] * M_mask[n, d] / (1 - p_drop),
    inputs=(Xi[n, d],), constants=(M_mask[n, d],), ranges={n: Nb, d: Db},
    params={p_drop: sp.Rational(1, 2)},
    hand=[Gradient(Gi[n, d] * M_mask[n, d] / (1 - p_drop), wrt=Xi,
                   label="dX = G .* M / (1 - p)")],
    doc="Inverted dropout with the mask M (0 or 1 entries) a constant input, data that is "
        "not differentiated: Y = X .* M / (1 - p).",
)

K, E = index_size("K"), index_size("E")
i, e = indices("i e")
X1, X2, W3, b3 = tensors("X1 X2 W b")

bilinear = IndexLayer(
    "bilinear", Yi[n, i], over(over(X1[n, d] * W3[i, d, e] * X2[n, e], d, Db), e, E) + b3[i],
    inputs=(X1[n, d], X2[n, e], W3[i, d, e], b3[i]), ranges={n: Nb, i: K, d: Db, e: E},
    hand=[Gradient(over(X1[k, d] * X2[k, e] * Gi[k, i], k, Nb), wrt=W3,
                   label="dW[i, d, e] = sum_n G[n, i] X1[n, d] X2[n, e]"),
          Gradient(colsum(Gi[k, i]), wrt=b3, label="db = colsum(G)")],
    doc="The bilinear layer Y[n, i] = sum_{d, e} X1[n, d] W[i, d, e] X2[n, e] + b[i], a "
        "weight of rank 3 (torch.nn.Bilinear).",
)

#: the layers declared in index notation, by name
TENSOR_LAYERS = {"batchnorm": batchnorm, "softmax_rows": softmax_rows, "dropout": dropout,
                 "bilinear": bilinear}


def _activation_layers() -> dict:
    found = [v for v in vars(activations).values() if isinstance(v, Activation)]
    return {decl.name: activation_layer(decl) for decl in found}


#: the layer registry: affine, maxout_layer and every activation as a layer, by name
LAYERS = {"affine": affine, "maxout_layer": maxout_layer, **_activation_layers()}


# --- networks ----------------------------------------------------------------------------------

X, S = Matrix("X", N, D), Matrix("S", N, C)
W1, W2, G = Matrix("W1", D, H), Matrix("W2", H, C), Matrix("G", N, C)
_hidden = X * W1

two_layer_relu = Network(
    "two_layer_relu", input=X, upstream=G,
    stages=[use(affine, W=W1, b=0), use(relu), use(affine, W=W2, b=0, out=S)],
    hand=[
        Identity(S.T, W2.T * elementwise(relu, W1.T * X.T),
                 label="L07 f = W2 max(0, W1 x) in the lecture's orientation (its W1 is W1.T)"),
        Gradient(X.T * hadamard(G * W2.T, step(_hidden)), wrt=W1,
                 label="L07 dL/dW1 = X^T ((G W2^T) .* [X W1 > 0])"),
        Gradient(elementwise(relu, _hidden).T * G, wrt=W2,
                 label="L07 dL/dW2 = max(0, X W1)^T G"),
    ],
    doc="The 2-layer network f = W2 max(0, W1 x) (L07), batch first: S = relu(X W1) W2.",
)

two_layer_linear = Network(
    "two_layer_linear", input=X, upstream=G,
    stages=[use(affine, W=W1, b=0), use(affine, W=W2, b=0, out=S)],
    hand=[
        Identity(S, X * (W1 * W2), label="L09 without an activation f = X (W1 W2) = X W3"),
        Identity(S.T, (W2.T * W1.T) * X.T,
                 label="L09 in the lecture's orientation W3 = W2 W1: a linear classifier"),
    ],
    doc="The 2-layer network without its activation (L09): a linear map again.",
)

W2, W3 = Matrix("W2", H1, H2), Matrix("W3", H2, C)
W1 = Matrix("W1", D, H1)

three_layer_relu = Network(
    "three_layer_relu", input=X, upstream=G,
    stages=[use(affine, W=W1, b=0), use(relu), use(affine, W=W2, b=0), use(relu),
            use(affine, W=W3, b=0, out=S)],
    hand=[Identity(S.T, W3.T * elementwise(relu, W2.T * elementwise(relu, W1.T * X.T)),
                   label="L08 f = W3 max(0, W2 max(0, W1 x)) in the lecture's orientation")],
    doc="The 3-layer network f = W3 max(0, W2 max(0, W1 x)) (L08), batch first.",
)

# L11: x in R^3, two hidden layers of 4 sigmoid units, one output; biases everywhere
X3 = Matrix("X", N, 3)
V1, c1, V2, c2, V3, c3 = (Matrix("W1", 3, 4), Matrix("b1", 1, 4), Matrix("W2", 4, 4),
                          Matrix("b2", 1, 4), Matrix("W3", 4, 1), Matrix("b3", 1, 1))
h1, h2, out = Matrix("h1", N, 4), Matrix("h2", N, 4), Matrix("out", N, 1)

three_layer_sigmoid = Network(
    "three_layer_sigmoid", input=X3, upstream=Matrix("G", N, 1),
    stages=[use(affine, W=V1, b=c1), use(sigmoid, out=h1), use(affine, W=V2, b=c2),
            use(sigmoid, out=h2), use(affine, W=V3, b=c3, out=out)],
    hand=[Identity(out.T, V3.T * elementwise(sigmoid, V2.T * elementwise(
                       sigmoid, V1.T * X3.T + c1.T * ones(1, N)) + c2.T * ones(1, N))
                   + c3.T * ones(1, N),
                   label="L11 out = W3 f(W2 f(W1 x + b1) + b2) + b3 in the lecture's "
                         "orientation (h1, h2 4x1, out 1x1 per sample)")],
    doc="The 3-layer sigmoid network with biases of the lecture's forward pass (L11).",
)

# L12: the 20-line network; the lecture's sizes are N, D_in, H, D_out = 64, 1000, 100, 10
D_in, D_out = size("D_in"), size("D_out")
x_, y_ = Matrix("x", N, D_in), Matrix("y", N, D_out)
w1, w2 = Matrix("w1", D_in, H), Matrix("w2", H, D_out)
h, y_pred, grad_y_pred = Matrix("h", N, H), Matrix("y_pred", N, D_out), Matrix("grad_y_pred",
                                                                              N, D_out)
grad_h = grad_y_pred * w2.T

twenty_line_net = Network(
    "twenty_line_net", input=x_, upstream=grad_y_pred,
    stages=[use(affine, W=w1, b=0), use(sigmoid, out=h), use(affine, W=w2, b=0, out=y_pred)],
    loss=squared_error, target=y_, reduction="sum",
    hand=[
        Gradient(h.T * grad_y_pred, wrt=w2, label="L12 grad_w2 = h^T grad_y_pred"),
        Gradient(grad_h, wrt=h, label="L12 grad_h = grad_y_pred w2^T"),
        Gradient(x_.T * hadamard(grad_h, h, ones(N, H) - h), wrt=w1,
                 label="L12 grad_w1 = x^T (grad_h * h * (1 - h))"),
    ],
    doc="The lecture's network in 20 lines (L12): sigmoid hidden layer, squared error.",
)

# L15: s = W2 max(0, W1 x), L = (1/N) sum_i L_i + lambda R(W1) + lambda R(W2)
W1, W2 = Matrix("W1", D, H), Matrix("W2", H, C)
_l15_dW1 = X.T * hadamard(G * W2.T, step(X * W1)) + 2 * lam * W1
_l15_dW2 = elementwise(relu, X * W1).T * G + 2 * lam * W2


def _l15(loss, target=None) -> Network:
    return Network(
        f"two_layer_{loss.name}", input=X, upstream=G,
        stages=[use(affine, W=W1, b=0), use(relu), use(affine, W=W2, b=0, out=S)],
        loss=loss, target=target, regularizer=l2, regularized=(W1, W2),
        hand=[
            Gradient(_l15_dW1, wrt=W1, label="L15 dL/dW1 = X^T ((G W2^T) .* [X W1 > 0]) "
                                             "+ 2 lambda W1, G = dL/dS"),
            Gradient(_l15_dW2, wrt=W2, label="L15 dL/dW2 = max(0, X W1)^T G + 2 lambda W2"),
        ],
        doc=f"L15: the 2-layer network with the {loss.name} loss averaged over the batch "
            f"plus lambda R(W1) + lambda R(W2).",
    )


two_layer_svm = _l15(svm)
two_layer_softmax_ce = _l15(softmax_ce, target=Matrix("Y", N, C))

#: the network registry, by name
NETWORKS = {n.name: n for n in (two_layer_relu, two_layer_linear, three_layer_relu,
                                three_layer_sigmoid, twenty_line_net, two_layer_svm,
                                two_layer_softmax_ce)}

#: what this module adds to the registry (symnet.catalog), in order
DECLARATIONS = (*LAYERS.values(), *NETWORKS.values(), *TENSOR_LAYERS.values())
