"""The exit-status contract of the `symnet` command: 0 all is well, 1 a refuted claim or a
non-finite training run, 2 bad input. Every bad input below is answered with exit 2 and one
stderr line `symnet: error: ...` that names the file, line, declaration, option or row
involved; no traceback, and no file written or changed.

The rows run the command in this process (symnet.cli.replay.main, as the console script does),
in a scratch folder; a few run it as a subprocess too, so that the real process's output and
status are seen. Training and derivation are replaced by tripwires for the rows whose input
can be judged before either starts: a bad output path or option must never cost a long run.
"""

from __future__ import annotations

import errno
import io
import time
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from symnet.cli import replay
from tests.helpers import symnet

DECLARATION_FILES = {
    "exits.py": "import sys\nsys.exit(0)\n",
    "raises_exit.py": "raise SystemExit('leaving early')\n",
    "nan_hand.py": "import sympy as sp\nfrom symnet import Activation, Gradient\n"
                   "from symnet.symbols import x\n"
                   "square = Activation('square', x**2, inputs=x, hand=[Gradient(sp.nan)])\n",
    "zoo_hand.py": "import sympy as sp\nfrom symnet import Activation, Gradient\n"
                   "from symnet.symbols import x\n"
                   "square = Activation('square', x**2, inputs=x, hand=[Gradient(sp.zoo*x)])\n",
    "twins.py": "from symnet import Activation\nfrom symnet.symbols import x\n"
                "first = Activation('twin', x**2, inputs=x)\n"
                "second = Activation('twin', x**3, inputs=x)\n",
    "dunder.py": "from symnet import Activation\nfrom symnet.symbols import x\n"
                 "init = Activation('__init__', x**2, inputs=x)\n",
    "not_identifier.py": "from symnet import Activation\nfrom symnet.symbols import x\n"
                         "spaced = Activation('my act', x**2, inputs=x)\n",
    "shadows.py": "import sympy as sp\nfrom symnet import Activation\n"
                  "from symnet.catalog.activations import relu as catalog_relu\n"
                  "from symnet.symbols import x\n"
                  "relu = Activation('relu', sp.Max(x, 0) * 2, inputs=x)\n",
    "misfit.py": "import sympy as sp\nfrom symnet.declare.layer import Layer\n"
                 "X, W = sp.MatrixSymbol('X', 2, 3), sp.MatrixSymbol('W', 4, 5)\n"
                 "G = sp.MatrixSymbol('G', 2, 5)\n"
                 "misfit = Layer('misfit', X * W, inputs=(X, W), upstream=G)\n",
    "syntax.py": "from symnet import Activation\nsquare = Activation('square', x**2 inputs=x)\n",
    "index_summed.py": "from symnet.declare.tensor import IndexLayer, indices, over, size, "
                       "tensors\n"
                       "N, D = size('N'), size('D')\nn, d = indices('n d')\nX, Y = tensors('X Y')\n"
                       "summed = IndexLayer('summed', Y[n, d], over(X[n, d], n, N),\n"
                       "                    inputs=(X[n, d],), ranges={n: N, d: D})\n",
    "index_sizes.py": "from symnet.declare.tensor import IndexLayer, indices, over, size, tensors\n"
                      "N, D = size('N'), size('D')\nn, d, k = indices('n d k')\n"
                      "X, Y = tensors('X Y')\n"
                      "sizes = IndexLayer('sizes', Y[n, d], X[n, d] + over(X[k, d], k, D),\n"
                      "                   inputs=(X[n, d],), ranges={n: N, d: D})\n",
    "index_rank.py": "from symnet.declare.tensor import IndexLayer, indices, size, tensors\n"
                     "N, D = size('N'), size('D')\nn, d = indices('n d')\n"
                     "X, Y, W = tensors('X Y W')\n"
                     "ranked = IndexLayer('ranked', Y[n, d], X[n, d] * W[d],\n"
                     "                    inputs=(X[n, d],), ranges={n: N, d: D})\n",
    "index_invariant.py": "import sympy as sp\n"
                          "from symnet.declare.tensor import IndexLayer, indices, max_over, "
                          "over, size, tensors\n"
                          "N, C = size('N'), size('C')\nn, c, k = indices('n c k')\n"
                          "X, Y, shift = tensors('X Y shift')\n"
                          "numerator = IndexLayer('numerator', Y[n, c], sp.exp(X[n, c] - "
                          "shift[n]) / over(sp.exp(X[n, k]), k, C),\n"
                          "    inputs=(X[n, c],), ranges={n: N, c: C},\n"
                          "    statistics={shift[n]: max_over(X[n, k], k, C)}, "
                          "invariant=(shift,))\n",
    "fine.py": "from symnet import Activation\nfrom symnet.symbols import x\n"
               "square = Activation('square', x**2, inputs=x)\n",
    "gamma.py": "import sympy as sp\nfrom symnet import Activation\n"
                "from symnet.symbols import x\n"
                "gamma = Activation('gamma', sp.gamma(x), inputs=x)\n",
    "gelu.py": "import sympy as sp\nfrom symnet import Activation\n"
               "from symnet.symbols import x\n"
               "gelu = Activation('gelu', x*(1 + sp.erf(x/sp.sqrt(2)))/2, inputs=x)\n",
}


