"""Data sets for training: the spiral, scikit-learn's digits, a user's arrays or files.

Every data set is validated before training: features a finite 2-D float array, labels
integers in 0..C-1, one per row. A bad value is reported with its row.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symnet.errors import DataError, install_hint

#: the most classes a data set may have: a label is a class number, and a stray large one
#: (a row id, a price) would otherwise size the output layer and its one-hot targets
MAX_CLASSES = 10_000


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None

    @property
    def classes(self) -> int:
        labels = [self.y_train] + ([self.y_test] if self.y_test is not None else [])
        return int(max(int(y.max()) for y in labels)) + 1

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])


def validate(name: str, x, y, part: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as float64 features and int64 labels, or a DataError naming the row."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2:
        raise DataError(f"{name} {part}: features must be a 2-D array (samples, features), "
                        f"got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{name} {part}: labels must be a 1-D array with one label per row: "
                        f"features have shape {x.shape}, labels {y.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        kind = "complex numbers" if np.issubdtype(x.dtype, np.complexfloating) else "numbers"
        raise DataError(f"{name} {part}: features must be real numbers, got {kind} "
                        f"(dtype {x.dtype})")
    bad_rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad_rows.size:
        row = int(bad_rows[0])
        raise DataError(f"{name} {part}: row {row} holds a non-finite value "
                        f"({x[row][~np.isfinite(x[row])][0]}); {bad_rows.size} such row(s)")
    labels = _integer_labels(name, part, y)
    return x.astype(np.float64, copy=False), labels


def _integer_labels(name: str, part: str, y: np.ndarray) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise DataError(f"{name} {part}: label in row {int(bad[0])} is {y[bad[0]]}, "
                            f"not a class number")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name} {part}: labels must be class numbers, got dtype {y.dtype}")
    labels = y.astype(np.int64)
    negative = np.flatnonzero(labels < 0)
    if negative.size:
        raise DataError(f"{name} {part}: label in row {int(negative[0])} is negative")
    too_large = np.flatnonzero(labels >= MAX_CLASSES)
    if too_large.size:
        row = int(too_large[0])
        raise DataError(f"{name} {part}: label in row {row} is {labels[row]}; labels are "
                        f"class numbers 0..C-1 with C at most {MAX_CLASSES}")
    return labels


def from_arrays(x, y, x_test=None, y_test=None, name: str = "arrays") -> Dataset:
    x, y = validate(name, x, y, "training data")
    if (x_test is None) != (y_test is None):
        raise DataError(f"{name}: give both x_test and y_test, or neither")
    if x_test is not None:
        x_test, y_test = validate(name, x_test, y_test, "test data")
        if x_test.shape[1] != x.shape[1]:
            raise DataError(f"{name}: training features have shape {x.shape} but test "
                            f"features {x_test.shape}")
    return Dataset(name, x, y, x_test, y_test)


def spiral(points_per_class: int = 100, classes: int = 3, seed: int = 0) -> Dataset:
    """The classic 2-D spiral: `classes` arms that no straight line separates."""
    rng = np.random.default_rng(seed)
    x = np.zeros((points_per_class * classes, 2))
    y = np.zeros(points_per_class * classes, dtype=np.int64)
    for arm in range(classes):
        rows = slice(points_per_class * arm, points_per_class * (arm + 1))
        radius = np.linspace(0.0, 1, points_per_class)
        angle = np.linspace(arm * 4, (arm + 1) * 4, points_per_class)
        angle = angle + rng.normal(0, 0.2, points_per_class)
        x[rows] = np.c_[radius * np.sin(angle), radius * np.cos(angle)]
        y[rows] = arm
    return Dataset("spiral", x, y)


def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images), pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DataError(f"the digits data set comes with scikit-learn: "
                        f"{install_hint('data')}") from exc
    bunch = load_digits()
    x, y = bunch.data / 16.0, bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(round(len(y) * (1 - test_fraction)))
    train, test = order[:cut], order[cut:]
    return Dataset("digits", x[train], y[train], x[test], y[test])


def load_file(path: str) -> Dataset:
    """An .npz with arrays x and y (and optionally x_test, y_test), or a .csv whose last
    column is the label (a header line is skipped when it is not numeric)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: no such file")
    if file.suffix == ".npz":
        parts = _npz_arrays(file)
        return from_arrays(parts["x"], parts["y"], parts.get("x_test"), parts.get("y_test"),
                           name=str(path))
    if file.suffix == ".csv":
        return _load_csv(file)
    raise DataError(f"{path}: expected an .npz or .csv file")


def _npz_arrays(file: Path) -> dict:
    """x, y (and x_test, y_test if present) of an .npz; never unpickles (an object array
    would run code on load)."""
    try:
        with np.load(file, allow_pickle=False) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise DataError(f"{file}: needs arrays named x and y; it has "
                                f"{', '.join(arrays.files) or 'none'}")
            return {key: arrays[key] for key in ("x", "y", "x_test", "y_test")
                    if key in arrays.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{file}: holds an array of Python objects (dtype object); "
                            f"save numbers only") from None
        raise DataError(f"{file}: not a readable .npz file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{file}: not a readable .npz file "
                        f"({type(exc).__name__}: {exc or 'empty'})") from None


def _load_csv(file: Path) -> Dataset:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not a readable text file ({exc})") from None
    first = next((line for line in lines if line.strip()), "")
    if ";" in first and "," not in first:
        raise DataError(f"{file}: its values are separated by ';'; symnet reads "
                        f"comma-separated values")
    skip = 1 if lines and not _is_numeric_row(lines[0]) else 0
    try:
        table = np.loadtxt(file, delimiter=",", skiprows=skip, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{file}: {exc}") from None
    if table.shape[1] < 2:
        raise DataError(f"{file}: needs at least one feature column and a label column")
    return from_arrays(table[:, :-1], table[:, -1], name=str(file))


def _is_numeric_row(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True


DATASETS = {"spiral": spiral, "digits": digits}
