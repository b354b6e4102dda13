"""Data sets and optimisers of the runtime, which never imports sympy."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symnet.errors import DataError
from symnet.runtime.data import digits, from_arrays, load_file, spiral
from symnet.runtime.optim import OPTIMIZERS, SGD, Adam, Momentum

ROOT = Path(__file__).resolve().parent.parent
NUMPY_ONLY = """
import importlib, importlib.util, pathlib, sys
root = pathlib.Path(sys.argv[1])
for path in sorted((root / "symnet" / "runtime").glob("*.py")):
    importlib.import_module("symnet.runtime" + ("" if path.stem == "__init__" else "." + path.stem))
sys.path.insert(0, str(root))
# the torch and jax modules import their framework: imported too where it is installed
frameworks = {"torch_modules": "torch", "jax_modules": "jax"}
for path in sorted((root / "generated").rglob("*.py")):
    parts = path.relative_to(root).with_suffix("").parts
    framework = frameworks.get(parts[1]) if len(parts) > 2 else None
    if framework and importlib.util.find_spec(framework) is None:
        print("skipped", path.relative_to(root))
        continue
    # as the package generated.<kind>.<name>: a training step imports its networks/blas.py
    importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    print(path.relative_to(root))
bad = {"sympy", "jinja2"} & set(sys.modules)
assert not bad, bad
"""


def test_every_runtime_and_generated_module_imports_no_sympy_and_no_jinja2():
    """In a fresh interpreter: every module of symnet/runtime/ and of generated/ is imported
    (the torch and jax modules where their framework is installed), and neither sympy nor
    jinja2 comes with them (training never pays for the algebra)."""
    done = subprocess.run([sys.executable, "-c", NUMPY_ONLY, str(ROOT)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    imported = [line for line in done.stdout.splitlines() if not line.startswith("skipped")]
    assert len(done.stdout.splitlines()) == len(list((ROOT / "generated").rglob("*.py")))
    assert len(imported) >= 29


def test_spiral_is_seeded_and_shaped():
    a, b = spiral(seed=3), spiral(seed=3)
    assert a.x_train.shape == (300, 2) and a.classes == 3
    assert np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, spiral(seed=4).x_train)
    assert np.bincount(a.y_train).tolist() == [100, 100, 100]


def test_digits_split_is_fixed_by_the_seed():
    data = digits(seed=0)
    assert data.x_train.shape[0] + data.x_test.shape[0] == 1797
    assert data.features == 64 and data.classes == 10
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert np.array_equal(data.y_test, digits(seed=0).y_test)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_rejected_naming_the_row(bad):
    x = np.ones((5, 2))
    x[3, 1] = bad
    with pytest.raises(DataError, match="row 3"):
        from_arrays(x, np.zeros(5, dtype=int))


def test_labels_that_do_not_fit_the_rows_are_reported_with_both_shapes():
    with pytest.raises(DataError, match=r"\(5, 2\).*\(4,\)"):
        from_arrays(np.ones((5, 2)), np.zeros(4, dtype=int))
    with pytest.raises(DataError, match="row 1"):
        from_arrays(np.ones((3, 2)), np.array([0.0, 1.5, 2.0]))


def test_npz_and_csv_files(tmp_path):
    x, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    loaded = load_file(str(tmp_path / "d.npz"))
    assert np.array_equal(loaded.x_train, x) and np.array_equal(loaded.y_train, y)
    (tmp_path / "d.csv").write_text("a,b,label\n" + "\n".join(
        f"{r[0]},{r[1]},{c}" for r, c in zip(x, y, strict=True)) + "\n")
    assert np.array_equal(load_file(str(tmp_path / "d.csv")).x_train, x)
    (tmp_path / "nan.csv").write_text("1,2,0\n3,nan,1\n")
    with pytest.raises(DataError, match="row 1"):
        load_file(str(tmp_path / "nan.csv"))
    with pytest.raises(DataError, match="needs arrays named x and y"):
        np.savez(tmp_path / "e.npz", features=x)
        load_file(str(tmp_path / "e.npz"))


def _quadratic_descent(optimizer, steps=300):
    """Minimise 0.5 |w - target|^2, whose gradient w - target is the test's own."""
    target = np.array([1.0, -2.0, 3.0])
    params = {"w": np.zeros(3)}
    for _ in range(steps):
        optimizer.step(params, {"w": params["w"] - target})
    return np.abs(params["w"] - target).max()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_descends(name):
    lr = {"sgd": 0.1, "momentum": 0.05, "adam": 0.05}[name]
    assert _quadratic_descent(OPTIMIZERS[name](lr=lr)) < 1e-3


def test_vanilla_gradient_descent_is_the_slide_update():
    params, grad = {"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, -1.0])}
    SGD(lr=0.1).step(params, grad)
    assert np.array_equal(params["w"], np.array([1.0, 2.0]) - 0.1 * np.array([0.5, -1.0]))


@pytest.mark.parametrize("kind", [Momentum, Adam])
def test_optimizer_state_round_trips_for_resuming(kind):
    a, b = kind(lr=0.01), kind(lr=0.01)
    params_a, params_b = {"w": np.ones(2)}, {"w": np.ones(2)}
    for _ in range(3):
        a.step(params_a, {"w": params_a["w"] * 2})
    params_b["w"] = params_a["w"].copy()
    b.load_state(a.state())
    a.step(params_a, {"w": params_a["w"] * 2})
    b.step(params_b, {"w": params_b["w"] * 2})
    assert np.array_equal(params_a["w"], params_b["w"])
