"""L12: the lecture's neural network in 20 lines, run from generated code."""

import numpy as np
import pytest

from symnet.catalog import REGISTRY
from symnet.codegen.emit import Source, module_file
from symnet.files import write_atomically
from symnet.runtime import modules
from symnet.runtime.network import Network
from symnet.runtime.optim import SGD

STEPS = 2000


@pytest.fixture(scope="module")
def squared_error_sum(tmp_path_factory):
    """The slide sums the loss over the batch: the squared error generated with sum."""
    rel, text = module_file(Source("squared_error", REGISTRY["squared_error"]), "sum")
    path = tmp_path_factory.mktemp("generated") / rel
    write_atomically(path, text)
    return modules.load_path(path)


def slide_losses(x, y, w1, w2):
    """The slide's code, transcribed line by line."""
    losses = []
    for _ in range(STEPS):
        h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        loss = np.square(y_pred - y).sum()
        losses.append(loss)
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))
        w1 -= 1e-4 * grad_w1
        w2 -= 1e-4 * grad_w2
    return np.array(losses)


def test_L12_twenty_line_network_from_generated_code_matches_the_slide(squared_error_sum):
    N, D_in, H, D_out = 64, 1000, 100, 10
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    w1, w2 = rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out))
    expected = slide_losses(x, y, w1.copy(), w2.copy())

    net = Network((D_in, H, D_out), modules.load("layers", "affine"),
                  modules.load("activations", "sigmoid"), squared_error_sum, "real",
                  biases=False, params={"W1": w1.copy(), "W2": w2.copy()})
    sgd, losses = SGD(lr=1e-4), []
    for _ in range(STEPS):
        loss, _, grads = net.loss_and_gradients(x, y)
        losses.append(loss)
        sgd.step(net.params, grads)
    assert np.allclose(losses, expected, rtol=1e-8, atol=0)
    assert losses[-1] < losses[0] / 10                   # the loss falls, as on the slide


def test_the_tests_run_numpy_on_one_blas_thread():
    """tests/conftest.py sets one BLAS thread before numpy loads (an import of numpy above it
    would leave OpenBLAS's default): the 2000 steps above take 16 s instead of 329 s on a
    loaded 2-core machine."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pools = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert pools and all(pool["num_threads"] == 1 for pool in pools), pools
