"""A whole MLP with a batch-norm stage as a network declaration (issue 15, section 6):
affine, batchnorm, relu, affine, with a loss. Each stage is derived and proved on its own
and the network's VJPs are the chain rule at the stage boundaries (symnet.index.chain); the
generated module (symnet.index.lower_chain) chains the stages' own code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from symnet.catalog.activations import relu
from symnet.catalog.layers import affine, batchnorm
from symnet.catalog.losses import hinge, softmax_ce, svm
from symnet.declare.layer import size
from symnet.declare.network import Network, use
from tests.helpers import emitted
from tests.layer_helpers import central_differences

N, D, H, C = size("N"), size("D"), size("H"), size("C")
X = sp.MatrixSymbol("X", N, D)
W1, b1 = sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol("b1", 1, H)
g1, be1 = sp.MatrixSymbol("g1", 1, H), sp.MatrixSymbol("be1", 1, H)
W2, b2 = sp.MatrixSymbol("W2", H, C), sp.MatrixSymbol("b2", 1, C)
T = sp.MatrixSymbol("T", N, C)
SHAPES = [(6, 4), (4, 5), (5,), (5,), (5,), (5, 3), (3,)]     # X, W1, b1, g1, be1, W2, b2


def _mlp(name="mlp", **options):
    return Network(name, input=X, stages=[use(affine, W=W1, b=b1),
                                          use(batchnorm, gamma=g1, beta=be1),
                                          use(relu), use(affine, W=W2, b=b2)], **options)


def _module(network, tmp_path):
    return emitted(network, tmp_path, "tests/test_network_mlp.py")


def _arrays(seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for shape in SHAPES]


def _numeric(f, arrays: list, h: float = 1e-6) -> list:
    """Central differences of the scalar f(*arrays) with respect to each array."""
    return central_differences(lambda: f(*arrays), arrays, h)


def _close(grad, numeric) -> bool:
    """rel. error <= 1e-7; db1 is 0 (batch norm takes out any shift), so relative to 1 there."""
    return np.abs(grad - numeric).max() <= 1e-7 * max(1.0, np.abs(numeric).max())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_mlp_with_a_batchnorm_stage_generates_a_backward_matching_central_differences(
        seed, tmp_path):
    module = _module(_mlp(), tmp_path)
    arrays = _arrays(seed)
    Y, cache = module.forward(*arrays)
    assert Y.shape == (6, 3)
    G = np.random.default_rng(10 + seed).normal(size=Y.shape)
    grads = module.backward(G, cache)
    numeric = _numeric(lambda *a: (module.forward(*a)[0] * G).sum(), arrays)
    assert len(grads) == len(arrays)
    for grad, expected, array in zip(grads, numeric, arrays, strict=True):
        assert grad.shape == array.shape and _close(grad, expected)


def test_the_mlp_module_keeps_float32_and_infers_with_running_statistics(tmp_path):
    module = _module(_mlp(), tmp_path)
    arrays = [a.astype(np.float32) for a in _arrays(3)]
    Y, cache = module.forward(*arrays)
    assert Y.dtype == np.float32
    assert all(g.dtype == np.float32 for g in module.backward(np.ones_like(Y), cache))
    assert module.RUNNING == ("B2_mu", "B2_var")
    running = [cache[module.CACHE.index(name)] for name in module.RUNNING]
    assert np.allclose(module.inference(*arrays, *running), Y, atol=1e-5)


def test_the_loss_of_an_mlp_is_returned_with_each_weights_gradient(tmp_path):
    module = _module(_mlp("mlp_ce", loss=softmax_ce, target=T), tmp_path)
    arrays = _arrays(4)
    labels = np.random.default_rng(5).integers(0, 3, size=6)
    target = np.eye(3)[labels]
    loss, *grads = module.loss(arrays[0], target, *arrays[1:])
    scores = module.forward(*arrays)[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    by_hand = -(shifted[np.arange(6), labels] - np.log(np.exp(shifted).sum(axis=1))).mean()
    assert np.isclose(loss, by_hand, rtol=1e-12)
    weights = arrays[1:]
    numeric = _numeric(lambda *w: module.loss(arrays[0], target, *w)[0], weights)
    assert len(grads) == len(weights)
    for grad, expected in zip(grads, numeric, strict=True):
        assert _close(grad, expected)


def test_a_loss_on_class_indices_takes_the_labels_as_they_are(tmp_path):
    """svm's target is a class index t (a Symbol, not a vector's IndexedBase): generation
    failed on it ('Symbol' object has no attribute 'label')."""
    module = _module(_mlp("mlp_svm", loss=svm), tmp_path)
    arrays = _arrays(6)
    labels = np.random.default_rng(7).integers(0, 3, size=6)
    loss, *grads = module.loss(arrays[0], labels, *arrays[1:])
    scores = module.forward(*arrays)[0]
    margins = scores - scores[np.arange(6), labels][:, None] + 1
    margins[np.arange(6), labels] = 0
    assert np.isclose(loss, np.maximum(0, margins).sum() / 6, rtol=1e-12)
    numeric = _numeric(lambda *w: module.loss(arrays[0], labels, *w)[0], arrays[1:])
    for grad, expected in zip(grads, numeric, strict=True):
        assert _close(grad, expected)


def test_the_mlps_vjps_are_each_stages_own_not_one_composed_expression():
    """The composed form's dX was 103 operations; chained, every VJP is one stage's."""
    from symnet.derive import derive

    derivation = derive(_mlp())
    assert [str(b) for b in derivation.vjps] == ["X", "W1", "b1", "g1", "be1", "W2", "b2"]
    assert [str(b) for b in derivation.links] == ["A1", "B2", "R3"]
    assert max(sp.count_ops(v) for v in [*derivation.vjps.values(),
                                         *derivation.links.values()]) <= 25
    assert "B2_x_hat" in str(derivation.links[sp.IndexedBase("A1", real=True)])


def test_check_json_says_each_stage_is_proved_and_the_network_by_the_chain_rule(capsys,
                                                                                tmp_path):
    from symnet.cli import main

    source = tmp_path / "nets.py"
    source.write_text(DECLARATION)
    assert main(["check", f"{source}:mlp_ce", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["entries"]
    verdicts = entry["verdicts"]
    assert all(v["status"] == "proved" for v in verdicts)
    stages = [v for v in verdicts if v["claim"].startswith("stage ")]
    chained = [v for v in verdicts if "by the chain rule" in v["claim"]]
    assert len(stages) == 10 and all(v["sizes"] == "symbolic" for v in stages)
    assert [v["claim"].split(" by ")[0] for v in chained] == [
        "dL/dX[n, d]", "dL/dW1[d, h]", "dL/db1[h]", "dL/dg1[h]", "dL/dbe1[h]", "dL/dW2[h, c]",
        "dL/db2[c]"]
    assert all(v["sizes"] == "symbolic" for v in chained)
    assert any(v["claim"].startswith("loss (softmax_ce)") for v in verdicts)


def test_a_planted_slip_in_one_stage_is_refuted_and_so_is_every_vjp_chained_through_it(
        monkeypatch):
    """dg1 off by a factor 2 in the batch-norm stage: its own verdict and dL/dg1 by the
    chain are refuted; dL/dW2, which does not pass through it, stays proved."""
    import symnet.index.check as index_check
    from symnet.verify import PROVED, REFUTED, check

    honest = index_check.derive_index_layer

    def planted(layer):
        derivation = honest(layer)
        if layer.name != "batchnorm2":
            return derivation
        g = sp.IndexedBase("g1", real=True)
        return type(derivation)(layer, {**derivation.vjps, g: 2 * derivation.vjps[g]},
                                derivation.raw, derivation.invariant)

    monkeypatch.setattr(index_check, "derive_index_layer", planted)
    verdicts = {v.claim.split(" = ")[0].split(" by ")[0]: v for v in check(_mlp("planted"))}
    assert verdicts["stage 2 (batchnorm2): dL/dg1[h]"].status == REFUTED
    assert verdicts["dL/dg1[h]"].status == REFUTED
    assert verdicts["dL/dW2[h, c]"].status == PROVED


DECLARATION = '''
import sympy as sp
from symnet.catalog.activations import relu
from symnet.catalog.layers import affine, batchnorm
from symnet.catalog.losses import softmax_ce
from symnet.declare.layer import size
from symnet.declare.network import Network, use

N, D, H, C = size("N"), size("D"), size("H"), size("C")
X, T = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("T", N, C)
W1, b1 = sp.MatrixSymbol("W1", D, H), sp.MatrixSymbol("b1", 1, H)
g1, be1 = sp.MatrixSymbol("g1", 1, H), sp.MatrixSymbol("be1", 1, H)
W2, b2 = sp.MatrixSymbol("W2", H, C), sp.MatrixSymbol("b2", 1, C)
mlp_ce = Network("mlp_ce", input=X, stages=[use(affine, W=W1, b=b1),
                                            use(batchnorm, gamma=g1, beta=be1),
                                            use(relu), use(affine, W=W2, b=b2)],
                 loss=softmax_ce, target=T)
'''


def test_generate_and_derive_an_mlp_from_the_command_line(tmp_path, capsys):
    from symnet.cli import main
    from tests.helpers import load

    source = tmp_path / "nets.py"
    source.write_text(DECLARATION)
    assert main(["derive", f"{source}:mlp_ce"]) == 0
    page = capsys.readouterr().out
    assert "stage 2" in page and "B2_x_hat" in page and "chain" in page
    assert main(["generate", f"{source}:mlp_ce", "-o", str(tmp_path / "out")]) == 0
    module = load(tmp_path / "out" / "layers" / "mlp_ce.py")
    assert callable(module.loss) and "given dY = dL/dY:" in module.backward.__doc__


def test_an_mlp_for_torch_is_refused_in_one_line(tmp_path, capsys):
    from symnet.cli import main

    pytest.importorskip("torch")
    source = tmp_path / "nets.py"
    source.write_text(DECLARATION)
    assert main(["generate", f"{source}:mlp_ce", "--target", "torch", "-o",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "numpy only" in err and "'mlp_ce'" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options, words", [
    ({"loss": hinge}, "needs a vector loss over rows of scores, N x C; the output Y[n, c]"),
    ({"loss": softmax_ce}, "needs target= a MatrixSymbol of the output's shape N x C"),
    ({"loss": softmax_ce, "target": sp.MatrixSymbol("T", N, H)},
     "needs target= a MatrixSymbol of the output's shape N x C"),
    ({"target": T}, "a target is given but no loss"),
    ({"loss": softmax_ce, "target": T, "reduction": "max"}, "reduction must be one of"),
])
def test_a_loss_that_does_not_fit_an_mlp_is_one_line_naming_it(options, words):
    from symnet.errors import SymnetError

    with pytest.raises(SymnetError) as caught:
        _mlp("net", **options)
    message = str(caught.value)
    assert words in message and "'net'" in message and "\n" not in message


# --- symnet train --network FILE.py:NAME ----------------------------------------------------


def test_train_takes_the_declared_mlp_and_trains_it_through_its_generated_module(tmp_path,
                                                                                 capsys):
    """The spiral, 200 epochs of full-batch SGD (lr 1.0): train accuracy 0.993 here in
    0.7 s; the checkpoint holds the running statistics beside the weights."""
    from symnet.cli import main
    from symnet.runtime.checkpoint import load_checkpoint

    source, saved = tmp_path / "nets.py", tmp_path / "run.npz"
    source.write_text(DECLARATION)
    assert main(["train", "--network", f"{source}:mlp_ce", "--epochs", "200", "--json",
                 "--save", str(saved)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == "the declared network's module" and result["sizes"] == [2, 100, 3]
    assert result["train_accuracy"] >= 0.98
    params = load_checkpoint(str(saved))[0]
    assert {"W1", "b1", "g1", "be1", "W2", "b2", "running_B2_mu", "running_B2_var"} == \
        set(params)
    assert not np.allclose(params["running_B2_var"], 1.0)     # moved by the training forwards


def test_a_declared_network_predicts_with_its_running_statistics(tmp_path):
    from symnet.runtime.declared import DeclaredNetwork

    module = _module(_mlp("mlp_ce", loss=softmax_ce, target=T), tmp_path)
    net = DeclaredNetwork(module, features=4, classes=3, hidden=[5], seed=0)
    assert net.params["W1"].shape == (4, 5) and np.all(net.params["g1"] == 1)
    assert np.all(net.params["be1"] == 0) and net.params["running_B2_var"].shape == (5,)
    x = np.random.default_rng(0).normal(size=(8, 4))
    net.params["running_B2_mu"][:] = 100.0      # far from the batch's own mean
    scores = module.inference(x, *(net.params[w] for w in net.weights),
                              net.params["running_B2_mu"], net.params["running_B2_var"])
    assert np.array_equal(net.predict(x), scores.argmax(axis=1))
    loss, penalty, grads = net.loss_and_gradients(x, np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]])
    assert np.isfinite(loss) and penalty == 0.0 and set(grads) == set(net.weights)
    assert np.all(net.params["running_B2_mu"] < 100.0)    # one training forward moved it


@pytest.mark.parametrize("arguments, words", [
    (["--network", "{source}:plain"], "has no loss: declare it with loss="),
    (["--network", "{source}:mlp_ce", "--hidden", "4,5"],
     "--hidden gives 2 size(s), but the network's sizes to choose are H (1)"),
    (["--network", "{source}:mlp_ce", "--norm", "batchnorm"], "give one of them"),
    (["--network", "mlp_ce"], "give FILE.py:NAME"),
    (["--network", "{source}:two_layer"], "is not a network with a tensor-layer stage"),
])
def test_train_refuses_a_network_it_cannot_train_in_one_line(arguments, words, tmp_path,
                                                             capsys):
    from symnet.cli import main

    source = tmp_path / "nets.py"
    source.write_text(DECLARATION + PLAIN)
    saved = tmp_path / "run.npz"
    arguments = [a.replace("{source}", str(source)) for a in arguments]
    assert main(["train", *arguments, "--epochs", "1", "--save", str(saved)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symnet: error:") and words in err and "\n" not in err
    assert not saved.exists()


PLAIN = '''
from symnet.declare.layer import size as _size
plain = Network("plain", input=X, stages=[use(affine, W=W1, b=b1),
                                          use(batchnorm, gamma=g1, beta=be1)])
Hd = _size("Hd")
V1, V2 = sp.MatrixSymbol("V1", D, Hd), sp.MatrixSymbol("V2", Hd, C)
two_layer = Network("two_layer", input=X, stages=[use(affine, W=V1, b=0), use(relu),
                                                  use(affine, W=V2, b=0)])
'''


def test_the_composed_form_of_the_stages_points_to_the_network_declaration():
    """index_network composes the stages into one tensor layer, whose statistics would be
    held over three indices: its lowering refuses in one line and names the way that
    generates (the stages as a Network, chained)."""
    from symnet.codegen.errors import CodegenError
    from symnet.index import indices, tensors
    from symnet.index import size as index_size
    from symnet.index.derive import IndexDerivation
    from symnet.index.lower import lower_index_layer
    from symnet.index.stages import index_network, stage

    sizes = [index_size(s) for s in "NDHC"]
    n, d, h, c = indices("n d h c")
    X_, W1_, g1_, be1_, W2_, A, B, R, S = tensors("X W1 g1 be1 W2 A B R S")
    composed = index_network("bn_net", X_[n, d], [
        stage(affine, W=W1_[d, h], b=0, out=A[n, h]),
        stage(batchnorm, gamma=g1_[h], beta=be1_[h], out=B[n, h]),
        stage(relu, out=R[n, h]), stage(affine, W=W2_[h, c], b=0, out=S[n, c])],
        ranges=dict(zip((n, d, h, c), sizes, strict=True)))
    with pytest.raises(CodegenError) as caught:
        lower_index_layer(IndexDerivation(composed, {}, {}))
    message = str(caught.value)
    assert "'bn_net'" in message and "as a Network" in message and "\n" not in message
