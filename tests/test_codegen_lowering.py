"""Lowering is general, not a case per catalog entry: declarations a user writes in the
same style (swish, softplus, a logistic loss, a class-index softmax loss, a naive
cross-entropy, a squared hinge, a Huber loss) go through it and give stable, correct
code; what cannot be lowered is refused with a message naming the declaration."""

from __future__ import annotations

import ast
import textwrap

import numpy as np
import pytest
import sympy as sp

from symnet.catalog import REGISTRY
from symnet.cli import main
from symnet.codegen import CodegenError, Source, files_for, write_files
from symnet.codegen.layout import WIDTH, statement
from symnet.codegen.printer import numpy_code
from symnet.loader import load_file
from tests.helpers import (
    draw_away_from_kinks,
    generated,
    gradient_error,
    kind_of,
    run,
)

USER_FILE = '''
import sympy as sp
from symnet import Activation, LogSumExp, Loss
from symnet.symbols import C, i, j, label, s, score, t, x, y

swish = Activation("swish", x / (1 + sp.exp(-x)), inputs=x)
softplus = Activation("softplus", sp.log(1 + sp.exp(x)), inputs=x)
capped_exp = Activation("capped_exp", sp.Piecewise((x, x > 1), (sp.exp(x - 1), True)),
                        inputs=x)
logistic = Loss("logistic", sp.log(1 + sp.exp(-label * score)), scores=score, target=label,
                target_kind="sign")
softmax_t = Loss("softmax_t", LogSumExp(s, C) - s[t], scores=s, size=C, target=t,
                 target_kind="class_index")
naive_ce = Loss("naive_ce", -sp.log(sp.exp(s[t]) / sp.Sum(sp.exp(s[j]), (j, 0, C - 1))),
                scores=s, size=C, target=t, target_kind="class_index")
squared_hinge = Loss("squared_hinge", sp.Sum(sp.Max(0, 1 - y[i] * s[i]) ** 2, (i, 0, C - 1)),
                     scores=s, size=C, target=y, target_kind="real")
linear = Loss("linear", sp.Sum(s[i], (i, 0, C - 1)), scores=s, size=C)
doubled = Loss("doubled", 2 * score, scores=score)
r = s[i] - y[i]
huber = Loss("huber", sp.Sum(sp.Piecewise((r ** 2 / 2, sp.Abs(r) <= 1),
                                          (sp.Abs(r) - sp.Rational(1, 2), True)),
                             (i, 0, C - 1)), scores=s, size=C, target=y, target_kind="real")
'''
REFUSED_FILE = '''
import sympy as sp
from symnet import Loss
from symnet.symbols import C, i, j, s, y

poisson = Loss("poisson", sp.Sum(sp.exp(s[i]) - y[i] * s[i], (i, 0, C - 1)), scores=s,
               size=C, target=y, target_kind="real")
pairwise = Loss("pairwise", sp.Sum(sp.Sum(sp.Max(0, s[j] - s[i] + 1), (j, 0, C - 1)),
                                   (i, 0, C - 1)), scores=s, size=C)
'''
USER_NAMES = ["swish", "softplus", "capped_exp", "logistic", "softmax_t", "naive_ce",
              "squared_hinge", "huber", "linear", "doubled"]
STRICT = {"over": "raise", "invalid": "raise", "divide": "raise"}


@pytest.fixture(scope="module")
def user_modules(tmp_path_factory):
    """The user's file, generated through the command line into a folder of its own."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "mine.py").write_text(USER_FILE)
    assert main(["generate", str(folder / "mine.py"), "-o", str(folder / "out")]) == 0
    return load_file(str(folder / "mine.py")), folder / "out"


#: batch shapes for the user's declarations, by kind
USER_SHAPES = {"activation": (3, 4), "scalar loss": (6,), "vector loss": (4, 3)}


def user_module(user_modules, name):
    """(declaration, its generated module, a batch shape) of one of the user's entries."""
    declarations, out = user_modules
    decl = declarations[name]
    return decl, generated(decl, out), USER_SHAPES[kind_of(decl)]


@pytest.mark.parametrize("name", USER_NAMES)
def test_a_users_declaration_generates_code_that_passes_the_gradient_check(name, user_modules):
    decl, module, shape = user_module(user_modules, name)
    for seed in (0, 1, 2):
        wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(seed), shape, scale=2.0)
        assert gradient_error(decl, module, wrt, fixed) <= 1e-7


@pytest.mark.parametrize("name", USER_NAMES)
def test_a_users_declaration_is_stable_at_1000(name, user_modules):
    decl, module, shape = user_module(user_modules, name)
    wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(0), shape)
    wrt = {key: 1000.0 * np.sign(a) + a for key, a in wrt.items()}
    with np.errstate(**STRICT):
        value, grads = run(decl, module, wrt, fixed)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("name", ["linear", "doubled"])
