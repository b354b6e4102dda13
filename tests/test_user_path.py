"""Your own declarations, end to end, driven through the command line as a user runs it:
a file in a temporary folder (examples/my_declarations.py, the tutorial's) declares a new
activation (Mish), a new per-sample loss over scores and one-hot targets (label-smoothed
cross-entropy) and a new layer (a dense layer with that activation), each with a hand
derivation. Each is derived, checked, generated
and gradient-checked without touching symnet; a wrong hand derivation is refuted with a
counterexample; bad input gets one line and exit status 2 and writes nothing.

Training with the user's declarations (`symnet train --loss FILE:NAME`, `--activation
FILE:NAME`) builds on the `user` fixture: it holds the file, its declarations and their
generated modules (`test_the_users_modules_train_a_small_network_by_hand` trains with the
modules directly)."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from symnet.loader import load_file
from tests import layer_helpers as layers
from tests.helpers import ROOT, draw_away_from_kinks, gradient_error, load, run, symnet

#: the tutorial's files: a user's declarations, and the same with slips in the derivations
EXAMPLES = ROOT / "examples"
USER_FILE = (EXAMPLES / "my_declarations.py").read_text()
WRONG_FILE = (EXAMPLES / "my_typos.py").read_text()
NAMES = ("mish", "smoothed_ce", "dense_mish")
#: what `symnet derive FILE:NAME` shows of the derivation, as text
DERIVED = {
    "mish": ["forward", "x*tanh(softplus(x))",
             "dmish(x)/dx = x*(1 - tanh(softplus(x))**2)*sigmoid(x) + tanh(softplus(x))"],
    "smoothed_ce": ["dL/ds[k] = epsilon*y[k] + p[k] - y[k] - epsilon/C", "p = softmax(s)"],
    "dense_mish": ["dL/dW = X.T*(G .* mish'(X*W + ones(N, 1)*b))"],
}
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise"}


@dataclass(frozen=True)
class UserPath:
    """A user's folder: their file, its declarations by name, their generated modules."""

    folder: Path
    file: Path
    declarations: dict
    out: Path

    def module(self, name: str):
        kinds = {"activation": "activations", "loss": "losses", "layer": "layers"}
        return load(self.out / kinds[self.declarations[name].kind] / f"{name}.py")


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> UserPath:
    """The user's file written into a folder of its own and generated, as a user does:
    `symnet generate mine.py -o out`, run in that folder."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "mine.py").write_text(USER_FILE)
    result = symnet("generate", "mine.py", "-o", "out", cwd=folder)
    assert result.returncode == 0, result.stderr
    return UserPath(folder, folder / "mine.py", load_file(str(folder / "mine.py")),
                    folder / "out")


# --- derive, check, generate ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_derive_shows_the_derived_gradients_of_a_users_declaration(name, user):
    result = symnet("derive", f"mine.py:{name}", cwd=user.folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{name} (")
    for shown in DERIVED[name]:
        assert shown in result.stdout


def test_check_proves_each_hand_derivation_of_the_users_file(user):
    result = symnet("check", "mine.py", "--json", cwd=user.folder)
    assert result.returncode == 0, result.stdout + result.stderr
    entries = {e["name"]: e["verdicts"] for e in json.loads(result.stdout)["entries"]}
    assert list(entries) == list(NAMES)
    for name, verdicts in entries.items():
        claims = {v["claim"]: v["status"] for v in verdicts}
        mine = [c for c in claims if c.startswith("my ")]
        assert len(mine) == 1, (name, claims)
        assert claims[mine[0]] == "proved", (name, claims)
        assert set(claims.values()) <= {"proved", "probed"}


def test_a_wrong_hand_derivation_is_refuted_with_a_counterexample(tmp_path):
    (tmp_path / "wrong.py").write_text(WRONG_FILE)
    result = symnet("check", "wrong.py", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "mish (activation): 2 proved, 1 refuted" in result.stdout   # 2: as a layer
    assert "smoothed_ce (loss): 1 refuted" in result.stdout
    for claim in ("mish' with 1 - tanh^2 forgotten", "dL/ds_k with eps/C forgotten"):
        assert f"refuted  {claim}" in result.stdout
    assert result.stdout.count("counterexample at") == 2
    assert result.stdout.count("claimed / right side") == 2


def test_generate_writes_numpy_only_modules_named_after_the_users_file(user):
    for name in NAMES:
        path = next(user.out.glob(f"*/{name}.py"))
        source = path.read_text()
        assert f"# Declaration: mine.py:{name}." in source
        imports = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)]
        assert [a.name for n in imports for a in n.names] == ["numpy"]
        assert not any(isinstance(n, ast.ImportFrom) for n in ast.walk(ast.parse(source)))


# --- the generated modules, gradient-checked -----------------------------------------------


@pytest.mark.parametrize("name, shape", [("mish", (3, 4)), ("smoothed_ce", (4, 3))])
def test_the_users_generated_module_passes_the_gradient_check(name, shape, user):
    decl, module = user.declarations[name], user.module(name)
    for seed in (0, 1, 2):
        wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(seed), shape, scale=2.0)
        assert gradient_error(decl, module, wrt, fixed) <= 1e-7


def test_the_users_generated_layer_passes_the_gradient_check(user):
    layer, module = user.declarations["dense_mish"], user.module("dense_mish")
    for (batch, others), seed in zip(layers.SIZES, (0, 1, 2), strict=True):
        arrays = layers.draw(layer, np.random.default_rng(seed),
                             layers.sizes_of(layer, batch, others))
        assert layers.gradient_error(layer, module, arrays) <= 1e-7


@pytest.mark.parametrize("name", ["mish", "smoothed_ce"])
def test_the_users_generated_module_is_finite_at_a_thousand(name, user):
    decl, module = user.declarations[name], user.module(name)
    shape = (3, 4) if name == "mish" else (4, 3)
    wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(0), shape)
    wrt = {key: 1000.0 * np.sign(a) + a for key, a in wrt.items()}
    with np.errstate(**STRICT):
        value, grads = run(decl, module, wrt, fixed)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)


def test_the_users_modules_train_a_small_network_by_hand(user):
    """Generated modules only: the user's dense Mish layer, the catalog's affine layer and
    the user's loss; 100 steps of gradient descent on a separable toy problem."""
    dense, smoothed = user.module("dense_mish"), user.module("smoothed_ce")
    affine = load(ROOT / "generated" / "layers" / "affine.py")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 2))
    Y = np.eye(2)[(X[:, 0] + X[:, 1] > 0).astype(int)]
    W1, b1 = 0.5 * rng.normal(size=(2, 8)), np.zeros((1, 8))
    W2, b2 = 0.5 * rng.normal(size=(8, 2)), np.zeros((1, 2))
    losses = []
    for _ in range(100):
        H, hidden = dense.forward(X, W1, b1)
        S, scores = affine.forward(H, W2, b2)
        loss, dS = smoothed.loss(S, Y)
        dH, dW2, db2 = affine.backward(dS, scores)
        _, dW1, db1 = dense.backward(dH, hidden)
        for parameter, gradient in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
            parameter -= 0.5 * gradient
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


