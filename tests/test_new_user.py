"""Issue 18, sections 2 and 3: the new user's path. The command says its version and what
each subcommand does, with every default; a missing extra is one line, before any work,
with one spelling of the install hint everywhere. From Python, `from symnet import derive`
gives the function, a History prints in a line, layers, networks and their derivations
show as LaTeX in Jupyter, and a declaration file imports a helper module beside it."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from symnet import cache
from symnet.catalog import CATALOG
from symnet.cli import build_parser, replay
from symnet.errors import DataError, install_hint
from symnet.loader import load_file
from symnet.runtime.train import History

ROOT = Path(__file__).resolve().parent.parent


def run(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the command as the console script runs it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = replay.main(argv)
        except SystemExit as exc:          # argparse's --help and --version
            status = exc.code
    return status, out.getvalue(), err.getvalue()


# --- 2. the command: --version, --help, missing extras ---------------------------------------


def test_version_is_the_packages():
    status, out, _ = run(["--version"])
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert status == 0 and out.strip() == f"symnet {declared}"


def subcommands() -> dict:
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    return commands.choices


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_each_subcommands_help_says_what_it_does_in_a_sentence(name):
    description = subcommands()[name].description
    assert description and description[0].isupper() and description.endswith("."), name
    status, out, _ = run([name, "--help"])
    assert status == 0 and " ".join(description.split()) in " ".join(out.split())


def test_train_help_shows_each_default():
    """Every option that takes a value says what it is when not given (those whose default
    depends on the data set, per data set)."""
    train = subcommands()["train"]
    no_default = {"--save", "--resume", "--plot"}            # nothing written unless asked
    options = [a for a in train._actions if a.option_strings and a.nargs != 0
               and a.option_strings[-1] not in no_default]
    assert len(options) == 14     # --network among them
    for action in options:
        assert "default: " in action.help, action.option_strings
    _, out, _ = run(["train", "--help"])
    assert "spiral 2000, digits 40" in " ".join(out.split())   # --epochs, from DEFAULTS


@pytest.fixture
def no_data_loaded(monkeypatch):
    """Loading data fails the test: the run must have ended before."""
    import symnet.cli.train

    def reached(*args):
        raise AssertionError("the data set was loaded before the options were judged")
    monkeypatch.setattr(symnet.cli.train, "load_dataset", reached)


@pytest.mark.parametrize("argv, missing, extra", [
    (["train", "--plot", "PLOTS"], "matplotlib", "plot"),
    (["train", "--dataset", "digits"], "sklearn", "data"),
], ids=["plot", "digits"])
def test_a_missing_extra_is_one_line_before_the_run(argv, missing, extra, monkeypatch, tmp_path,
                                                    no_data_loaded):
    monkeypatch.setitem(sys.modules, missing, None)          # as if not installed
    argv = [str(tmp_path / a) if a == "PLOTS" else a for a in argv]
    status, out, err = run(argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("symnet: error: ")
    assert f'pip install "symnet[{extra}]"' in err and f'pip install -e ".[{extra}]"' in err
    assert not (tmp_path / "PLOTS").exists()


def test_the_digits_loader_names_the_extra(monkeypatch):
    from symnet.runtime.data import digits

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=re.escape(install_hint("data"))):
        digits()


def hints() -> list[tuple[str, str]]:
    """(file, hint) of each `pip install ...[extra]` in symnet's code and the README."""
    files = [*sorted((ROOT / "symnet").rglob("*.py")), ROOT / "README.md"]
    pattern = re.compile(r"pip install[^`\n]*\[[a-z,]+\][^`\n\s]*")
    return [(str(f.relative_to(ROOT)), m.group()) for f in files
            for m in pattern.finditer(f.read_text())]


def test_every_install_hint_is_spelled_one_way():
    found = hints()
    assert len(found) >= 5
    spelled = re.compile(r'pip install (-e "\.|"symnet)\[[a-z,]+\]"')
    wrong = [(f, hint) for f, hint in found if not spelled.fullmatch(hint)]
    assert not wrong, wrong
    assert {hint for _, hint in found} >= {'pip install "symnet[plot]"',
                                           'pip install -e ".[plot]"'}


# --- 3. from Python and Jupyter ------------------------------------------------------------


@pytest.mark.parametrize("first", ["import symnet.cli.derive", "import symnet.derive",
                                   "from symnet.derive import tidy", "pass"])