def test_a_gradient_constant_along_the_scores_still_has_their_shape(name, user_modules):
    decl, module, shape = user_module(user_modules, name)
    wrt, fixed = draw_away_from_kinks(decl, np.random.default_rng(0), shape)
    _, (grad,) = run(decl, module, wrt, fixed)
    assert grad.shape == wrt["s"].shape
    np.testing.assert_allclose(grad, np.full(shape, (1.0 if name == "linear" else 2.0) / shape[0]))


def test_the_naive_cross_entropy_is_lowered_like_the_stable_one(user_modules):
    _, out = user_modules
    naive = (out / "losses" / "naive_ce.py").read_text().split('"""')[-1]
    stable = (out / "losses" / "softmax_t.py").read_text().split('"""')[-1]
    assert naive.replace("naive_ce", "softmax_t") == stable
    assert "log_z - shifted_t" in stable and "probs - one_hot_t" in stable


def test_a_clamped_branch_never_sees_the_other_side(user_modules):
    _, out = user_modules
    assert "np.exp(np.minimum(1, x) - 1)" in (out / "activations" / "capped_exp.py").read_text()
    assert "alpha*np.expm1(np.minimum(0, x))" in generated_text("elu")


@pytest.mark.parametrize("name, problem", [
    ("poisson", "exp(s) of raw scores"), ("pairwise", "not a C x C table")])
def test_what_cannot_be_lowered_is_refused_naming_the_declaration(tmp_path, capsys, name,
                                                                   problem):
    (tmp_path / "bad.py").write_text(REFUSED_FILE)
    (tmp_path / "out" / "losses").mkdir(parents=True)
    (tmp_path / "out" / "losses" / "keep.py").write_text("kept = True\n")
    assert main(["generate", f"{tmp_path / 'bad.py'}:{name}", "-o", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"declaration {name!r}" in error and problem in error
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["keep.py", "losses"]


def test_a_failure_in_the_middle_of_many_modules_writes_nothing(tmp_path):
    declarations = load_file(_write(tmp_path, REFUSED_FILE))
    sources = [Source(n, d) for n, d in REGISTRY.items()]
    sources.insert(3, Source("bad.py:poisson", declarations["poisson"]))
    with pytest.raises(CodegenError, match="poisson"):
        write_files(tmp_path / "out", files_for(sources))
    assert not (tmp_path / "out").exists()


def _write(folder, text) -> str:
    path = folder / "bad.py"
    path.write_text(text)
    return str(path)


def generated_text(name: str) -> str:
    from tests.helpers import module_path

    return module_path(REGISTRY[name]).read_text()


# --- the printer and the layout ------------------------------------------------------------


def test_steps_print_as_comparisons_in_the_input_dtype_never_heaviside():
    x, u = sp.symbols("x u", real=True)
    assert numpy_code(sp.Heaviside(x, 0)) == "(x > 0).astype(x.dtype)"
    assert numpy_code(sp.Heaviside(u, 1), dtype_of="s") == "(u >= 0).astype(s.dtype)"
    for name in REGISTRY:
        calls = {ast.unparse(c.func) for c in ast.walk(ast.parse(generated_text(name)))
                 if isinstance(c, ast.Call)}
        assert "np.heaviside" not in calls


def test_keywords_are_renamed_as_data():
    assert "def penalty(W, lam=0.001):" in generated_text("l2")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_reductions_name_their_axis_and_no_python_loop_runs_over_the_batch(name):
    tree = ast.parse(generated_text(name))
    assert not any(isinstance(n, (ast.For, ast.While, ast.ListComp)) for n in ast.walk(tree))
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and ast.unparse(call.func) in ("np.sum", "np.max"):
            keywords = {k.arg for k in call.keywords}
            assert keywords in ({"axis", "keepdims"}, set()), ast.unparse(call)


def test_a_long_statement_is_broken_at_its_outermost_operators():
    value = " + ".join(f"np.sum(term{n}*weight{n}, axis=1, keepdims=True)" for n in range(6))
    lines = statement("ds", value)
    assert len(lines) > 1 and all(4 + len(line) <= WIDTH for line in lines)
    joined = "\n".join(lines)
    assert ast.dump(ast.parse(joined)) == ast.dump(ast.parse(f"ds = {value}"))
    assert all(not line.lstrip().startswith(("keepdims", "axis")) for line in lines)


def test_the_sum_reduction_gives_the_lectures_20_line_loss(tmp_path):
    """L12 sums the squared error over the batch: loss = sum (y_pred - y)^2 and
    grad_y_pred = 2 (y_pred - y)."""
    assert main(["generate", "squared_error", "--reduction", "sum", "-o", str(tmp_path)]) == 0
    module = generated(REGISTRY["squared_error"], tmp_path)
    rng = np.random.default_rng(0)
    y_pred, y = rng.normal(size=(64, 10)), rng.normal(size=(64, 10))
    loss, grad = module.loss(y_pred, y)
    assert loss == pytest.approx(np.square(y_pred - y).sum(), rel=1e-12)
    np.testing.assert_allclose(grad, 2 * (y_pred - y), rtol=1e-12)
    assert "the sum over the N samples" in textwrap.dedent(module.__doc__)