# --- the report ----------------------------------------------------------------------------


def test_derive_report_holds_declaration_derivation_verdicts_kinks_and_code(user):
    result = symnet("derive", "mine.py:smoothed_ce", "--report", "smoothed_ce.md",
                    cwd=user.folder)
    assert result.returncode == 0, result.stderr
    text = (user.folder / "smoothed_ce.md").read_text()
    for section in ("# `smoothed_ce` (loss)", "## Declaration", "## Derivation",
                    "## Verdicts", "## Kink convention", "## Generated code",
                    r"\begin{aligned}", "| proved | my dL/ds_k", "```python",
                    "# Declaration: mine.py:smoothed_ce.", "def loss(s, y, epsilon=0.1):"):
        assert section in text
    assert "The gradient is smooth" in text


# --- bad input through files ---------------------------------------------------------------

_HEAD = "import sympy as sp\nfrom symnet import Activation, Loss\n" \
        "from symnet.symbols import C, i, s, x, y\n\n"
#: files with a mistake each; the declaration sits on line 5
BROKEN = {
    "syntax.py": _HEAD + "mine = Activation('mine', x**2 +, inputs=x)\n",
    "jumps.py": _HEAD + "signed = Loss('signed', sp.Sum(sp.sign(s[i]) * y[i], (i, 0, C - 1)),"
                        "\n              scores=s, size=C, target=y, target_kind='real')\n",
    "raw_exp.py": _HEAD + "poisson = Loss('poisson', sp.Sum(sp.exp(s[i]) - y[i] * s[i], "
                          "(i, 0, C - 1)),\n               scores=s, size=C, target=y, "
                          "target_kind='real')\n",
}
BAD_INPUT = {
    "a missing file": ("nothere.py:mish", ["nothere.py: no such file"]),
    "a name not in the file": ("jumps.py:singed", ["jumps.py declares no 'singed'",
                                                   "did you mean signed"]),
    "a syntax error": ("syntax.py:mine", ["syntax.py:5: syntax error"]),
    "a declaration that fails to derive": ("jumps.py:signed", [
        "declaration 'signed'", "Dirac delta", "(declared at jumps.py:5)"]),
}


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    for name, text in BROKEN.items():
        (folder / name).write_text(text)
    return folder


def _one_line_error(result, words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symnet: error: "), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_through_a_file_is_one_line_exit_2_and_writes_nothing(case, broken):
    reference, words = BAD_INPUT[case]
    out = broken / f"out_{case.replace(' ', '_')}"
    _one_line_error(symnet("generate", reference, "-o", out, cwd=broken), words)
    assert not out.exists()
    report = broken / f"{case.replace(' ', '_')}.md"
    _one_line_error(symnet("derive", reference, "--report", report, cwd=broken), words)
    assert not report.exists()
    assert not list(broken.glob(".*.tmp"))


def test_a_declaration_that_cannot_be_generated_gets_no_report_and_no_module(broken):
    words = ["declaration 'poisson'", "exp(s) of raw scores", "(declared at raw_exp.py:5)"]
    _one_line_error(symnet("derive", "raw_exp.py:poisson", "--report", "poisson.md",
                           cwd=broken), words)
    assert not (broken / "poisson.md").exists()
    _one_line_error(symnet("generate", "raw_exp.py", "-o", "poisson_out", cwd=broken), words)
    assert not (broken / "poisson_out").exists()
