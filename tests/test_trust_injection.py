"""No text becomes code (issue 13, section 5): text a user supplies -- an expression given to
`symnet graph` with its comments, a declaration's doc, a symbol's name, a file's name --
lands in generated modules only inside docstrings and comments it cannot end.

Every hostile text below is written so that, were it to close its string or comment, the
rest would print PWNED on import. Each generated module is imported in a fresh Python
process: it must import, print nothing, and carry the text in its docstring where it
carries it at all.
"""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from symnet.cli import main
from symnet.graph.circuit import build
from symnet.graph.code import emit
from symnet.graph.parse import parse_expression
from symnet.templating import comment, docstring
from tests.helpers import symnet

ROOT = Path(__file__).resolve().parents[1]
RUN = 'print("PWN" + "ED")'   # prints PWNED only if it runs as code

HOSTILE = {
    "double quotes": f'"""; {RUN}; """',
    "single quotes": f"'''; {RUN}; '''",
    "quote run": f'"""""; {RUN}; """""',
    "backslash quotes": f'\\"""; {RUN}; \\"""',
    "backslash N": "C:\\Nope",
    "escapes as text": "\\N{BULLET} \\x41 \\u00e9 \\t \\0",
    "trailing backslash": "ends in a backslash \\",
    "newlines": f'line\n"""\n{RUN}\n"""\nend',
    "carriage returns": f"cr\r{RUN}\r\n{RUN}\r#",
    "non-ASCII": "ünïcödé ∂L/∂x 💥 \u202eevil\u202c \u2028 sep",
    "NUL": f"nul\x00byte; {RUN}",
    "lone surrogate": "a file name's undecodable byte \udcff",
}
KINDS = ("activations", "losses", "regularizers", "layers")


def imported(path: Path, module: str) -> tuple[str, str | None]:
    """(everything the import printed, the module's __doc__) from a fresh process."""
    code = ("import importlib, json, sys\n"
            f"module = importlib.import_module({module!r})\n"
            "sys.stdout.write('\\n' + json.dumps(module.__doc__))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed, _, doc = done.stdout.rpartition("\n")
    return printed + done.stderr, json.loads(doc)


def _environment() -> dict:
    """This checkout's symnet for a `python -m symnet` subprocess."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def words(text: str) -> str:
    """The text with its whitespace runs as single spaces: docstrings wrap prose."""
    return " ".join(text.split())


# --- the escaping rule itself ------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE)
@pytest.mark.parametrize("indent", ["", "    "])
def test_a_docstring_literal_reads_back_as_its_text(text, indent):
    lines = ["title", *text.split("\n"), "last"]
    literal = docstring(lines, indent)
    namespace = {}
    exec(compile(f"def f():\n    {literal}\n", "<test>", "exec"), namespace)
    assert namespace["f"].__doc__ == "\n".join(
        [lines[0], *(indent + line for line in lines[1:])]) + "\n" + indent
    assert "\0" not in literal and "\r" not in literal


def test_a_docstring_stays_raw_where_it_needs_no_escape():
    """The catalog's LaTeX keeps its raw docstrings byte for byte."""
    assert docstring([r"\frac{d}{dx}", "x"]) == 'r"""\\frac{d}{dx}\nx\n"""'
    assert docstring(["plain", "text"], "    ") == '"""plain\n    text\n    """'


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE)
def test_a_comment_is_comment_lines_only(text):
    source = comment(f"Declaration: {text}") + "\n"
    assert "\0" not in source
    # every line a comment: no code at all, so compiling gives an empty module
    assert all(line.startswith("#") for line in source.splitlines())
    assert compile(source, "<test>", "exec").co_names == ()


# --- symnet graph -------------------------------------------------------------------------


def graph_expression(text: str) -> str:
    """x*y followed by `text` as comments: each of its lines starts with #."""
    return "x*y #" + text.replace("\r\n", "\n").replace("\r", "\r#").replace("\n", "\n#")


