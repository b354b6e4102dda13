"""Layers and networks as a user meets them: `symnet derive` and `symnet check` on the
catalog and on a file of their own; shapes that do not fit, reported at declaration with
both shapes, and as one line with exit status 2 on the command line."""

import json
import textwrap

import pytest
import sympy as sp

from symnet.catalog.activations import relu, tanh
from symnet.catalog.layers import affine
from symnet.catalog.losses import l2, softmax_ce
from symnet.cli import main
from symnet.declare import layer as layer_module
from symnet.declare.layer import Layer, broadcast, elementwise, size
from symnet.declare.network import Network, use
from symnet.declare.scalar import Gradient
from symnet.errors import DeclarationError

N, D, E, M, K, H, C = (size(n) for n in ("N", "D", "E", "M", "K", "H", "C"))
X, W, G = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M), sp.MatrixSymbol("G", N, M)


def raises(match: str):
    return pytest.raises(DeclarationError, match=match)


# --- shapes at declaration -------------------------------------------------------------------


def test_inner_sizes_that_differ_are_reported_with_both_shapes():
    V = sp.MatrixSymbol("V", E, M)
    with raises(r"'bad_inner'.*X\*V: the inner sizes differ, X is N x D but V is E x M"):
        Layer("bad_inner", X * V, inputs=(X, V))


def test_a_bias_of_the_wrong_length_is_reported_with_both_shapes():
    b = sp.MatrixSymbol("b", 1, K)
    with raises(r"'bad_bias'.*X\*W is N x M but ones\(N, 1\)\*b is N x K"):
        Layer("bad_bias", X * W + broadcast(b, N), inputs=(X, W, b))


def test_a_column_bias_is_reported_with_both_shapes():
    b = sp.MatrixSymbol("b", M, 1)
    with raises(r"'col_bias'.*ones\(N, 1\) is N x 1 but b is M x 1"):
        Layer("col_bias", X * W + broadcast(b, N), inputs=(X, W, b))


def test_a_network_stage_that_does_not_fit_names_the_stage_and_both_shapes():
    W1, W2 = sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol("W2", K, C)
    with raises(r"'net'.*stage 3 \(affine\): W2 is K x C, but the layer's W is D x M and D "
                r"is already H here \(from the output of stage 2, N x H\)"):
        Network("net", input=X, stages=[use(affine, W=W1, b=0), use(relu),
                                         use(affine, W=W2, b=0)])


def test_a_hand_derivation_of_the_wrong_shape_is_reported():
    with raises(r"dL/dX is N x D but the hand derivation is D x M"):
        Layer("affine_hand", X * W, inputs=(X, W), upstream=G,
              hand=[Gradient(X.T * G, wrt=X, label="dL/dX")])


@pytest.mark.parametrize("build, match", [
    (lambda: Layer("scalar", sp.Symbol("x"), inputs=(X,)), "must be a sympy matrix expression"),
    (lambda: Layer("undeclared", X * W, inputs=(X,)), r"undeclared matrix\(es\) W"),
    (lambda: Layer("unused", X * W, inputs=(X, W, G)), r"input\(s\) G do not appear"),
    (lambda: Layer("upstream", X * W, inputs=(X, W), upstream=sp.MatrixSymbol("G", M, N)),
     "the upstream gradient G is M x N but the output is N x M"),
    (lambda: elementwise(relu, X, W), r"takes 1 matrix input\(s\) \(x\), got 2"),
    (lambda: use(affine, V=W), "'affine'.*has no input 'V' to bind"),
    (lambda: Network("no_target", input=X, stages=[use(affine, W=W, b=0)], loss=softmax_ce),
     "needs target= a MatrixSymbol of the output's shape N x M"),
    (lambda: Network("stray", input=X, stages=[use(affine, W=W, b=0)], regularizer=l2,
                     regularized=(G,)), "regularized weight G is not a weight"),
])
def test_malformed_layers_and_networks_are_reported(build, match):
    with raises(match):
        build()


# --- the command line ---------------------------------------------------------------------------


def test_derive_affine_prints_the_vjps(capsys):
    assert main(["derive", "affine"]) == 0
    shown = capsys.readouterr().out
    for line in ("dL/dX = G*W.T   (N x D)", "dL/dW = X.T*G   (D x M)",
                 "dL/db = colsum(G)   (1 x M: a column sum, over the batch)"):
        assert line in shown


def test_derive_an_activation_shows_it_as_a_layer_too(capsys):
    assert main(["derive", "tanh"]) == 0
    shown = capsys.readouterr().out
    assert "as a layer  Y = tanh(X)" in shown
    assert "dL/dX = G .* (ones(N, M) - Y.^2)   (reuses the forward output Y)" in shown


def test_derive_a_layer_as_latex(capsys):
    assert main(["derive", "affine", "--latex"]) == 0
    shown = capsys.readouterr().out
    assert r"\frac{\partial L}{\partial b} = \mathbf{1}^\top G" in shown


