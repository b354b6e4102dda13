"""Digits in JAX with your own Mish and label-smoothed cross-entropy, derived by symnet.

    symnet generate examples/my_declarations.py --target jax -o out
    python examples/training/jax_digits.py out [EPOCHS]
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "out")  # the folder generate wrote
from jax_modules.activations.mish import mish  # noqa: E402  (symnet's derived backward)
from jax_modules.losses.smoothed_ce import smoothed_ce  # noqa: E402

epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
digits = load_digits()  # symnet's split (symnet.runtime.data.digits): pixels / 16, 1348 train
x, y = jnp.asarray(digits.data / 16, dtype=jnp.float32), jnp.asarray(digits.target)
order = np.random.default_rng(0).permutation(len(y))
train, test = order[:1348], order[1348:]

k1, k2 = jax.random.split(jax.random.key(0))
params = {"W1": jax.random.normal(k1, (64, 100)) * 0.1, "b1": jnp.zeros(100),
          "W2": jax.random.normal(k2, (100, 10)) * 0.1, "b2": jnp.zeros(10)}


def scores(p, x):
    return mish(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


@jax.jit
def step(p, x, y):  # one SGD step; the gradients pass through symnet's custom_vjp backwards
    loss, grads = jax.value_and_grad(lambda p: smoothed_ce(scores(p, x), jax.nn.one_hot(y, 10)))(p)
    return jax.tree.map(lambda w, g: w - 0.5 * g, p, grads), loss


for epoch in range(epochs):
    losses = []
    for batch in np.array_split(np.random.default_rng(epoch).permutation(train), 1348 // 32):
        params, loss = step(params, x[batch], y[batch])
        losses.append(loss)
    accuracy = (scores(params, x[test]).argmax(1) == y[test]).mean()
    print(f"epoch {epoch + 1}  loss {np.mean(losses):.4f}  test accuracy {accuracy:.4f}")
