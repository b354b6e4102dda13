"""Issue 13, section 1: no false verdict. A correct hand derivation is never refuted: not
when it mentions the batch size, not when its constants are float literals, and a formula
with a restricted domain (sqrt) is probed on its declared domain or named in one line."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sympy as sp

from symnet.catalog.layers import affine
from symnet.catalog.losses import squared_error
from symnet.matrix.layers import size
from symnet.matrix.networks import Network, use
from symnet.spec import Gradient
from symnet.verify import PROVED, REFUTED, check

ROOT = Path(__file__).resolve().parents[1]


def symnet_check(tmp_path, source: str):
    """`symnet check FILE.py` as a user runs it, on a file of declarations in tmp_path."""
    declarations = tmp_path / "mine.py"
    declarations.write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYMNET_NO_CACHE": "1"}
    return subprocess.run([sys.executable, "-m", "symnet", "check", str(declarations)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


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
        from symnet.matrix.layers import size
        from symnet.matrix.networks import Network, use

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