def test_the_issues_graph_injection_writes_a_module_that_runs_nothing(tmp_path, capsys):
    expression = 'x*y #"""; __import__("os").system("echo PWNED"); """'
    assert main(["graph", expression, "-o", str(tmp_path / "neuron.py")]) == 0
    printed, doc = imported(tmp_path, "neuron")
    assert "PWNED" not in printed
    assert f"f = {expression}\n" in doc


def test_a_graph_comment_with_a_backslash_imports(tmp_path, capsys):
    assert main(["graph", "x*y # C:\\Nope", "-o", str(tmp_path / "nope.py")]) == 0
    printed, doc = imported(tmp_path, "nope")
    assert printed == "" and "f = x*y # C:\\Nope\n" in doc


#: what a command line cannot carry as text: a NUL, an undecodable byte
UNSPEAKABLE = ("NUL", "lone surrogate")


@pytest.mark.parametrize("kind", [k for k in HOSTILE if k not in UNSPEAKABLE])
def test_graph_modules_carry_hostile_comments_and_run_nothing(tmp_path, capsys, kind):
    text = HOSTILE[kind]
    expression = graph_expression(text)
    assert main(["graph", expression, "-o", str(tmp_path / "hostile.py")]) == 0
    printed, doc = imported(tmp_path, "hostile")
    assert printed == ""
    assert f"f = {expression}\n" in doc


@pytest.mark.parametrize("kind", UNSPEAKABLE)
def test_text_no_command_line_carries_is_escaped_by_emit(tmp_path, kind):
    """Through emit() a NUL or a lone surrogate must not break the module either."""
    source = "x*y # " + HOSTILE[kind]
    (tmp_path / "nul.py").write_text(emit(build(parse_expression("x*y")), source),
                                     encoding="utf-8")
    printed, doc = imported(tmp_path, "nul")
    assert printed == "" and f"f = {source}\n" in doc


