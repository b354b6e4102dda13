"""Issue 18, small things users see: files written with the usual mode, generated modules
that pass the project's own ruff, and every catalog activation as a graph."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from symnet.catalog import REGISTRY
from symnet.cli import main
from symnet.declare.scalar import Activation
from symnet.derive import derive
from symnet.files import write_atomically, write_bytes_atomically
from symnet.graph.circuit import build, evaluate
from symnet.graph.code import emit, load
from symnet.graph.parse import parse_expression

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


# --- 3. every catalog activation graphs, with the derivative symnet derives -------------

ACTIVATIONS = sorted(name for name, decl in REGISTRY.items() if isinstance(decl, Activation))
#: points for one input, the kink 0 among them; for two inputs (maxout), a tie among them
ONE_INPUT = ["-2.5", "-0.3", "0", "0.7", "3"]
TWO_INPUTS = [("1.5", "-0.5"), ("-0.5", "1.5"), ("0.25", "0.25"), ("-2", "-1")]


def activation_points():
    for name in ACTIVATIONS:
        inputs = [str(v) for v in REGISTRY[name].inputs]
        values = ONE_INPUT if len(inputs) == 1 else TWO_INPUTS
        for value in values:
            value = (value,) if isinstance(value, str) else value
            yield name, dict(zip(inputs, value, strict=True))


def derived_at(name: str, point: dict) -> tuple[float, dict]:
    """The activation's value and symnet's derived derivative, by input, at `point`."""
    decl = REGISTRY[name]
    derivation = derive(decl)
    at = {v: sp.Rational(point[str(v)]) for v in decl.inputs}
    value = decl.forward.subs(decl.params).subs(at)
    gradient = {str(v): derivation.derivatives[v].subs(decl.params).subs(at)
                for v in decl.inputs}
    return float(sp.N(value, 30)), {n: float(sp.N(g, 30)) for n, g in gradient.items()}


def test_the_catalog_has_the_activations_the_issue_names():
    assert {"softplus", "silu", "sigmoid", "elu", "leaky_relu", "maxout", "tanh",
            "relu"} <= set(ACTIVATIONS)


@pytest.mark.parametrize("name, point", list(activation_points()),
                         ids=[f"{n}-{','.join(p.values())}" for n, p in activation_points()])
def test_every_catalog_activation_graphs_with_the_derived_derivative(capsys, name, point):
    at = ",".join(f"{k}={v}" for k, v in point.items())
    assert main(["graph", name, "--at", at, "--json"]) == 0
    graphed = json.loads(capsys.readouterr().out)
    value, gradient = derived_at(name, point)
    assert graphed["value"] == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert graphed["gradients"] == pytest.approx(gradient, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_catalog_activations_code_runs_and_agrees(capsys, name):
    assert main(["graph", name, "--code"]) == 0
    run = load(capsys.readouterr().out)
    for _, point in (p for p in activation_points() if p[0] == name):
        value, gradient = derived_at(name, point)
        got_value, got_gradient = run(**{k: float(v) for k, v in point.items()})
        assert got_value == pytest.approx(value, rel=1e-12, abs=1e-15)
        assert got_gradient == pytest.approx(gradient, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("gates", ["as-written", "composite", "elementary"])
def test_expr_text_takes_softplus_and_silu(capsys, gates):
    assert main(["graph", "softplus(x) + silu(y)", "--at", "x=0.5,y=-2", "--gates", gates,
                 "--json"]) == 0
    graphed = json.loads(capsys.readouterr().out)
    _, softplus = derived_at("softplus", {"x": "0.5"})
    _, silu = derived_at("silu", {"x": "-2"})
    assert graphed["gradients"] == pytest.approx({"x": softplus["x"], "y": silu["x"]},
                                                 rel=1e-12)


def test_softplus_and_silu_are_the_gates_the_catalog_uses():
    x = sp.Symbol("x")
    for name in ("softplus", "silu"):
        text = build(parse_expression(f"{name}(x)"))
        catalog = build(REGISTRY[name].forward)
        assert [g.kind for g in text.gates] == [g.kind for g in catalog.gates]
        point = {"x": sp.Rational(3, 4)}
        assert evaluate(text, point).gradients["x"] == evaluate(catalog, point).gradients["x"]
    assert "softplus" in [g.kind for g in build(parse_expression("softplus(x)")).gates]
    where = build(sp.Piecewise((x, x > 0), (x / 10, True))).gates[-1]
    assert where.kind == "where" and where.inputs.count("x") == 1   # one edge from x


def test_a_piecewise_without_a_last_piece_is_one_clear_error(capsys):
    x = sp.Symbol("x")
    from symnet.graph.gates import GraphError

    with pytest.raises(GraphError, match="undefined where no condition holds"):
        build(sp.Piecewise((x, x > 0)))
    with pytest.raises(GraphError, match="a where gate compares with"):
        build(sp.Piecewise((x, sp.Eq(x, 1)), (2 * x, True)))


def test_softplus_code_defines_the_sigmoid_its_gradient_uses():
    code = emit(build(parse_expression("softplus(x)")))
    value, gradient = load(code)(x=0.5)
    assert gradient["x"] == pytest.approx(1 / (1 + 2.718281828459045 ** -0.5), rel=1e-12)
