"""The contenders of benchmarks/train_step.py: one training step of the runtime's network
(affine -> relu -> ... -> affine -> softmax cross-entropy, mean over the batch, + lam*(|W1|^2
+ |W2|^2 + ...)), of a depth (2: one hidden layer, 3: two of the same width) and by an
optimiser (sgd; momentum, V <- mu V - lr G, P <- P + V; Adam with bias correction), each
made by a function of the problem that returns a callable doing one step on its own copy of
the parameters (or None where the library is not installed or has no such optimiser).

Hand-written numpy lives here as the baseline contender; nothing here is symnet's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LR, LAM = 1e-3, 1e-3
#: momentum's mu and Adam's betas and eps: the runtime optimisers' defaults
MU, BETA1, BETA2, EPS = 0.9, 0.9, 0.999, 1e-8
OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass(frozen=True)
class Problem:
    X: np.ndarray
    labels: np.ndarray          # (N,) class indices
    Y: np.ndarray               # (N, C) one-hot, X's dtype
    params: dict                # W1, b1, W2, b2, ... (He initialisation, zero biases)
    optimizer: str = "sgd"

    @property
    def depth(self) -> int:
        return len(self.params) // 2

    @property
    def names(self) -> list[str]:
        """W1, b1, W2, b2, ...: the parameters in the network's order."""
        return [f"{kind}{layer}" for layer in range(1, self.depth + 1) for kind in "Wb"]

    def copy_params(self) -> dict:
        return {name: value.copy() for name, value in self.params.items()}


def problem(N: int, D: int, H: int, C: int, dtype, seed: int = 0, optimizer: str = "sgd",
            depth: int = 2) -> Problem:
    from symnet.runtime.network import initial_parameters

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)).astype(dtype)
    labels = rng.integers(0, C, N)
    Y = np.eye(C, dtype=dtype)[labels]
    sizes = (D,) + (H,) * (depth - 1) + (C,)
    return Problem(X, labels, Y, initial_parameters(sizes, "relu", seed, dtype), optimizer)


# --- symnet ------------------------------------------------------------------------------------


def _network(p: Problem):
    from symnet.runtime import modules
    from symnet.runtime.network import Network

    sizes = (p.X.shape[1],) + tuple(p.params[f"W{k}"].shape[1] for k in range(1, p.depth + 1))
    return Network(sizes, modules.load("layers", "affine"), modules.load("activations", "relu"),
                   modules.load("losses", "softmax_ce"), "one_hot",
                   modules.load("regularizers", "l2"), LAM, p.copy_params())


def _optimizer(p: Problem):
    from symnet.runtime.optim import OPTIMIZERS as RUNTIME

    return RUNTIME[p.optimizer](lr=LR)


def symnet_fused(p: Problem):
    """The committed generated step, as the runtime calls it (its optimiser owns the
    state arrays)."""
    from symnet.runtime.fused import fused_step

    net = _network(p)
    step = fused_step(net, _optimizer(p))
    return None if step is None else (lambda: step(p.X, p.Y))


def symnet_layers(p: Problem):
    net, optimizer = _network(p), _optimizer(p)

    def step():
        data_loss, penalty, grads = net.loss_and_gradients(p.X, p.Y)
        optimizer.step(net.params, grads)
        return data_loss + penalty

    return step


# --- numpy by hand ---------------------------------------------------------------------------


def numpy_update(optimizer: str, params: list):
    """The optimiser's update by hand, in place, as the runtime's optim.py writes it."""
    state = [[np.zeros_like(w) for w in params] for _ in range(2)]
    count = [0]

    def sgd(grads):
        for param, grad in zip(params, grads, strict=True):
            param -= LR * grad

    def momentum(grads):
        for param, grad, v in zip(params, grads, state[0], strict=True):
            v *= MU
            v -= LR * grad
            param += v

    def adam(grads):
        count[0] += 1
        c1, c2 = 1 - BETA1 ** count[0], 1 - BETA2 ** count[0]
        for param, grad, m, v in zip(params, grads, *state, strict=True):
            m *= BETA1
            m += (1 - BETA1) * grad
            v *= BETA2
            v += (1 - BETA2) * grad * grad
            param -= LR * (m / c1) / (np.sqrt(v / c2) + EPS)

    return {"sgd": sgd, "momentum": momentum, "adam": adam}[optimizer]