def test_an_undecodable_byte_in_an_expression_is_a_one_line_error(capsys):
    """`symnet graph $'x*y # \\xff'`: the byte arrives as a lone surrogate, which ast
    could not encode (a UnicodeEncodeError traceback)."""
    assert main(["graph", "x*y # \udcff"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("symnet: error: ") and "not UTF-8 text" in error
    assert error.count("\n") == 1


# --- symnet generate: activations, losses, regularisers, layers --------------------------

DECLARATIONS = '''
import sympy as sp
from symnet import Activation, Loss, Regularizer
from symnet.declare.layer import Layer, broadcast, size
from symnet.symbols import C, i, s, x, y

TEXTS = {texts}
N, D, M = size("N"), size("D"), size("M")
X, W, b = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M), sp.MatrixSymbol("b", 1, M)
G = sp.MatrixSymbol("G", N, M)
w = sp.IndexedBase("w", real=True)
for n, text in enumerate(TEXTS):
    a = sp.Symbol(text, real=True)     # a parameter named by the text
    globals()[f"activation_{{n}}"] = Activation(f"activation_{{n}}", a * x, inputs=x,
                                               params={{a: 2}}, doc=text)
    globals()[f"loss_{{n}}"] = Loss(f"loss_{{n}}", sp.Sum((s[i] - y[i]) ** 2, (i, 0, C - 1)),
                                    scores=s, size=C, target=y, target_kind="real", doc=text)
    globals()[f"regularizer_{{n}}"] = Regularizer(
        f"regularizer_{{n}}", a * sp.Sum(w[i] ** 2, (i, 0, C - 1)), weights=w, size=C,
        params={{a: 1}}, doc=text)
    globals()[f"layer_{{n}}"] = Layer(f"layer_{{n}}", X * W + broadcast(b, N),
                                     inputs=(X, W, b), upstream=G, doc=text)
'''
NAMES = {"activations": "activation", "losses": "loss", "regularizers": "regularizer",
         "layers": "layer"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Every kind of module for every hostile text, as `symnet generate FILE.py -o DIR`
    writes them."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.py").write_text(
        DECLARATIONS.format(texts=repr(list(HOSTILE.values()))), encoding="utf-8")
    done = symnet("generate", "hostile.py", "-o", "out", cwd=folder,
                  env={**_environment(), "SYMNET_NO_CACHE": "1"})
    assert done.returncode == 0, done.stderr
    return folder / "out"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n, text", list(enumerate(HOSTILE.values())), ids=HOSTILE)
def test_generated_modules_carry_hostile_docs_and_run_nothing(generated, kind, n, text):
    printed, doc = imported(generated, f"{kind}.{NAMES[kind]}_{n}")
    assert printed == ""
    assert words(f"({NAMES[kind]}): {text}") in words(doc)


def test_generated_packages_import(generated):
    for folder, package in [(generated.parent, generated.name), *((generated, k) for k in KINDS)]:
        printed, doc = imported(folder, package)
        assert printed == "" and doc


def test_a_training_steps_hostile_doc_runs_nothing(tmp_path):
    from symnet.catalog import STEPS
    from symnet.codegen.emit import Source, files_for

    text = "".join(HOSTILE.values())
    step = replace(STEPS["two_layer_relu_softmax_ce_l2_sgd"], doc=text)
    files = files_for([Source("hostile.py:two_layer_relu_softmax_ce_l2_sgd", step)])
    for rel, code in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(code, encoding="utf-8")
    # as a member of its package: the step imports the networks/blas.py written beside it
    printed, doc = imported(tmp_path, "networks.two_layer_relu_softmax_ce_l2_sgd")
    assert printed == "" and words(text) in words(doc)


def test_a_declaration_files_name_cannot_end_the_header_comment(tmp_path):
    """The header names the file; a file name may hold line breaks."""
    name = f'nl\n{RUN}\r{RUN}\n#.py'
    (tmp_path / name).write_text(textwrap.dedent('''
        from symnet import Activation
        from symnet.symbols import x
        doubled = Activation("doubled", x * x, inputs=x)
    '''), encoding="utf-8")
    done = symnet("generate", name, "-o", "out", cwd=tmp_path, env=_environment())
    assert done.returncode == 0, done.stderr
    printed, doc = imported(tmp_path / "out", "activations.doubled")
    assert printed == "" and doc.startswith("doubled (activation)")


# --- names: a declaration's names are the code's identifiers -----------------------------

NAMES_FILE = '''
import sympy as sp
from symnet import Activation
from symnet.declare.layer import Layer, size
from symnet.symbols import x

y = sp.Symbol("y", real=True)
bold_x, dx = (sp.Symbol(n, real=True) for n in ("\\U0001d431", "dx"))
#: a parameter 𝐱 beside the input x: Python reads the identifier 𝐱 as x
bold = Activation("bold", bold_x * x ** 2, inputs=x, params={bold_x: 2})
#: a parameter dx beside the input x, whose gradient the code calls dx
shadow = Activation("shadow", x + dx * y, inputs=(x, y), params={dx: 2})
N, D, M = size("N"), size("D"), size("M")
X, W, dW = (sp.MatrixSymbol(n, *shape) for n, shape in (("X", (N, D)), ("W", (D, M)),
                                                         ("dW", (D, M))))
shadow_layer = Layer("shadow_layer", X * W + X * dW, inputs=(W, dW, X),
                     upstream=sp.MatrixSymbol("G", N, M))
'''


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> Path:
    """The modules of NAMES_FILE, as `symnet generate names.py -o out` writes them."""
    folder = tmp_path_factory.mktemp("names")
    (folder / "names.py").write_text(NAMES_FILE, encoding="utf-8")
    done = symnet("generate", "names.py", "-o", "out", cwd=folder, env=_environment())
    assert done.returncode == 0, done.stderr
    return folder / "out"


def computed(folder: Path, code: str):
    """What `code` (numpy imported as np) prints as JSON, run in a fresh process in folder."""
    ran = subprocess.run([sys.executable, "-c", f"import json\nimport numpy as np\n{code}"],
                         cwd=folder, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


def test_a_parameter_python_reads_as_an_input_gets_its_own_name(named):
    """𝐱 is x to Python: the module was `def forward(x, 𝐱=2)`, which does not import."""
    assert computed(named, "from activations import bold\n"
                           "out, cache = bold.forward(np.array([3.0]))\n"
                           "print(json.dumps([out[0], bold.backward(np.ones(1), cache)[0]]))"
                    ) == [18.0, 12.0]                 # 2 x^2 at 3 and its slope 4 x


def test_a_parameter_named_as_an_inputs_gradient_is_not_overwritten(named):
    """backward assigned dx = dout, then computed dy = dout*dx with the parameter gone."""
    assert computed(named, "from activations import shadow\n"
                           "_, cache = shadow.forward(np.ones(1), np.ones(1))\n"
                           "print(json.dumps([g[0] for g in shadow.backward(np.ones(1), cache)]))"
                    ) == [1.0, 2.0]                   # d/dx = 1, d/dy = dx = 2


def test_a_layer_input_named_as_another_inputs_gradient_is_not_overwritten(named):
    """backward assigned dW, W's gradient, then computed dX from the input dW."""
    assert computed(named, "from layers import shadow_layer\n"
                           "W, dW, X = np.eye(2), 2 * np.eye(2), 2 * np.eye(2)\n"
                           "_, cache = shadow_layer.forward(W, dW, X)\n"
                           "dX = shadow_layer.backward(np.ones((2, 2)), cache)[2]\n"
                           "print(json.dumps(dX.tolist()))"
                    ) == [[3.0, 3.0], [3.0, 3.0]]     # G (W + dW)^T


def test_a_graph_output_name_python_reads_as_an_input_is_refused(capsys):
    assert main(["graph", "x*y", "--name", "\U0001d431", "--code"]) == 2
    assert "reads as 'x'" in capsys.readouterr().err


# --- the Markdown report of symnet derive --report ---------------------------------------

REPORTED = '''
from symnet import Activation, Gradient
from symnet.symbols import x

cube = Activation("cube", x ** 3, inputs=x, doc="a doc ```` </code><script>alert(1)</script>",
                  hand=[Gradient(3 * x ** 2, label="a label\\n| forged | row |\\n<b>bold</b>")])
'''


def test_a_reports_text_stays_text(tmp_path):
    """The generated module sits in a code block that its docstring's backticks closed, the
    doc's HTML was the page's, and a label's line break ended the verdicts' table row."""
    (tmp_path / "reported.py").write_text(REPORTED, encoding="utf-8")
    report = tmp_path / "cube.md"
    assert main(["derive", f"{tmp_path / 'reported.py'}:cube", "--report", str(report)]) == 0
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines[2] == "a doc ```` &lt;/code&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    code = lines.index("`````python")         # longer than the docstring's run of four
    assert lines[code + 1:].index("`````") > 10
    page = "\n".join(lines[:code])           # the code block holds the docstring as it is
    assert "<script>" not in page and "<b>" not in page
    row = next(line for line in lines if line.startswith("| proved |"))
    assert row.count(" | ") == 2 and r"\| forged \| row \|" in row


def test_an_activation_whose_backward_needs_no_cache_imports(tmp_path):
    """2*x: backward unpacked an empty cache with the line ` = cache`, and the module did not
    import."""
    (tmp_path / "linear.py").write_text(textwrap.dedent('''
        from symnet import Activation
        from symnet.symbols import x
        doubled = Activation("doubled", 2 * x, inputs=x)
    '''), encoding="utf-8")
    assert main(["generate", str(tmp_path / "linear.py"), "-o", str(tmp_path / "out")]) == 0
    assert computed(tmp_path / "out", "from activations import doubled\n"
                                      "out, cache = doubled.forward(np.array([3.0]))\n"
                                      "dx = doubled.backward(np.array([5.0]), cache)\n"
                                      "print(json.dumps([out[0], dx[0]]))") == [6.0, 10.0]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_a_drawings_title_is_the_expression_as_written(tmp_path, capsys, suffix):
    """A $ in a comment was read as matplotlib mathtext: `$x^$` ended in a traceback."""
    path = tmp_path / f"drawn{suffix}"
    assert main(["graph", "x*y # costs $x^$ or \\$5", "-o", str(path)]) == 0
    assert path.stat().st_size > 0