def test_check_layers_and_networks_as_json(capsys):
    assert main(["check", "affine", "two_layer_relu", "relu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["refuted"] == 0
    entries = {e["name"]: e for e in report["entries"]}
    assert [entries[n]["kind"] for n in ("affine", "two_layer_relu", "relu")] == \
        ["layer", "network", "activation"]
    layer_claims = [v["claim"] for v in entries["relu"]["verdicts"]
                    if v["claim"].startswith("as a layer:")]
    assert "as a layer: dL/dX = G .* relu'(X)" in layer_claims


#: the example of symnet.declare.layer's docstring, run as a user's file: the two cannot drift
USER_FILE = textwrap.dedent(
    layer_module.__doc__.split("Example (a user's own file; `symnet check mine.py` proves "
                                "the hand derivation)::")[1])


def test_a_users_layer_is_derived_and_checked(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(textwrap.dedent(USER_FILE))
    assert main(["check", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "dense_tanh (layer)" in shown and "proved   dL/dW = X^T (G .* (1 - Y^2))" in shown
    assert main(["derive", f"{path}:dense_tanh"]) == 0
    assert "dL/db = colsum(G .* tanh'(X*W + ones(N, 1)*b))" in capsys.readouterr().out


def test_a_users_layer_whose_shapes_do_not_fit_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text(USER_FILE.replace('sp.MatrixSymbol("b", 1, M)', 'sp.MatrixSymbol("b", 1, D)'))
    assert main(["check", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "declaration 'dense_tanh'" in error and "is N x M but ones(N, 1)*b is N x D" in error


def test_tanh_is_the_same_declaration_at_both_levels():
    from symnet.catalog import CATALOG, LAYER_REGISTRY

    assert CATALOG["tanh"] is tanh
    assert LAYER_REGISTRY["tanh"].activation is tanh


NETWORK_FILE = """
import sympy as sp
from symnet import Activation, Gradient
from symnet.catalog.activations import elu, leaky_relu
from symnet.catalog.layers import affine
from symnet.catalog.losses import hinge, l2
from symnet.declare.layer import size
from symnet.declare.network import Network, use
from symnet.symbols import out, x

swish = Activation("swish", x / (1 + sp.exp(-x)), inputs=x,
                   hand=[Gradient(out + (1 - out) / (1 + sp.exp(-x)), label="my swish'")])
N, D, H = size("N"), size("D"), size("H")
X = sp.MatrixSymbol("X", N, D)
W1, b1 = sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol("b1", 1, H)
W2, b2 = sp.MatrixSymbol("W2", H, 1), sp.MatrixSymbol("b2", 1, 1)
binary = Network("binary", input=X, stages=[use(affine, W=W1, b=b1), use(swish),
                 use(affine, W=W2, b=b2)], loss=hinge, regularizer=l2, regularized=(W1, W2))
stacked = Network("stacked", input=X, stages=[use(affine, W=W1, b=0), use(leaky_relu),
                  use(elu), use(affine, W=W2, b=0)])
"""


def test_a_users_network_with_one_output_a_hinge_and_its_own_activation(tmp_path, capsys):
    """A column-vector weight (H x 1), a scalar-score loss, an activation declared in the
    same file, two activations in a row: derived, and proved or probed, never refuted."""
    path = tmp_path / "nets.py"
    path.write_text(NETWORK_FILE)
    assert main(["derive", f"{path}:binary"]) == 0
    shown = capsys.readouterr().out
    assert "dL/dW2 = swish(X*W1 + ones(N, 1)*b1).T*G + 2*lambda*W2   (H x 1)" in shown
    assert "L = 1/N sum_n hinge(S[n, :], y[n]) + l2(W1) + l2(W2)" in shown
    assert main(["derive", f"{path}:stacked"]) == 0
    assert "elu(leaky_relu(X*W1)).T*G" in capsys.readouterr().out
    assert main(["check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["refuted"] == 0
    binary = next(e for e in report["entries"] if e["name"] == "binary")
    assert {v["status"] for v in binary["verdicts"]} == {"proved"}


@pytest.mark.parametrize("name", ["__init__", "class", "two words"])
def test_every_level_refuses_the_same_names(name):
    """A name becomes a generated module's file name at every level: a tensor layer named
    __init__ would replace a package's own __init__.py as an activation's would. One check,
    symnet.declare.validation.check_name, for activations, layers, networks, tensor layers."""
    from symnet.declare.tensor import IndexLayer, indices, tensors
    from symnet.declare.tensor import size as index_size

    n, d = indices("n d")
    T, U = tensors("T U")
    declarations = [
        lambda: tanh.__class__(name, tanh.forward, inputs=tanh.inputs),
        lambda: Layer(name, X * W, inputs=(X, W), upstream=G),
        lambda: Network(name, input=X, stages=[use(affine)]),
        lambda: IndexLayer(name, U[n, d], 2 * T[n, d], inputs=(T[n, d],),
                           ranges={n: index_size("N"), d: index_size("D")}),
    ]
    for declare in declarations:
        with raises("name"):
            declare()
