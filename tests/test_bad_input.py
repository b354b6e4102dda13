"""Bad declarations get an error that names the declaration and the problem."""

import pytest
import sympy as sp

from symnet import Activation, DeclarationError, DerivationError, Gradient, Jacobian, Loss
from symnet.derive import derive
from symnet.errors import LoadError
from symnet.loader import resolve
from symnet.symbols import C, i, s, x, y

z = sp.Symbol("z", real=True)
plain = sp.Symbol("plain")                 # no real=True
one_hot = dict(scores=s, size=C, target=y, target_kind="one_hot")


@pytest.mark.parametrize("build, words", [
    (lambda: Activation("scaled", z * x, inputs=x), ["'scaled'", "undeclared", "z"]),
    (lambda: Activation("unreal", plain ** 2, inputs=plain), ["'unreal'", "not declared real",
                                                               "plain"]),
    (lambda: Activation("opaque", sp.Function("f")(x), inputs=x), ["'opaque'", "undefined",
                                                                    "f(x)"]),
    (lambda: Activation("vec", s[i], inputs=x), ["'vec'", "indexed"]),
    (lambda: Loss("noscores", sp.Sum(y[i], (i, 0, C - 1))), ["'noscores'", "score vector"]),
    (lambda: Loss("ignores", sp.Sum(y[i] ** 2, (i, 0, C - 1)), **one_hot),
     ["'ignores'", "does not depend", "s"]),
    (lambda: Loss("nosize", sp.Sum(s[i], (i, 0, C - 1)), scores=s), ["'nosize'", "size"]),
    (lambda: Loss("stray", sp.Sum(s[i] * z, (i, 0, C - 1)), **one_hot), ["'stray'", "z"]),
    (lambda: Loss("badkind", sp.Sum(s[i], (i, 0, C - 1)), scores=s, size=C, target=y,
                  target_kind="probabilities"), ["'badkind'", "target_kind"]),
    (lambda: Activation("shape", x ** 2, inputs=x, hand=[Gradient(sp.Matrix([2 * x, 0]))]),
     ["'shape'", "wrong shape", "2x1"]),
    (lambda: Loss("gradshape", sp.Sum(s[i] ** 2, (i, 0, C - 1)), **one_hot,
                  hand=[Gradient(2 * s[i])]), ["'gradshape'", "wrong shape", "i"]),
    (lambda: Loss("jacshape", sp.Sum(s[i] ** 2, (i, 0, C - 1)), **one_hot,
                  hand=[Jacobian(s[i], sp.Symbol("q", integer=True))]),
     ["'jacshape'", "wrong shape", "q"]),
    (lambda: Activation("two", sp.Max(x, z), inputs=(x, z), hand=[Gradient(1)]),
     ["'two'", "wrt="]),
    (lambda: Activation("not an identifier", x, inputs=x), ["identifier"]),
])
def test_malformed_declaration_is_reported_with_its_name(build, words):
    with pytest.raises(DeclarationError) as raised:
        build()
    for word in words:
        assert word in str(raised.value)


@pytest.mark.parametrize("forward, words", [
    (sp.floor(x), ["'stepped'", "cannot differentiate", "floor"]),
    (sp.Heaviside(x), ["'stepped'", "jumps"]),
    (sp.Piecewise((1, x > 0), (0, True)), ["'stepped'", "jumps by 1", "x > 0"]),
    (sp.Piecewise((x + 2, x >= 1), (x, True)), ["'stepped'", "jumps by 2", "x >= 1"]),
    # continuous where the first branch ends, a jump where the second does
    (sp.Piecewise((-1, x < -1), (x, x <= 1), (5, True)), ["'stepped'", "jumps by -4", "x <= 1"]),
])
def test_forward_sympy_cannot_differentiate_is_reported(forward, words):
    with pytest.raises(DerivationError) as raised:
        derive(Activation("stepped", forward, inputs=x))
    for word in words:
        assert word in str(raised.value)


def test_a_loss_that_jumps_in_a_score_is_refused():
    """The switch is solved for the score s[i], not for the summation index i."""
    from symnet import Loss
    from symnet.symbols import C, i, s, y

    jumpy = Loss("jumpy", sp.Sum(sp.Piecewise((1 + s[i] - y[i], s[i] > y[i]), (0, True)),
                                 (i, 0, C - 1)),
                 scores=s, size=C, target=y, target_kind="real")
    with pytest.raises(DerivationError, match="'jumpy'.*jumps by 1"):
        derive(jumpy)


@pytest.mark.parametrize("forward", [
    sp.Piecewise((-1, x < -1), (x, x <= 1), (1, True)),             # hard tanh: three branches
    sp.Piecewise((0, x < 0), (x**2, x < 1), (2*x - 1, True)),        # smooth at both switches
])
def test_a_continuous_forward_of_several_branches_is_derived(forward):
    derivation = derive(Activation("clipped", forward, inputs=x))
    assert derivation.derivatives[x].subs(x, sp.Rational(1, 2)) == 1    # 1 and 2x at x = 1/2


def test_unknown_catalog_name_suggests_close_names():
    with pytest.raises(LoadError, match="did you mean sigmoid"):
        resolve("sigmoidd")


def test_missing_file_and_missing_name(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        resolve(str(tmp_path / "absent.py") + ":thing")
    (tmp_path / "mine.py").write_text("import sympy\n")
    with pytest.raises(LoadError, match="declares no 'thing'"):
        resolve(str(tmp_path / "mine.py") + ":thing")


def test_syntax_error_in_a_user_file_names_file_and_line(tmp_path):
    (tmp_path / "broken.py").write_text("import sympy\n\ndef broken(:\n")
    with pytest.raises(LoadError, match=r"broken\.py:3: syntax error"):
        resolve(str(tmp_path / "broken.py") + ":thing")


def test_bad_declaration_in_a_user_file_names_the_file_and_line(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import sympy as sp\nfrom symnet import Activation\n"
        "x = sp.Symbol('x')\nbad = Activation('bad', x ** 2, inputs=x)\n")
    with pytest.raises(DeclarationError, match=r"'bad'.*not declared real.*mine\.py:4"):
        resolve(str(tmp_path / "mine.py") + ":bad")
