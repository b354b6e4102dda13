"""Issue 13, section 1: no false verdict. A correct hand derivation is never refuted: not
when it mentions the batch size, not when its constants are float literals, and a formula
with a restricted domain (sqrt) is probed on its declared domain or named in one line."""

import math
import os
import random
import textwrap
from pathlib import Path

import pytest
import sympy as sp

from symnet.catalog.layers import affine
from symnet.catalog.losses import squared_error
from symnet.declare.layer import Layer, size
from symnet.declare.network import Network, use
from symnet.declare.scalar import Activation, Gradient, Kink
from symnet.errors import DeclarationError
from symnet.verify import PROBED, PROVED, REFUTED, ProbeSpace, check
from symnet.verify.matrix import as_layer_verdicts
from tests.helpers import symnet

ROOT = Path(__file__).resolve().parents[1]


def symnet_check(tmp_path, source: str):
    """`symnet check FILE.py` as a user runs it, on a file of declarations in tmp_path."""
    declarations = tmp_path / "mine.py"
    declarations.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYMNET_NO_CACHE": "1"}
    return symnet("check", declarations, cwd=tmp_path, env=env)


def statuses(verdicts) -> dict:
    return {v.claim: v.status for v in verdicts}


# --- a hand gradient that mentions the batch size -----------------------------------------------

N, D, C = size("N"), size("D"), size("C")
X, W = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, C)
Y, S = sp.MatrixSymbol("Y", N, C), sp.MatrixSymbol("S", N, C)


def squared_error_net(reduction: str, hand) -> Network:
    """One affine layer (no bias) and the squared error, as in the issue."""
    return Network(f"{reduction}_net", input=X, stages=[use(affine, W=W, b=0, out=S)],
                   loss=squared_error, target=Y, reduction=reduction,
                   hand=[Gradient(hand, wrt=W, label="my dL/dW")])


def test_a_mean_network_hand_gradient_with_the_batch_size_is_proved():
    verdicts = check(squared_error_net("mean", X.T * (2 * (S - Y)) / N))
    assert statuses(verdicts)["my dL/dW"] == PROVED
    assert all(v.status == PROVED for v in verdicts), verdicts


def test_a_wrong_mean_gradient_is_refuted_with_the_batch_size_explicit():
    """A gradient missing its 2: refuted, and the counterexample holds the matrices'
    entries only, never a random real for N (N = 2 is in the verdict's sizes)."""
    wrong = next(v for v in check(squared_error_net("mean", X.T * (S - Y) / N))
                 if v.claim == "my dL/dW")
    assert wrong.status == REFUTED
    assert "N = 2" in wrong.detail
    assert "N" not in wrong.counterexample["point"]
    assert statuses(check(squared_error_net("sum", X.T * (2 * (S - Y)))))["my dL/dW"] == PROVED


