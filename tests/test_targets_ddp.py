"""Networks of generated torch and jax modules, trained by the frameworks' own engines:
a 2-layer ReLU network of the committed torch Functions (affine, relu, softmax_ce) under
torch.nn.parallel.DistributedDataParallel on 2 CPU processes (gloo on 127.0.0.1), 20 SGD
steps: the parameters are the same on both ranks and, to rtol 1e-10 in float64, those of
one process trained on the concatenated batch. On GPUs the worker is the same, its tensors
and model on `cuda:RANK` and the backend nccl. And the same network of the jax modules
under jax.jit(jax.value_and_grad(...)) follows the numpy runtime (symnet.runtime.network)
step by step for 20 steps, to 1e-10."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from tests.helpers import GENERATED, load

SIZES = (8, 16, 4)     # features, hidden, classes
ROWS = 32              # per process
STEPS, LR, LAM = 20, 0.5, 1e-3
TORCH = GENERATED / "torch_modules"
JAX = GENERATED / "jax_modules"


def initial(seed=0) -> dict:
    """He-initialised weights, biases away from zero (a lost bias update would show)."""
    from symnet.runtime.network import initial_parameters

    params = initial_parameters(SIZES, "relu", seed)
    rng = np.random.default_rng(seed + 1)
    for name in ("b1", "b2"):
        params[name] = 0.1 * rng.standard_normal(params[name].shape)
    return params


def batch(rank: int, rows=ROWS):
    """The rank's share of the data: inputs and one-hot targets."""
    rng = np.random.default_rng(100 + rank)
    labels = rng.integers(0, SIZES[-1], rows)
    return rng.standard_normal((rows, SIZES[0])), np.eye(SIZES[-1])[labels]


# --- PyTorch, DistributedDataParallel ------------------------------------------------------


def torch_network(params: dict):
    """A torch.nn.Module of the generated Functions: softmax_ce(affine(relu(affine(X))))."""
    import torch

    affine = load(TORCH / "layers" / "affine.py").affine
    relu = load(TORCH / "activations" / "relu.py").relu

    class TwoLayer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, value in params.items():
                setattr(self, name, torch.nn.Parameter(torch.tensor(value)))

        def forward(self, x):
            return affine(relu(affine(x, self.W1, self.b1)), self.W2, self.b2)

    return TwoLayer()


def train_torch(model, x, y, steps=STEPS):
    import torch

    softmax_ce = load(TORCH / "losses" / "softmax_ce.py").softmax_ce
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(steps):
        optimizer.zero_grad()
        softmax_ce(model(x), y).backward()
        optimizer.step()


def ddp_worker(rank: int, world: int, port: int, folder: str) -> None:
    """One process of the DDP run (torch.multiprocessing.spawn): its share of the batch,
    gradients averaged over the processes by DDP, its parameters saved for the test."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        model = DistributedDataParallel(torch_network(initial()))
        x, y = (torch.tensor(a) for a in batch(rank))
        train_torch(model, x, y)
        torch.save({n: p.detach() for n, p in model.module.named_parameters()},
                   f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process_on_the_whole_batch(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is the [torch] extra")
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("this torch build has no torch.distributed")
    mp.spawn(ddp_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    shares = [batch(rank) for rank in range(2)]
    x, y = (torch.tensor(np.concatenate(parts)) for parts in zip(*shares, strict=True))
    alone = torch_network(initial())
    train_torch(alone, x, y)
    start = initial()
    for name, value in alone.named_parameters():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert not np.allclose(value.detach().numpy(), start[name])   # it trained
        np.testing.assert_allclose(ranks[0][name].numpy(), value.detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


# --- JAX, against the numpy runtime -------------------------------------------------------


@pytest.mark.slow
def test_jax_network_under_jit_follows_the_numpy_runtime_for_20_steps():
    jax = pytest.importorskip("jax", reason="JAX is the [jax] extra")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    from symnet.runtime import modules
    from symnet.runtime.network import Network
    from symnet.runtime.optim import SGD

    affine = load(JAX / "layers" / "affine.py").affine
    relu = load(JAX / "activations" / "relu.py").relu
    softmax_ce = load(JAX / "losses" / "softmax_ce.py").softmax_ce
    l2 = load(JAX / "regularizers" / "l2.py").l2

    def loss(params, x, y):
        scores = affine(relu(affine(x, params["W1"], params["b1"])), params["W2"], params["b2"])
        return softmax_ce(scores, y) + l2(params["W1"], LAM) + l2(params["W2"], LAM)

    step = jax.jit(jax.value_and_grad(loss))
    net = Network(SIZES, modules.load("layers", "affine"), modules.load("activations", "relu"),
                  modules.load("losses", "softmax_ce"), "one_hot",
                  modules.load("regularizers", "l2"), LAM, params=initial())
    sgd = SGD(LR)
    x, y = batch(0, rows=2 * ROWS)
    params = {n: jnp.asarray(v) for n, v in initial().items()}
    for _ in range(STEPS):
        value, grads = step(params, jnp.asarray(x), jnp.asarray(y))
        data_loss, penalty, expected = net.loss_and_gradients(x, y)
        np.testing.assert_allclose(float(value), data_loss + penalty, rtol=1e-10)
        sgd.step(net.params, expected)
        params = {n: p - LR * grads[n] for n, p in params.items()}
        for name, value in params.items():
            assert value.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(value), net.params[name], rtol=1e-10,
                                       atol=1e-12)
