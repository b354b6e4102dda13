"""The contenders of benchmarks/train_step.py: one SGD step of the runtime's default network
(affine -> relu -> affine -> softmax cross-entropy, mean over the batch, + lam*(|W1|^2 +
|W2|^2)), each made by a function of the problem that returns a callable doing one step
on its own copy of the parameters (or None where the library is not installed).

Hand-written numpy lives here as the baseline contender; nothing here is symnet's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STEP_MODULE = ROOT / "generated" / "networks" / "two_layer_relu_softmax_ce_l2_sgd.py"
LR, LAM = 1e-3, 1e-3


@dataclass(frozen=True)
class Problem:
    X: np.ndarray
    labels: np.ndarray          # (N,) class indices
    Y: np.ndarray               # (N, C) one-hot, X's dtype
    params: dict                # W1, b1, W2, b2 (He initialisation, zero biases)

    def copy_params(self) -> dict:
        return {name: value.copy() for name, value in self.params.items()}


def problem(N: int, D: int, H: int, C: int, dtype, seed: int = 0) -> Problem:
    from symnet.runtime.network import initial_parameters

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)).astype(dtype)
    labels = rng.integers(0, C, N)
    Y = np.eye(C, dtype=dtype)[labels]
    return Problem(X, labels, Y, initial_parameters((D, H, C), "relu", seed, dtype))


# --- symnet ------------------------------------------------------------------------------------


def symnet_fused(p: Problem):
    from symnet.runtime.modules import load_path

    module = load_path(STEP_MODULE)
    params = [p.copy_params()[name] for name in module.PARAMETERS]
    work = module.workspace(p.X, *params)
    return lambda: module.step(p.X, p.Y, *params, LR, LAM, work)


def symnet_layers(p: Problem):
    from symnet.runtime import modules
    from symnet.runtime.network import Network
    from symnet.runtime.optim import SGD

    sizes = (p.X.shape[1], p.params["W1"].shape[1], p.Y.shape[1])
    net = Network(sizes, modules.load("layers", "affine"), modules.load("activations", "relu"),
                  modules.load("losses", "softmax_ce"), "one_hot",
                  modules.load("regularizers", "l2"), LAM, p.copy_params())
    optimizer = SGD(lr=LR)

    def step():
        data_loss, penalty, grads = net.loss_and_gradients(p.X, p.Y)
        optimizer.step(net.params, grads)
        return data_loss + penalty

    return step


# --- numpy by hand ---------------------------------------------------------------------------


def numpy_handwritten(p: Problem):
    """cs231n's two-layer net, written with care: no gradient for X, in-place ReLU and
    masks, the L2 gradient added in place, integer labels indexed, not one-hot."""
    W1, b1, W2, b2 = (p.copy_params()[k] for k in ("W1", "b1", "W2", "b2"))
    X, y = p.X, p.labels
    rows = np.arange(X.shape[0])

    def step():
        N = X.shape[0]
        hidden = X @ W1
        hidden += b1
        np.maximum(hidden, 0, out=hidden)
        scores = hidden @ W2
        scores += b2
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        loss = -np.log(probs[rows, y]).mean() + LAM * (np.sum(W1 * W1) + np.sum(W2 * W2))
        dscores = probs
        dscores[rows, y] -= 1
        dscores /= N
        dW2 = hidden.T @ dscores
        dW2 += 2 * LAM * W2
        db2 = dscores.sum(axis=0, keepdims=True)
        dhidden = dscores @ W2.T
        dhidden *= hidden > 0
        dW1 = X.T @ dhidden
        dW1 += 2 * LAM * W1
        db1 = dhidden.sum(axis=0, keepdims=True)
        for param, grad in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
            param -= LR * grad
        return loss

    return step


def gemm_limit(p: Problem):
    """Only the five matrix products a step needs, into preallocated outputs."""
    W1, W2, X = p.params["W1"], p.params["W2"], p.X
    N, H, C = X.shape[0], W1.shape[1], W2.shape[1]
    hidden, scores = np.empty((N, H), X.dtype), np.empty((N, C), X.dtype)
    dW1, dW2, dhidden = np.empty_like(W1), np.empty_like(W2), np.empty((N, H), X.dtype)

    def step():
        np.matmul(X, W1, out=hidden)
        np.matmul(hidden, W2, out=scores)
        np.matmul(hidden.T, scores, out=dW2)
        np.matmul(scores, W2.T, out=dhidden)
        np.matmul(X.T, dhidden, out=dW1)

    return step


def gemm_limit_scipy(p: Problem):
    """The same five products through scipy's BLAS, which the fused step uses (None
    without scipy): a separate OpenBLAS build from numpy's, so this row shows how much of
    fused / gemm_limit is the library rather than the step."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
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


def torch_eager(p: Problem):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    X, y = torch.from_numpy(p.X), torch.from_numpy(p.labels)
    params = [torch.from_numpy(p.copy_params()[k]).requires_grad_()
              for k in ("W1", "b1", "W2", "b2")]
    W1, b1, W2, b2 = params
    optimizer = torch.optim.SGD(params, lr=LR)

    def step():
        optimizer.zero_grad(set_to_none=True)
        scores = torch.addmm(b2, torch.relu(torch.addmm(b1, X, W1)), W2)
        loss = torch.nn.functional.cross_entropy(scores, y) + LAM * (
            W1.square().sum() + W2.square().sum())
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def jax_jit(p: Problem):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def loss_fn(params, X, y):
        W1, b1, W2, b2 = params
        scores = jax.nn.relu(X @ W1 + b1) @ W2 + b2
        picked = jnp.take_along_axis(jax.nn.log_softmax(scores), y[:, None], axis=1)
        return -jnp.mean(picked) + LAM * (jnp.sum(W1 * W1) + jnp.sum(W2 * W2))

    @jax.jit
    def update(params, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        return [w - LR * g for w, g in zip(params, grads, strict=True)], loss

    state = [[jnp.asarray(p.params[k]) for k in ("W1", "b1", "W2", "b2")]]
    X, y = jnp.asarray(p.X), jnp.asarray(p.labels)

    def step():
        state[0], loss = update(state[0], X, y)
        return loss.block_until_ready()

    return step


def autograd_step(p: Problem):
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
    "jax_jit": jax_jit,
    "autograd": autograd_step,
}
