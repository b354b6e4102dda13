"""The README's training loops on the PyTorch and JAX modules of the user's own declarations
(examples/torch_digits.py, examples/jax_digits.py; issue 16, section 3), and a smoke run of
benchmarks/bridges.py (section 4) at tiny sizes so that it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EPOCH_LINE = re.compile(r"epoch (\d+)  loss ([\d.]+)  test accuracy ([\d.]+)")


def environment() -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYMNET_")}
    env.update(PYTHONPATH=str(ROOT), SYMNET_NO_CACHE="1")
    return env


def run(args: list[str], timeout: int = 600) -> str:
    done = subprocess.run(args, cwd=ROOT, env=environment(), capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """examples/my_declarations.py generated for torch and jax, as the README's first command
    does."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    folder = tmp_path_factory.mktemp("bridges") / "out"
    run([sys.executable, "-m", "symnet", "generate", "examples/my_declarations.py",
         "--target", "torch", "--target", "jax", "-o", str(folder)])
    return folder


def epochs_of(stdout: str) -> list[tuple[float, float]]:
    """(loss, test accuracy) of each epoch line a loop printed, in order."""
    found = [EPOCH_LINE.fullmatch(line) for line in stdout.splitlines()]
    assert found and all(found), stdout
    assert [int(m.group(1)) for m in found] == list(range(1, len(found) + 1)), stdout
    return [(float(m.group(2)), float(m.group(3))) for m in found]


def assert_it_learned(stdout: str) -> None:
    epochs = epochs_of(stdout)
    assert len(epochs) == 3, stdout
    assert epochs[-1][0] < epochs[0][0], f"the loss did not fall: {epochs}"
    assert epochs[-1][1] > 0.9, f"test accuracy {epochs[-1][1]} <= 0.9"


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["torch_digits.py", "jax_digits.py"])
def test_a_loop_on_symnets_modules_learns_digits(out, loop):
    assert_it_learned(run([sys.executable, f"examples/{loop}", str(out), "3"]))


@pytest.mark.slow
def test_the_torch_loop_runs_under_torchrun_on_two_processes(out):
    """The README's DDP command: 2 CPU processes (gloo), rank 0 prints, the model learns."""
    stdout = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                  "--nproc_per_node=2", "examples/torch_digits.py", str(out), "3"])
    assert_it_learned(stdout)


@pytest.mark.parametrize("loop", ["torch_digits.py", "jax_digits.py"])
def test_the_readme_shows_the_loop_as_it_is(loop):
    """The README shows each loop file whole (from its imports on): the code it shows runs."""
    code = (ROOT / "examples" / loop).read_text()
    body = code[code.index("import "):]
    assert f"```python\n{body}```" in README


def test_the_loops_split_digits_as_symnet_does():
    """The loops' train/test split is symnet.runtime.data.digits' one."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    from symnet.runtime.data import digits

    ours = digits()
    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    train, test = order[:1348], order[1348:]
    np.testing.assert_array_equal(data.data[train] / 16, ours.x_train)
    np.testing.assert_array_equal(data.target[test], ours.y_test)
