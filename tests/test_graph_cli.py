"""`symnet graph` as a user runs it: the table, --json, --code, drawings, bad input."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from symnet.cli import main
from symnet.graph.code import load

ROOT = Path(__file__).resolve().parents[1]
NEURON = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
NEURON_AT = "w0=2,x0=-1,w1=-3,x1=-2,w2=-3"


def run_json(capsys, *args) -> dict:
    assert main(["graph", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_L17_as_a_new_user_types_it(capsys):
    report = run_json(capsys, "(x+y)*z", "--at", "x=-2,y=5,z=-4")
    assert report["value"] == -12
    assert report["gradients"] == {"x": -4, "y": -4, "z": 3}
    assert report["ops"] == {"forward": 2, "backward": 2}
    q = next(n for n in report["nodes"] if n["gate"] == "add")
    assert q["value"] == 3 and q["gradient"] == -4


@pytest.mark.parametrize("gates", ["as-written", "composite"])
def test_L18_sigmoid_neuron_from_the_command_line(capsys, gates):
    report = run_json(capsys, NEURON, "--at", NEURON_AT, "--gates", gates)
    assert f"{report['value']:.2f}" == "0.73"
    assert [f"{report['gradients'][n]:.2f}" for n in ["w0", "x0", "w1", "x1", "w2"]] \
        == ["-0.20", "0.39", "-0.39", "-0.59", "0.20"]
    assert len(report["nodes"]) - 5 == (8 if gates == "as-written" else 5)


def test_table_shows_values_local_gradients_and_gradients(capsys):
    assert main(["graph", "(x+y)*z", "--at", "x=-2,y=5,z=-4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["node", "gate", "forward", "value", "gradient", "local",
                                "gradients"]
    assert lines[5].split()[:5] == ["s0", "+", "x", "+", "y"]
    assert "df/ds0 = z = -4, df/dz = s0 = 3" in lines[6]
    assert lines[-1].startswith("operations")


def test_table_without_a_point_shows_the_local_gradient_formulas(capsys):
    assert main(["graph", NEURON]) == 0
    shown = capsys.readouterr().out
    assert "df/ds6 = -1/s6**2" in shown and "ds5/ds4 = s5" in shown
    assert "value" not in shown.splitlines()[1]


def test_code_prints_a_runnable_forward_and_backward(capsys):
    assert main(["graph", "sigmoid(w0*x0+w1*x1+w2)", "--name", "L", "--code"]) == 0
    code = capsys.readouterr().out
    assert "    grad_s3 = grad_L*(1 - L)*L\n" in code
    value, grads = load(code)(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    assert f"{value:.2f} {grads['x1']:.2f}" == "0.73 -0.59"


def test_code_is_the_same_bytes_under_any_hash_seed(tmp_path):
    outputs = set()
    for seed in ("0", "12345"):
        done = subprocess.run(
            [sys.executable, "-m", "symnet", "graph", "max(x, y)*exp(z) + relu(x*z)", "--code"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_out_py_writes_the_code_whole(tmp_path, capsys):
    target = tmp_path / "neuron.py"
    assert main(["graph", NEURON, "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert "def forward_backward(w0, x0, w1, x1, w2):" in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["neuron.py"]  # no temporary left


def test_a_declaration_of_ones_own_and_the_sigmoid_inside_it_as_one_gate(tmp_path, capsys):
    mine = tmp_path / "mine.py"
    mine.write_text("import sympy as sp\nfrom symnet import Activation\n"
                    "from symnet.symbols import x\n"
                    "swish = Activation('swish', x / (1 + sp.exp(-x)), inputs=x)\n")
    report = run_json(capsys, f"{mine}:swish", "--at", "x=1", "--gates", "composite")
    assert [n["gate"] for n in report["nodes"]] == ["input", "sigmoid", "mul"]
    assert report["nodes"][2]["inputs"] == ["x", "s0"]          # x is used twice: a copy
    sigma = 1 / (1 + math.exp(-1))
    assert report["gradients"]["x"] == pytest.approx(sigma + sigma * (1 - sigma), rel=1e-14)


def test_depth_24_nested_tanh_backward_is_at_most_three_times_the_forward(capsys):
    expr = "x"
    for level in range(1, 25):
        expr = f"tanh(w{level}*{expr})"
    report = run_json(capsys, expr)
    assert report["ops"]["forward"] == 48
    assert report["ops"]["backward"] <= 3 * 48


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_drawing_is_written(tmp_path, capsys, suffix):
    pytest.importorskip("matplotlib")
    target = tmp_path / f"l17{suffix}"
    assert main(["graph", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "-o", str(target)]) == 0
    assert target.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_svg_shows_values_above_and_gradients_below_and_is_reproducible(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    for target in (first, second):
        assert main(["graph", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "-o", str(target)]) == 0
    svg = first.read_text()
    for label in ("-2.00", "5.00", "-4.00", "3.00", "-12.00", "1.00"):
        assert f"<!-- {label} -->" in svg   # matplotlib's note of each text it draws
    assert first.read_bytes() == second.read_bytes()


def test_each_edge_has_its_value_above_and_its_gradient_below():
    pytest.importorskip("matplotlib")
    from symnet.graph import build, evaluate
    from symnet.graph.draw import GRADIENT, VALUE, figure
    from symnet.graph.parse import parse_expression, parse_point
    graph = build(parse_expression("(x+y)*z"))
    fig = figure(graph, evaluate(graph, parse_point("x=-2,y=5,z=-4")), "L17")
    texts = fig.axes[0].texts
    values = [t for t in texts if t.get_color() == VALUE]
    gradients = [t for t in texts if t.get_color() == GRADIENT]
    # edges x->s0, y->s0, s0->f, z->f, and the output f
    assert [t.get_text() for t in values] == ["-2.00", "5.00", "3.00", "-4.00", "-12.00"]
    assert [t.get_text() for t in gradients] == ["-4.00", "-4.00", "-4.00", "3.00", "1.00"]
    for value, gradient in zip(values, gradients, strict=True):
        assert value.get_position()[1] > gradient.get_position()[1]


def test_drawing_without_matplotlib_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["graph", "x*y", "-o", str(tmp_path / "g.png")]) == 2
    assert 'pip install "symnet[plot]"' in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, named", [
    (["foo(x) + y", "--at", "x=1,y=2"], "unknown function 'foo'"),
    (["(x+y)*z", "--at", "x=-2,y=5"], "no value for z"),
    (["(x+y", "--at", "x=1,y=2"], "'(x+y' is malformed"),
    (["x*y", "--at", "x=1,y=abc"], "the value of y, 'abc', is not a number"),
    (["x*y", "--at", "x=1,y=2,w=3"], "--at names w"),
    (["x*y", "--at", "x"], "'x' is not NAME=VALUE"),
    (["log(x)", "--at", "x=-1"], "f = log(x) at x = -1 is complex"),
    (["1/x", "--at", "x=0"], "infinite"),
    (["x"], "bare input"),
    (["softmax_ce"], "softmax_ce is a loss"),
    (["x*y", "--name", "x"], "output name 'x'"),
    (["np*x"], "the name 'np' clashes"),
    (["x*y", "-o", "graph.txt"], "a .png or .svg file"),
])
def test_bad_input_is_one_clear_line_and_exit_status_2(capsys, args, named):
    assert main(["graph", *args]) == 2
    err = capsys.readouterr().err
    assert named in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_choice_is_an_argparse_error_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["graph", "x*y", "--gates", "weird"])
    assert exit_.value.code == 2