def test_symnet_check_of_a_file_with_the_mean_network_says_proved(tmp_path):
    done = symnet_check(tmp_path, """
        import sympy as sp
        from symnet import Gradient
        import symnet.catalog.layers as layers
        import symnet.catalog.losses as losses
        from symnet.declare.layer import size
        from symnet.declare.network import Network, use

        N, D, C = size("N"), size("D"), size("C")
        X, W = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, C)
        Y, S = sp.MatrixSymbol("Y", N, C), sp.MatrixSymbol("S", N, C)

        mean_net = Network(
            "mean_net", input=X, stages=[use(layers.affine, W=W, b=0, out=S)],
            loss=losses.squared_error, target=Y, reduction="mean",
            hand=[Gradient(X.T * (2 * (S - Y)) / N, wrt=W, label="my dL/dW")],
        )
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "proved   my dL/dW" in done.stdout
    assert "no claim refuted" in done.stdout


# --- float literals ------------------------------------------------------------------------------

x = sp.Symbol("x", real=True)
ROOT3 = math.sqrt(3)


def test_a_right_derivative_with_float_literals_is_probed_at_their_precision():
    """0.7 exp(0.1 x)' = 0.07 exp(0.1 x): sympy folds 0.7 * 0.1 into 0.06999999999999999,
    the hand wrote 0.07; the two agree to the 15 digits the literals carry, not to 50."""
    scaled_exp = Activation("scaled_exp", 0.7 * sp.exp(0.1 * x), inputs=x,
                            hand=[Gradient(0.07 * sp.exp(0.1 * x), label="mine")])
    (verdict,) = check(scaled_exp)
    assert verdict.status == PROBED, verdict
    assert verdict.detail == ("simplify could not decide; 50 random points agree to 12 "
                              "digits, all that the float literals (0.07, 0.1) carry")


def test_float_literals_in_a_forward_do_not_refute_its_derivation_as_a_layer():
    scaled_tanh = Activation("scaled_tanh", 0.3 * sp.tanh(ROOT3 * x), inputs=x,
                             hand=[Gradient(0.3 * ROOT3 * (1 - sp.tanh(ROOT3 * x) ** 2),
                                            label="mine")])
    verdicts = check(scaled_tanh) + as_layer_verdicts(scaled_tanh)
    assert [v.status for v in verdicts if v.status == REFUTED] == [], verdicts
    assert all("float literals" in v.detail for v in verdicts if "dL/dX" in v.claim)


def test_a_wrong_derivative_with_float_literals_is_still_refuted():
    wrong = Activation("scaled_tanh", 0.3 * sp.tanh(ROOT3 * x), inputs=x,
                       hand=[Gradient(0.3 * (1 - sp.tanh(ROOT3 * x) ** 2), label="mine")])
    (verdict,) = check(wrong)
    assert verdict.status == REFUTED
    assert "compared to their own precision" in verdict.detail


def test_a_kink_convention_in_float_literals_holds_at_their_precision():
    """The derived value at the kink is 0.1 * 0.1 = 0.010000000000000002; 0.01 was said."""
    leaky = Activation("leaky", sp.Piecewise((x, x > 0), (0.1 * 0.1 * x, True)), inputs=x,
                       kinks=[Kink({x: 0}, {x: 0.01})])
    (verdict,) = check(leaky)
    assert verdict.status == PROVED, verdict


# --- functions with a restricted domain ----------------------------------------------------------

ROOT_FILE = """
    import sympy as sp
    from symnet import Activation, Gradient

    x = sp.Symbol("x", {assumption}=True)
    root = Activation("root", sp.sqrt(x), inputs=x,
                      hand=[Gradient(1 / (2 * sp.sqrt(x)), label="my sqrt'")])
"""


def root_of(symbol) -> Activation:
    return Activation("root", sp.sqrt(symbol), inputs=symbol,
                      hand=[Gradient(1 / (2 * sp.sqrt(symbol)), label="my sqrt'")])


def test_sqrt_of_a_positive_input_is_probed_on_its_domain_as_a_scalar_and_as_a_layer():
    root = root_of(sp.Symbol("x", positive=True))
    verdicts = check(root) + as_layer_verdicts(root)
    assert [v.status for v in verdicts] == [PROVED] * 3, verdicts


def test_sqrt_of_a_real_input_is_named_as_needing_a_domain():
    with pytest.raises(DeclarationError) as raised:
        check(root_of(x))
    message = str(raised.value)
    assert message.startswith("declaration 'root': claim \"my sqrt'\": no real value: ")
    assert "sympy.Symbol('x', positive=True)" in message and "\n" not in message


def test_the_inputs_of_a_two_input_activation_and_a_network_input_keep_their_domains():
    a, b = sp.symbols("a b", positive=True)
    geo = Activation("geo", sp.sqrt(a * b), inputs=(a, b),
                     hand=[Gradient(sp.sqrt(b) / (2 * sp.sqrt(a)), wrt=a, label="mine")])
    assert {v.status for v in check(geo) + as_layer_verdicts(geo)} == {PROVED}
    root = root_of(sp.Symbol("x", positive=True))
    first = Network("first", input=X, stages=[use(root), use(affine, W=W, b=0)])
    assert {v.status for v in check(first)} == {PROVED}


def test_a_matrix_an_activation_does_not_take_directly_cannot_be_drawn_from_its_domain():
    """sqrt after an affine map: X*W's entries are not drawn positive, and the check says
    so in one line, naming the claim, instead of a RuntimeError."""
    root = root_of(sp.Symbol("x", positive=True))
    deep = Network("deep", input=X, stages=[use(affine, W=W, b=0), use(root)])
    with pytest.raises(DeclarationError, match=r"^declaration 'deep': claim .*no real value"):
        check(deep)


def test_a_negative_symbol_is_probed_at_negative_values():
    u = sp.Symbol("u", negative=True)
    space, rng = ProbeSpace(), random.Random(0)
    assert all(space.value(u, rng, {}) < 0 for _ in range(50))


def test_symnet_check_of_sqrt_says_proved_on_a_positive_input(tmp_path):
    done = symnet_check(tmp_path, ROOT_FILE.format(assumption="positive"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "root (activation): 3 proved" in done.stdout


def test_symnet_check_of_sqrt_of_a_real_input_says_in_one_line_it_needs_a_domain(tmp_path):
    done = symnet_check(tmp_path, ROOT_FILE.format(assumption="real"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("symnet: error: declaration 'root': ")
    assert "positive=True" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# --- a number written for a size -----------------------------------------------------------------


def test_a_hand_gradient_that_wrote_the_batch_size_as_a_number_is_refuted():
    """Proved at N = 2 alone, 2 for N would pass: every hand derivation is probed again
    where each size takes another value (N = 3, C = 2, D = 3)."""
    verdicts = check(squared_error_net("mean", X.T * (2 * (S - Y)) / 2))
    wrong = next(v for v in verdicts if v.claim == "my dL/dW")
    assert wrong.status == REFUTED
    assert "at N = 3, C = 2, D = 3" in wrong.detail


def test_a_layer_hand_derivation_that_wrote_a_size_as_a_number_is_refuted():
    """The batch mean of a layer's rows: dL/dX = ones(N, 1) G / N, written with 2."""
    G1 = sp.MatrixSymbol("G", 1, D)
    mean_rows = Layer("mean_rows", sp.OneMatrix(1, N) * X / N, inputs=(X,), upstream=G1,
                      hand=[Gradient(sp.OneMatrix(N, 1) * G1 / N, wrt=X, label="right"),
                            Gradient(sp.OneMatrix(N, 1) * G1 / 2, wrt=X, label="2 for N")])
    assert statuses(check(mean_rows)) == {
        "L25 the backward holds no object of rank above 2 (no Jacobian)": PROVED,
        "dL/dX = 1/N*ones(N, 1)*G": PROVED, "right": PROVED, "2 for N": REFUTED}