def numpy_handwritten(p: Problem):
    """cs231n's fully connected net, written with care: no gradient for X, in-place ReLU
    and masks, the L2 gradient added in place, integer labels indexed, not one-hot."""
    copies = p.copy_params()
    params = [copies[name] for name in p.names]
    weights, biases = params[0::2], params[1::2]
    update = numpy_update(p.optimizer, params)
    X, y = p.X, p.labels
    rows = np.arange(X.shape[0])

    def step():
        N, hidden = X.shape[0], [X]
        for W, b in zip(weights[:-1], biases[:-1], strict=True):
            h = hidden[-1] @ W
            h += b
            np.maximum(h, 0, out=h)
            hidden.append(h)
        scores = hidden[-1] @ weights[-1]
        scores += biases[-1]
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[rows, y]).mean() + LAM * sum(np.sum(W * W) for W in weights)
        upstream = probs
        upstream[rows, y] -= 1
        upstream /= N
        grads = []
        for layer in range(len(weights) - 1, -1, -1):
            dW = hidden[layer].T @ upstream
            dW += 2 * LAM * weights[layer]
            grads[:0] = [dW, upstream.sum(axis=0, keepdims=True)]
            if layer:
                upstream = upstream @ weights[layer].T
                upstream *= hidden[layer] > 0
        update(grads)
        return loss

    return step


def gemm_limit(p: Problem):
    """Only the matrix products a step needs (five at depth 2, eight at depth 3), into
    preallocated outputs."""
    weights, X = [p.params[f"W{k}"] for k in range(1, p.depth + 1)], p.X
    N = X.shape[0]
    outputs = [np.empty((N, W.shape[1]), X.dtype) for W in weights]
    grads = [np.empty_like(W) for W in weights]

    def step():
        inputs = [X, *outputs[:-1]]
        for source, W, out in zip(inputs, weights, outputs, strict=True):
            np.matmul(source, W, out=out)
        upstream = outputs[-1]
        for layer in range(len(weights) - 1, -1, -1):
            np.matmul(inputs[layer].T, upstream, out=grads[layer])
            if layer:      # into the layer's own output buffer: only the time counts here
                np.matmul(upstream, weights[layer].T, out=outputs[layer - 1])
                upstream = outputs[layer - 1]

    return step


def gemm_limit_scipy(p: Problem):
    """The same five products through scipy's BLAS, which the fused step uses (None
    without scipy): a separate OpenBLAS build from numpy's, so this row shows how much of
    fused / gemm_limit is the library rather than the step."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    if p.depth != 2:
        return None        # the five products of depth 2 only
    W1, W2, X = p.params["W1"], p.params["W2"], p.X
    N, H, C = X.shape[0], W1.shape[1], W2.shape[1]
    hidden, scores = np.empty((N, H), X.dtype), np.empty((N, C), X.dtype)
    dW1, dW2, dhidden = np.empty_like(W1), np.empty_like(W2), np.empty((N, H), X.dtype)
    gemm = blas.dgemm if X.dtype == np.float64 else blas.sgemm

    def step():
        # BLAS is column-major: each C-ordered out = A @ B is out.T = B.T @ A.T, and an
        # operand whose transpose is not column-major is passed as is, marked transposed
        gemm(1.0, W1.T, X.T, 0.0, hidden.T, False, False, True)
        gemm(1.0, W2.T, hidden.T, 0.0, scores.T, False, False, True)
        gemm(1.0, scores.T, hidden.T, 0.0, dW2.T, False, True, True)
        gemm(1.0, W2.T, scores.T, 0.0, dhidden.T, True, False, True)
        gemm(1.0, dhidden.T, X.T, 0.0, dW1.T, False, True, True)

    return step


# --- other libraries -------------------------------------------------------------------------


def torch_eager(p: Problem, fused: bool = False):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    X, y = torch.from_numpy(p.X), torch.from_numpy(p.labels)
    params = [torch.from_numpy(p.copy_params()[k]).requires_grad_() for k in p.names]
    weights, biases = params[0::2], params[1::2]
    optimizer = _torch_optimizer(torch, p.optimizer, params, fused)
    if optimizer is None:
        return None

    def step():
        optimizer.zero_grad(set_to_none=True)
        h = X
        for W, b in zip(weights[:-1], biases[:-1], strict=True):
            h = torch.relu(torch.addmm(b, h, W))
        scores = torch.addmm(biases[-1], h, weights[-1])
        loss = torch.nn.functional.cross_entropy(scores, y) + LAM * sum(
            W.square().sum() for W in weights)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def _torch_optimizer(torch, name: str, params, fused: bool):
    """torch.optim's optimiser (the foreach implementation; `fused`: Adam's fused=True,
    None for the others). Its momentum keeps v <- mu v + g, P <- P - lr v: the same work."""
    if fused:
        return torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), eps=EPS,
                                fused=True) if name == "adam" else None
    if name == "adam":
        return torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), eps=EPS, foreach=True)
    return torch.optim.SGD(params, lr=LR, momentum=MU if name == "momentum" else 0,
                           foreach=True)


def torch_fused_adam(p: Problem):
    """PyTorch's Adam with fused=True, beside its foreach Adam (no target)."""
    return torch_eager(p, fused=True)


