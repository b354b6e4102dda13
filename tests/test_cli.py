"""The `symnet` command as a user runs it: exit statuses, output, JSON."""

import json
import time
from pathlib import Path

import pytest
import sympy as sp

from symnet.catalog import REGISTRY
from symnet.cli import main
from symnet.derive import derive
from symnet.show.report import _loss_kinks
from tests.helpers import symnet

ROOT = Path(__file__).resolve().parents[1]


def test_derive_softmax_ce_shows_p_minus_y_and_the_jacobian(capsys):
    assert main(["derive", "softmax_ce"]) == 0
    shown = capsys.readouterr().out
    assert "p[k] - y[k]" in shown
    assert "df(i)/ds[j] = (delta(i, j) - p[j])*p[i]" in shown
    assert "p = softmax(s)" in shown


def test_derive_sigmoid_in_terms_of_its_output_and_as_latex(capsys):
    assert main(["derive", "sigmoid"]) == 0
    assert "out*(1 - out)" in capsys.readouterr().out
    assert main(["derive", "relu", "--latex"]) == 0
    assert r"\left[x > 0\right]" in capsys.readouterr().out


def test_check_named_entries_as_json(capsys):
    assert main(["check", "relu", "softmax_ce", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["refuted"] == 0
    assert [e["name"] for e in report["entries"]] == ["relu", "softmax_ce"]
    statuses = {v["status"] for e in report["entries"] for v in e["verdicts"]}
    assert statuses <= {"proved", "probed"}


@pytest.mark.slow
def test_check_whole_catalog_exits_0_and_list_shows_kinds(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMNET_NO_CACHE")           # list reuses the verdicts check found
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path))
    result = symnet("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no claim refuted" in result.stdout
    listing = symnet("list")
    assert listing.returncode == 0
    assert "softmax_ce" in listing.stdout and "activation" in listing.stdout
    assert len(list((tmp_path / "results" / "commands").glob("*.json"))) == 2
    again = symnet("check")                            # replayed (symnet.cli.replay): the same
    assert (again.returncode, again.stdout) == (0, result.stdout)


def test_check_a_file_with_the_slide_typo_exits_1_with_a_counterexample():
    result = symnet("check", "examples/slide_typos.py:svm_slide")
    assert result.returncode == 1
    assert "refuted" in result.stdout and "counterexample at" in result.stdout


def test_user_file_declaration_is_derived_and_checked(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import sympy as sp\n"
        "from symnet import Activation, Gradient\n"
        "from symnet.symbols import x, out\n"
        "softsign = Activation('softsign', x / (1 + sp.Abs(x)), inputs=x,\n"
        "    hand=[Gradient(1 / (1 + sp.Abs(x)) ** 2, label='mine')])\n")
    derived = symnet("derive", f"{tmp_path}/mine.py:softsign")
    assert derived.returncode == 0, derived.stderr
    checked = symnet("check", f"{tmp_path}/mine.py")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "mine" in checked.stdout


@pytest.mark.parametrize("args, words", [
    (["derive", "nosuch"], ["not in the catalog"]),
    (["check", "missing.py:thing"], ["missing.py", "no such file"]),
    (["derive", "examples/slide_typos.py:nosuch"], ["declares no 'nosuch'"]),
])
def test_bad_input_exits_2_with_one_line_and_no_traceback(args, words):
    result = symnet(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("symnet: error:")
    for word in words:
        assert word in result.stderr


def test_bad_declaration_in_a_file_exits_2(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import sympy as sp\nfrom symnet import Activation\n"
        "z = sp.Symbol('z', real=True)\nx = sp.Symbol('x', real=True)\n"
        "scaled = Activation('scaled', z * x, inputs=x)\n")
    result = symnet("check", f"{tmp_path}/bad.py")
    assert result.returncode == 2
    assert "'scaled'" in result.stderr and "undeclared" in result.stderr
    assert "bad.py:5" in result.stderr


def test_declarations_and_derivations_display_as_latex_in_jupyter():
    assert REGISTRY["relu"]._repr_latex_() == r"$$\operatorname{relu}{\left(x \right)} = " \
        r"\max\left(0, x\right)$$"
    block = derive(REGISTRY["sigmoid"])._repr_latex_()
    assert block.startswith(r"$$\begin{aligned}") and block.endswith(r"\end{aligned}$$")
    assert r"out \left(1 - out\right)" in block and "\t" not in block


def test_derive_writes_a_markdown_report(tmp_path):
    report = tmp_path / "sub" / "svm.md"
    assert main(["derive", "svm", "--report", str(report)]) == 0
    text = report.read_text()
    for section in ("# `svm` (loss)", "## Declaration", "## Derivation", "## Verdicts",
                    "## Kink convention", r"\begin{aligned}", "| proved | L02"):
        assert section in text
    assert not list(report.parent.glob(".*tmp")), "no temporary file is left behind"


def test_a_tensor_layer_displays_and_reports_its_declaration(tmp_path):
    from symnet.catalog import DECLARATIONS

    for decl in DECLARATIONS.of_kind("tensor layer").values():
        block = decl._repr_latex_()   # Jupyter: forward, statistics, shapes
        assert block.startswith(r"$$\begin{aligned}") and r"\text{forward}" in block
        assert all(str(entry.base) in block for entry in decl.inputs), decl.name
    report = tmp_path / "batchnorm.md"
    assert main(["derive", "batchnorm", "--report", str(report)]) == 0
    text = report.read_text()
    for section in ("# `batchnorm` (tensor layer)", "## Declaration", r"\text{statistic}",
                    "## Derivation", r"\operatorname{colsum}"):
        assert section in text


def test_a_kinks_value_that_simplify_cannot_finish_is_shown_unsimplified(monkeypatch):
    decl = REGISTRY["l1"]
    derivation = derive(decl)

    def endless(expr, *args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr("symnet.show.report.SYMPY_SECONDS", 0.2)
    monkeypatch.setattr(sp, "simplify", endless)
    started = time.perf_counter()
    lines = _loss_kinks(decl, derivation)
    assert time.perf_counter() - started < 10
    assert lines[-1].endswith("at W[k] = 0, dR/dW[k] = lambda")
