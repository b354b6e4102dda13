"""Issue 18, small things users see: files written with the usual mode, generated modules
that pass the project's own ruff, and every catalog activation as a graph."""

from __future__ import annotations

import os
import stat
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