def jax_jit(p: Problem):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def loss_fn(params, X, y):
        weights, biases = params[0::2], params[1::2]
        h = X
        for W, b in zip(weights[:-1], biases[:-1], strict=True):
            h = jax.nn.relu(h @ W + b)
        scores = h @ weights[-1] + biases[-1]
        picked = jnp.take_along_axis(jax.nn.log_softmax(scores), y[:, None], axis=1)
        return -jnp.mean(picked) + LAM * sum(jnp.sum(W * W) for W in weights)

    rule = _jax_rule(jnp, p.optimizer)

    @jax.jit
    def update(params, state, count, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        params, state = rule(params, grads, state, count + 1)
        return params, state, count + 1, loss

    params = [jnp.asarray(p.params[k]) for k in p.names]
    carried = [params, [[jnp.zeros_like(w) for w in params] for _ in range(2)], 0]
    X, y = jnp.asarray(p.X), jnp.asarray(p.labels)

    def step():
        params, state, count, loss = update(*carried, X, y)
        carried[:] = [params, state, count]
        return loss.block_until_ready()

    return step


def _jax_rule(jnp, name: str):
    """The optimiser's update written in jax.numpy: (params, grads, (m, v), t) -> (params,
    (m, v)); momentum keeps its velocity in m."""
    def sgd(params, grads, state, t):
        return [w - LR * g for w, g in zip(params, grads, strict=True)], state

    def momentum(params, grads, state, t):
        velocity = [MU * v - LR * g for v, g in zip(state[0], grads, strict=True)]
        return [w + v for w, v in zip(params, velocity, strict=True)], [velocity, state[1]]

    def adam(params, grads, state, t):
        m = [BETA1 * a + (1 - BETA1) * g for a, g in zip(state[0], grads, strict=True)]
        v = [BETA2 * a + (1 - BETA2) * g * g for a, g in zip(state[1], grads, strict=True)]
        c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
        new = [w - LR * (a / c1) / (jnp.sqrt(b / c2) + EPS)
               for w, a, b in zip(params, m, v, strict=True)]
        return new, [m, v]

    return {"sgd": sgd, "momentum": momentum, "adam": adam}[name]


def autograd_step(p: Problem):
    if p.optimizer != "sgd" or p.depth != 2:
        return None            # the lecture's network and update only
    try:
        import autograd.numpy as anp
        from autograd import value_and_grad
    except ImportError:
        return None

    def loss_fn(params, X, Y):
        W1, b1, W2, b2 = params
        scores = anp.dot(anp.maximum(anp.dot(X, W1) + b1, 0), W2) + b2
        shifted = scores - anp.max(scores, axis=1, keepdims=True)
        log_probs = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.sum(Y * log_probs) / X.shape[0] + LAM * (anp.sum(W1 * W1)
                                                            + anp.sum(W2 * W2))

    gradient = value_and_grad(loss_fn)
    params = [p.copy_params()[k] for k in ("W1", "b1", "W2", "b2")]

    def step():
        loss, grads = gradient(params, p.X, p.Y)
        for param, grad in zip(params, grads, strict=True):
            param -= LR * grad
        return loss

    return step


CONTENDERS = {
    "gemm_limit": gemm_limit,
    "gemm_limit_scipy": gemm_limit_scipy,
    "symnet_fused": symnet_fused,
    "symnet_layers": symnet_layers,
    "numpy_handwritten": numpy_handwritten,
    "torch": torch_eager,
    "torch_fused_adam": torch_fused_adam,
    "jax_jit": jax_jit,
    "autograd": autograd_step,
}
