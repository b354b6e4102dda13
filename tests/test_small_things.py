"""Issue 18, small things users see: files written with the usual mode, generated modules
that pass the project's own ruff, and every catalog activation as a graph."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from symnet.cli import main
from symnet.files import write_atomically, write_bytes_atomically

ROOT = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process's umask for one test (022 unless the test passes another)."""
    before = os.umask(0o022)

    def set_to(value: int) -> None:
        os.umask(value)
    yield set_to
    os.umask(before)


# --- 1. reports, drawings and graph code: mode 0644 under umask 022, like generate's ------


@pytest.mark.parametrize("write, payload", [(write_atomically, "text\n"),
                                            (write_bytes_atomically, b"bytes")],
                         ids=["text", "bytes"])
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
                         ids=["umask022", "umask077", "umask002"])
def test_atomic_writes_give_0666_minus_the_umask(tmp_path, umask, write, payload, mask,
                                                 expected):
    umask(mask)
    target = tmp_path / "out"
    write(target, payload)
    assert mode(target) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["out"]   # no temporary left beside it


def test_an_existing_files_mode_follows_the_umask_too(tmp_path, umask):
    target = tmp_path / "report.md"
    target.write_text("old\n")
    target.chmod(0o600)
    write_atomically(target, "new\n")
    assert mode(target) == 0o644 and target.read_text() == "new\n"


def test_a_report_is_written_0644(tmp_path, umask, capsys):
    report = tmp_path / "relu.md"
    assert main(["derive", "relu", "--report", str(report)]) == 0
    assert mode(report) == 0o644


def test_graph_code_is_written_0644(tmp_path, umask, capsys):
    code = tmp_path / "neuron.py"
    assert main(["graph", "sigmoid(w*x)", "-o", str(code)]) == 0
    assert mode(code) == 0o644


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_a_drawing_is_written_0644(tmp_path, umask, capsys, suffix):
    pytest.importorskip("matplotlib")
    drawing = tmp_path / f"graph{suffix}"
    assert main(["graph", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "-o", str(drawing)]) == 0
    assert mode(drawing) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == [drawing.name]


def test_generated_modules_are_0644_as_the_others(tmp_path, umask, capsys):
    assert main(["generate", "relu", "-o", str(tmp_path / "out")]) == 0
    assert {mode(p) for p in (tmp_path / "out").rglob("*.py")} == {0o644}


# --- 2. every module generate can write passes the project's own ruff check -------------


def ruff_command() -> list[str]:
    if shutil.which("ruff"):
        return [shutil.which("ruff")]
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    pytest.skip("ruff is not installed (pip install symnet[test])")


def ruff_findings(folder: Path) -> str:
    """ruff check over `folder` with the project's configuration; '' when it passes."""
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), "--output-format", "concise",
                             str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return "" if result.returncode == 0 else result.stdout


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_the_whole_catalog_generated_passes_ruff(tmp_path, capsys, reduction):
    ruff_command()
    out = tmp_path / reduction
    assert main(["generate", "-o", str(out), "--reduction", reduction]) == 0
    kinds = {p.name for p in out.iterdir() if p.is_dir()}
    assert {"activations", "losses", "regularizers", "layers", "networks"} <= kinds
    assert ruff_findings(out) == ""


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_a_users_declarations_generated_pass_ruff(tmp_path, capsys, reduction):
    ruff_command()
    out = tmp_path / "mine"
    mine = ROOT / "examples" / "my_declarations.py"
    assert main(["generate", str(mine), "-o", str(out), "--reduction", reduction]) == 0
    assert list(out.rglob("*.py"))
    assert ruff_findings(out) == ""


def test_a_sum_loss_is_still_n_times_the_mean(tmp_path, capsys):
    """The N the sum no longer assigns was never part of its value."""
    import numpy as np

    losses = {}
    for reduction in ("sum", "mean"):
        out = tmp_path / reduction
        assert main(["generate", "squared_error", "-o", str(out), "--reduction", reduction]) == 0
        namespace: dict = {}
        exec((out / "losses" / "squared_error.py").read_text(), namespace)
        losses[reduction] = namespace["loss"]
    s, y = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]), np.zeros((3, 2))
    (total, dtotal), (mean, dmean) = losses["sum"](s, y), losses["mean"](s, y)
    assert total == pytest.approx(3 * mean) and dtotal == pytest.approx(3 * dmean)
