"""The README's training loops on the PyTorch and JAX modules of the user's own declarations
(examples/training/torch_digits.py, examples/training/jax_digits.py; issue 16, section 3),
and a smoke run of benchmarks/bridges.py (section 4) at tiny sizes so that it cannot rot."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EPOCH_LINE = re.compile(r"epoch (\d+)  loss ([\d.]+)  test accuracy ([\d.]+)")


def environment(cache: Path | None = None) -> dict:
    """symnet's cache off, or on in the folder `cache`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYMNET_")}
    env["PYTHONPATH"] = str(ROOT)
    if cache is None:
        env["SYMNET_NO_CACHE"] = "1"
    else:
        env["SYMNET_CACHE"] = str(cache)
    return env


def run(args: list[str], timeout: int = 600, cache: Path | None = None) -> str:
    done = subprocess.run(args, cwd=ROOT, env=environment(cache), capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def out(tmp_path_factory, session_cache_home) -> Path:
    """examples/my_declarations.py generated for torch and jax, as the README's first command
    does: with the run's symnet cache (conftest's session_cache_home), which the README's
    block of the same command (tests/test_readme.py) uses too, so the modules are derived
    once per run; these tests are about the loops, not about generating."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    folder = tmp_path_factory.mktemp("bridges") / "out"
    run([sys.executable, "-m", "symnet", "generate", "examples/my_declarations.py",
         "--target", "torch", "--target", "jax", "-o", str(folder)], cache=session_cache_home)
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
    assert_it_learned(run([sys.executable, f"examples/training/{loop}", str(out), "3"]))


@pytest.mark.slow
def test_the_torch_loop_runs_under_torchrun_on_two_processes(out):
    """The README's DDP command: 2 CPU processes (gloo), rank 0 prints, the model learns."""
    stdout = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                  "--nproc_per_node=2", "examples/training/torch_digits.py", str(out), "3"])
    assert_it_learned(stdout)


@pytest.mark.parametrize("loop", ["torch_digits.py", "jax_digits.py"])
def test_the_readme_shows_the_loop_as_it_is(loop):
    """The README shows each loop file whole (from its imports on): the code it shows runs."""
    code = (ROOT / "examples" / "training" / loop).read_text()
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


# --- benchmarks/bridges.py ---------------------------------------------------------------

#: entries the quick smoke run takes: one of each shape of input (two inputs, class indices,
#: (N,) scores, a native fused function)
SMOKE_ENTRIES = "relu,maxout,softmax_ce,svm,hinge"
TINY = ["--rows", "6", "--losses-cols", "5", "--activation-cols", "4", "--repeats", "1",
        "--number", "1"]


def benchmark():
    """benchmarks/bridges.py as a module (benchmarks/ is no package)."""
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bridges
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return bridges


def assert_a_well_formed_run(stdout: str, names: set[str]) -> None:
    report = json.loads(stdout)
    results = report["results"]
    assert {tuple(sorted(row)) for row in results} == {
        ("entry", "framework", "impl", "median_us", "saved_bytes")}
    assert {row["entry"] for row in results} == names
    for name in names:
        for framework in ("torch", "jax"):
            impls = {row["impl"] for row in results
                     if (row["entry"], row["framework"]) == (name, framework)}
            assert {"symnet", "direct"} <= impls <= {"symnet", "direct", "native"}, (name, impls)
    assert all(row["median_us"] > 0 and row["saved_bytes"] > 0 for row in results)
    assert report["targets"] and all(isinstance(t["met"], bool) for t in report["targets"])


def test_the_benchmark_runs_at_tiny_sizes(capsys):
    bridges = benchmark()
    assert bridges.main(["--json", "--entries", SMOKE_ENTRIES, *TINY]) == 0
    assert_a_well_formed_run(capsys.readouterr().out, set(SMOKE_ENTRIES.split(",")))


@pytest.mark.slow
def test_the_benchmark_runs_every_entry_with_the_users_modules(out, capsys):
    bridges = benchmark()
    assert bridges.main(["--json", "--modules", str(out), *TINY]) == 0
    names = {entry.name for entry in bridges.entries()}
    assert {"mish", "smoothed_ce", "softmax_ce", "relu"} <= names
    assert_a_well_formed_run(capsys.readouterr().out, names)


@pytest.mark.slow
def test_the_benchmark_compares_the_same_formulas(out):
    """symnet's module, the direct formula and the native function of each entry give the
    same value and gradients (float32), in torch and in jax: the benchmark times like with
    like."""
    import numpy as np

    bridges = benchmark()
    for entry in bridges.entries():
        for framework in ("torch", "jax"):
            impls = [bridges.symnet_callable(entry, framework, out), entry.direct[framework]]
            impls += [entry.native[framework]] if entry.native.get(framework) else []
            (value, grads), *others = [
                bridges.value_and_gradients(framework, f, entry, 6, 5) for f in impls]
            for other_value, other_grads in others:
                np.testing.assert_allclose(other_value, value, rtol=1e-5, atol=1e-6,
                                           err_msg=f"{entry.name} {framework}")
                for got, want in zip(other_grads, grads, strict=True):
                    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6,
                                               err_msg=f"{entry.name} {framework}")