def _npz(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


def _data_files(folder: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2)), np.array([0, 1, 0, 1, 0, 1])
    (folder / "empty.npz").write_bytes(b"")
    (folder / "not_a_zip.npz").write_text("x,y\n1,2\n")
    with zipfile.ZipFile(folder / "zip_of_text.npz", "w") as archive:
        archive.writestr("x.npy", "not an array")
        archive.writestr("y.npy", "not an array either")
    _npz(folder / "objects.npz", x=np.array([[1, "a"], [2, None]], dtype=object),
         y=np.array([0, 1]))
    _npz(folder / "complex.npz", x=x + 1j, y=y)
    _npz(folder / "huge_label.npz", x=x, y=np.array([0, 1, 0, 10**6, 0, 1]))
    _npz(folder / "good.npz", x=x, y=y)
    (folder / "semicolons.csv").write_text("1.0;2.0;0\n3.0;4.0;1\n5.0;6.0;0\n")
    (folder / "ragged.csv").write_text("1.0,2.0,0\n3.0,4.0\n5.0,6.0,0\n")
    _npz(folder / "ck_missing.npz", meta=np.array('{"history": {}, "settings": {}}'))
    (folder / "ck_text.npz").write_text("not a checkpoint")


def _checkpoints(folder: Path) -> None:
    """A real checkpoint of the default network, then the same with keys removed or added."""
    status, _, err = _run(["train", "--epochs", "1", "--hidden", "4", "--json", "--save",
                           str(folder / "ck_good.npz")], folder)
    assert status == 0, err
    with np.load(folder / "ck_good.npz") as stored:
        arrays = {k: stored[k] for k in stored.files}
    without = {k: v for k, v in arrays.items() if k != "param/b2"}
    np.savez(folder / "ck_no_b2.npz", **without)
    np.savez(folder / "ck_extra.npz", **arrays, **{"param/W9": np.zeros((2, 2))})
    no_meta = {k: v for k, v in arrays.items() if k != "meta"}
    np.savez(folder / "ck_no_meta.npz", **no_meta)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_input")
    for name, text in DECLARATION_FILES.items():
        (folder / name).write_text(text)
    _data_files(folder)
    (folder / "a_file").write_text("I am a file, not a folder\n")
    (folder / "a_folder").mkdir()
    _checkpoints(folder)
    return folder