def test_from_symnet_import_derive_gives_the_function(first):
    """Whatever imported the module symnet/derive.py before (every command does), in a
    fresh interpreter as a notebook or script would."""
    code = (f"{first}\nfrom symnet import derive\nfrom symnet.catalog import CATALOG\n"
            f"import symnet\nassert symnet.derive is derive\n"
            f"print(type(derive).__name__, derive(CATALOG['relu']).declaration.name)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["function", "relu"]


def test_a_history_prints_in_a_line():
    history = History(loss=[1.1 - i / 2000 for i in range(2000)],
                      train_accuracy=[i / 2000 for i in range(2000)], steps=2000, epochs=2000)
    shown = repr(history)
    assert len(shown) < 200 and "\n" not in shown
    assert "epochs=2000" in shown and "1.1 ... 0.1005" in shown and "(2000 values)" in shown


@pytest.mark.parametrize("name, words", [
    ("affine", [r"Y = X W + \mathbf{1}_{N \times 1} b", "X: N x D"]),
    ("two_layer_relu", [r"S = \operatorname{relu}\left(X W_{1}\right) W_{2}", "W2: H x C"]),
])
def test_layers_and_networks_show_as_latex(name, words):
    shown = CATALOG[name]._repr_latex_()
    assert shown.startswith("$$") and shown.endswith("$$")
    for word in words:
        assert word in shown


@pytest.mark.parametrize("name, word", [
    ("affine", r"\frac{\partial L}{\partial W} = X^{T} G"),
    ("two_layer_relu", r"\frac{\partial L}{\partial W_{2}}"),
])
def test_layer_and_network_derivations_show_as_latex(name, word):
    from symnet import derive

    shown = derive(CATALOG[name])._repr_latex_()
    assert shown.startswith("$$\\begin{aligned}") and word in shown


# --- 3. a helper module beside a declaration file --------------------------------------------

HELPER = """\
import sympy as sp


class f(sp.Function):
    def fdiff(self, argindex=1):
        return {fdiff}

    def _eval_evalf(self, prec):
        return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)
"""
RIGHT = "1 / (1 + sp.exp(-self.args[0]))"
WRONG = "2 / (1 + sp.exp(-self.args[0]))"          # the same length: the same file size

DECLARATIONS = """\
import sympy as sp
from {helper} import f
from symnet import Activation, Gradient
from symnet.symbols import x

soft = Activation("soft", f(x), inputs=x,
                  hand=[Gradient(1 / (1 + sp.exp(-x)), label="my derivative")])
"""


@pytest.fixture
def beside(tmp_path, monkeypatch):
    """A declaration file in tmp_path/decls importing a helper module beside it (a name of
    its own, forgotten after the test), run from another folder not on sys.path."""
    helper = f"helper_{abs(hash(str(tmp_path)))}"
    folder = tmp_path / "decls"
    folder.mkdir()
    (folder / f"{helper}.py").write_text(HELPER.format(fdiff=RIGHT))
    (folder / "mine.py").write_text(DECLARATIONS.format(helper=helper))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield folder, helper
    sys.modules.pop(helper, None)


def test_a_declaration_file_imports_a_helper_beside_it(beside):
    folder, helper = beside
    path, meta_path = list(sys.path), list(sys.meta_path)
    found = load_file(str(folder / "mine.py"))
    assert list(found) == ["soft"]
    assert sys.modules[helper].__file__ == str(folder / f"{helper}.py")
    assert sys.path == path and sys.meta_path == meta_path      # nothing left behind


def test_a_folder_beside_the_file_hides_no_installed_module(beside, monkeypatch):
    """A folder without __init__.py (here named like a standard module not imported yet) is
    not taken for a helper: the module further down the path is imported."""
    folder, _ = beside
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    (folder / "colorsys").mkdir()
    (folder / "mine.py").write_text(DECLARATIONS.format(helper=beside[1])
                                    + "import colorsys\nassert colorsys.rgb_to_hsv\n")
    assert list(load_file(str(folder / "mine.py"))) == ["soft"]
    assert sys.modules["colorsys"].__file__.startswith(sys.base_prefix)


def test_a_failing_file_leaves_no_finder_behind(beside):
    folder, _ = beside
    meta_path = list(sys.meta_path)
    (folder / "broken.py").write_text("import no_such_helper_anywhere\n")
    status, _, err = run(["check", str(folder / "broken.py")])
    assert status == 2 and "ModuleNotFoundError" in err and err.count("\n") == 1
    assert sys.meta_path == meta_path


def test_editing_the_helper_changes_the_key_and_the_verdict(beside, monkeypatch, tmp_path):
    folder, helper = beside
    monkeypatch.delenv("SYMNET_NO_CACHE")
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    reference = "decls/mine.py:soft"
    status, out, _ = run(["check", reference])
    assert status == 0 and "proved   my derivative" in out
    before = cache.key("verdicts", load_file("decls/mine.py")["soft"])
    (folder / f"{helper}.py").write_text(HELPER.format(fdiff=WRONG))
    del sys.modules[helper]                               # as a new process would import it
    after = cache.key("verdicts", load_file("decls/mine.py")["soft"])
    assert after != before
    status, out, _ = run(["check", reference])
    assert status == 1 and "refuted  my derivative" in out


# --- the README's Python example ---------------------------------------------------------------


def test_the_readmes_training_example_prints_what_it_says():
    """The block that shows accuracy, Dataset's fields and lam= runs as written, and prints
    the accuracy and the start of the History its comments show."""
    readme = (ROOT / "README.md").read_text()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
               if "net.accuracy(" in b]
    for field in ("x_train", "y_train", "x_test", "y_test", "features", "classes", "lam="):
        assert field in block
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    history, accuracy = out.getvalue().splitlines()
    shown = dict(re.findall(r"print\((\w+).*# (.*)", block))
    assert history.startswith(shown["history"].removesuffix(", ...)"))
    assert accuracy == shown["net"]