def _run(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """(status, stdout, stderr) of `symnet ARGV` run in this process from `cwd`."""
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    try:
        import os
        os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                status = replay.main(argv)
            except SystemExit as stop:       # argparse, or a declaration file's sys.exit
                status = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(previous)
    return status, out.getvalue(), err.getvalue()


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*")) if "__pycache__" not in p.parts}


#: (row id, arguments, words the one error line must hold, judged before training/deriving)
ROWS = [
    # --- declaration files ---
    ("file calls sys.exit(0)", ["check", "exits.py"], ["exits.py:2", "exit"], False),
    ("file raises SystemExit", ["check", "raises_exit.py"], ["raises_exit.py:1", "SystemExit"],
     False),
    ("hand derivation is nan", ["check", "nan_hand.py"], ["'square'", "nan"], False),
    ("hand derivation holds zoo", ["check", "zoo_hand.py"], ["'square'", "zoo"], False),
    ("two declarations one name", ["check", "twins.py"], ["twins.py", "'twin'", "first",
                                                           "second"], False),
    ("declaration named __init__", ["check", "dunder.py"], ["dunder.py:3", "'__init__'"],
     False),
    ("name not an identifier", ["check", "not_identifier.py"], ["not_identifier.py:3",
                                                               "identifier"], False),
    ("file shadows a catalog name", ["check", "shadows.py"], ["shadows.py", "'relu'",
                                                              "catalog_relu"], False),
    ("matrix sizes do not fit", ["check", "misfit.py"], ["misfit.py:5", "3 columns", "4 rows"],
     False),
    ("index free and summed", ["check", "index_summed.py"],
     ["index_summed.py:5", "'summed'", "index n", "free on the left and summed"], False),
    ("index size mismatch", ["derive", "index_sizes.py:sizes"],
     ["index_sizes.py:5", "'sizes'", "X[k, d]", "size D", "axis of size N"], False),
    ("index invariance not proved", ["generate", "index_invariant.py", "-o", "out"],
     ["index_invariant.py:6", "'numerator'", "invariant to the statistic shift[n]",
      "does not simplify to 0"], False),
    ("index undeclared rank", ["check", "index_rank.py"],
     ["index_rank.py:5", "'ranked'", "W is used", "no declared rank"], False),
    ("syntax error", ["check", "syntax.py"], ["syntax.py:2", "syntax"], False),
    ("no such file", ["check", "nowhere.py"], ["nowhere.py", "no such file"], False),
    ("no such declaration", ["derive", "fine.py:cube"], ["fine.py", "'cube'"], False),
    ("no such catalog name", ["derive", "relux"], ["'relux'", "relu"], False),
    ("file declares nothing", ["check", "exits.py:thing"], ["exits.py"], False),
    # --- data sets ---
    ("empty npz", ["train", "--dataset", "empty.npz"], ["empty.npz"], True),
    ("npz not a zip", ["train", "--dataset", "not_a_zip.npz"], ["not_a_zip.npz"], True),
    ("npz of text", ["train", "--dataset", "zip_of_text.npz"], ["zip_of_text.npz"], True),
    ("npz object arrays", ["train", "--dataset", "objects.npz"], ["objects.npz", "object"],
     True),
    ("complex features", ["train", "--dataset", "complex.npz"], ["complex.npz", "complex"],
     True),
    ("label far out of range", ["train", "--dataset", "huge_label.npz"],
     ["huge_label.npz", "row 3", "1000000"], True),
    ("csv with semicolons", ["train", "--dataset", "semicolons.csv"],
     ["semicolons.csv", "';'"], True),
    ("csv ragged rows", ["train", "--dataset", "ragged.csv"], ["ragged.csv", "2"], True),
    ("unknown data set", ["train", "--dataset", "mnist"], ["'mnist'"], True),
    ("missing data file", ["train", "--dataset", "gone.npz"], ["gone.npz", "no such file"],
     True),
    # --- options ---
    ("epochs 0", ["train", "--epochs", "0"], ["--epochs", "0"], True),
    ("epochs -1", ["train", "--epochs", "-1"], ["--epochs", "-1"], True),
    ("epochs not a number", ["train", "--epochs", "many"], ["--epochs", "many"], True),
    ("seed -1", ["train", "--seed", "-1"], ["--seed", "-1"], True),
    ("lam -1", ["train", "--lam", "-1"], ["--lam", "-1"], True),
    ("lam nan", ["train", "--lam", "nan"], ["--lam", "nan"], True),
    ("lr nan", ["train", "--lr", "nan"], ["--lr", "nan"], True),
    ("lr inf", ["train", "--lr", "inf"], ["--lr", "inf"], True),
    ("lr 0", ["train", "--lr", "0"], ["--lr", "0"], True),
    ("batch size -5", ["train", "--batch-size", "-5"], ["--batch-size", "-5"], True),
    ("hidden empty", ["train", "--hidden", ""], ["--hidden", "''"], True),
    ("hidden zero", ["train", "--hidden", "10,0"], ["--hidden", "'10,0'"], True),
    ("unknown optimizer", ["train", "--optimizer", "lbfgs"], ["--optimizer", "lbfgs"], True),
    ("unknown norm", ["train", "--norm", "layernorm"], ["--norm", "layernorm"], True),
    ("unknown dtype", ["train", "--dtype", "float16"], ["--dtype", "float16"], True),
    ("loss given as activation", ["train", "--activation", "softmax_ce"],
     ["softmax_ce", "activation"], True),
    ("unknown subcommand", ["trian"], ["trian"], True),
    # --- checkpoints ---
    ("resume without b2", ["train", "--hidden", "4", "--resume", "ck_no_b2.npz"],
     ["ck_no_b2.npz", "b2"], True),
    ("resume with extra key", ["train", "--hidden", "4", "--resume", "ck_extra.npz"],
     ["ck_extra.npz", "W9"], True),
    ("resume without meta", ["train", "--hidden", "4", "--resume", "ck_no_meta.npz"],
     ["ck_no_meta.npz", "meta"], True),
    ("resume of empty history", ["train", "--hidden", "4", "--resume", "ck_missing.npz"],
     ["ck_missing.npz"], True),
    ("resume not a zip", ["train", "--resume", "ck_text.npz"], ["ck_text.npz"], True),
    ("resume no such file", ["train", "--resume", "ck_gone.npz"], ["ck_gone.npz"], True),
    ("resume other network", ["train", "--hidden", "5", "--resume", "ck_good.npz"],
     ["ck_good.npz", "shape"], True),
    # --- output paths, judged before any training or derivation ---
    ("save under a file", ["train", "--save", "a_file/ck.npz"], ["--save", "a_file"], True),
    ("save onto a folder", ["train", "--save", "a_folder"], ["--save", "a_folder"], True),
    ("plot under a file", ["train", "--plot", "a_file/plots"], ["--plot", "a_file"], True),
    ("plot onto a file", ["train", "--plot", "a_file"], ["--plot", "a_file"], True),
    ("report under a file", ["derive", "relu", "--report", "a_file/r.md"],
     ["--report", "a_file"], True),
    ("report onto a folder", ["derive", "relu", "--report", "a_folder"],
     ["--report", "a_folder"], True),
    ("generate into a file", ["generate", "fine.py", "-o", "a_file"], ["a_file"], True),
    ("generate under a file", ["generate", "fine.py", "-o", "a_file/out"], ["a_file"], True),
    ("generate unknown target", ["generate", "fine.py", "--target", "foo", "-o", "out"],
     ["--target", "foo"], True),
    ("generate no torch spelling", ["generate", "gamma.py", "--target", "torch", "-o", "out"],
     ["'gamma'", "gamma", "torch"], False),
    ("generate no jax spelling", ["generate", "gamma.py", "--target", "jax", "-o", "out"],
     ["'gamma'", "gamma", "jax"], False),
    ("generate no numpy spelling", ["generate", "gamma.py", "-o", "out"],
     ["'gamma'", "math.gamma", "numpy"], False),
    ("generate erf for numpy", ["generate", "gelu.py", "-o", "out"], ["'gelu'", "erf",
                                                                        "numpy"], False),
    ("graph drawn under a file", ["graph", "x*y", "-o", "a_file/g.py"], ["-o", "a_file"],
     True),
    ("graph to unknown format", ["graph", "x*y", "-o", "g.txt"], ["g.txt"], True),
    # --- symnet graph: every answer within seconds ---
    ("graph huge exponent", ["graph", "x**(10**10)", "--at", "x=2"], ["10000000000"], False),
    ("graph huge value", ["graph", "x*y", "--at", "x=10**10**10,y=1"], ["x"], False),
    ("graph malformed", ["graph", "x +* y"], ["'x +* y'"], False),
    ("graph unknown name in --at", ["graph", "x*y", "--at", "z=1"], ["z"], False),
]


@pytest.fixture
def tripwires(monkeypatch):
    """Training and derivation that fail the test if reached."""
    def reached(*args, **kwargs):
        raise AssertionError("training or derivation started before the input was judged")
    import symnet.cli.derive
    import symnet.cli.train
    monkeypatch.setattr(symnet.cli.train, "train", reached)
    monkeypatch.setattr(symnet.cli.derive, "derive", reached)


@pytest.mark.parametrize("argv, words, early", [row[1:] for row in ROWS],
                         ids=[row[0] for row in ROWS])
def test_bad_input_exits_2_with_one_line_naming_it(scratch, argv, words, early, request,
                                                   monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    if early:
        request.getfixturevalue("tripwires")
    before = _tree(scratch)
    started = time.perf_counter()
    status, out, err = _run(argv, scratch)
    seconds = time.perf_counter() - started
    lines = err.splitlines()
    assert status == 2, f"exit {status}\nstdout: {out}\nstderr: {err}"
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith("symnet: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    assert _tree(scratch) == before, "a bad input wrote or changed a file"
    assert not any(Path(tmp_path).rglob("*.py")), "a bad input wrote under the home folder"
    assert seconds < 30, f"took {seconds:.1f} s"


def test_there_are_at_least_forty_rows():
    assert len(ROWS) >= 40
    assert len({row[0] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("argv, status", [
    (["check", "exits.py"], 2),
    (["train", "--epochs", "0"], 2),
    (["graph", "x+" + "+".join(f"x{n}" for n in range(2000)), "--at", "x=1"], None),
])
def test_the_real_process_keeps_the_contract(scratch, argv, status):
    """As a subprocess: exit status, one line, no traceback; a sum of 2000 terms is either
    graphed or refused in one line, within seconds."""
    started = time.perf_counter()
    result = symnet(*argv, cwd=scratch, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert time.perf_counter() - started < 60
    if status is None:
        assert result.returncode in (0, 2), result.stderr[-2000:]
        if result.returncode == 2:
            assert len(result.stderr.splitlines()) == 1
        return
    assert result.returncode == status
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("symnet: error: ")


@pytest.mark.parametrize("target, extra", [("torch", "symnet[torch]"), ("jax", "symnet[jax]")])
def test_a_target_whose_framework_is_missing_is_one_line_naming_the_extra(
        scratch, monkeypatch, target, extra):
    """As if the framework were not installed (it is not found, as symnet looks for it)."""
    import symnet.codegen.targets

    real = symnet.codegen.targets.importlib.util.find_spec
    monkeypatch.setattr(symnet.codegen.targets.importlib.util, "find_spec",
                        lambda name, *a: None if name == target else real(name, *a))
    before = _tree(scratch)
    status, _, err = _run(["generate", "fine.py", "--target", target, "-o", "out"], scratch)
    assert status == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("symnet: error: --target "), err
    assert extra in err and target in err
    assert _tree(scratch) == before


def test_a_good_file_still_exits_0(scratch):
    status, out, err = _run(["check", "fine.py"], scratch)
    assert status == 0, err
    assert "square" in out


class _FullDisk(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_report_onto_a_full_disk_is_one_line_and_leaves_no_temporary(scratch, monkeypatch,
                                                                        tmp_path):
    """The path is fine, so the disk is met only when writing: one line naming the file."""
    import symnet.files

    real_fdopen = symnet.files.os.fdopen
    monkeypatch.setattr(symnet.files.os, "fdopen",
                        lambda handle, *a, **k: (real_fdopen(handle, *a, **k).close(),
                                                 _FullDisk())[1])
    status, _, err = _run(["derive", "relu", "--report", str(tmp_path / "relu.md")], scratch)
    assert status == 2, err
    assert err.splitlines() == [f"symnet: error: cannot write {tmp_path / 'relu.md'}: No space "
                                f"left on device; nothing was written there"]
    assert list(tmp_path.iterdir()) == []
