"""One derivation path for layers (issue 15): a matrix layer's forward translated to index
form (symnet.index.from_matrix), derived by the index path, brought back to matrix form
(symnet.index.to_matrix), cross-checked against sympy's matrix calculus, and its verdicts
proved for every size."""

import json

import pytest
import sympy as sp

from symnet.algebra import canonical_dummies
from symnet.catalog.layers import LAYERS
from symnet.cli import main
from symnet.declare.layer import Layer, broadcast, elementwise, size
from symnet.index.from_matrix import TranslationError, translate
from symnet.index.layer_path import index_path
from symnet.matrix.vjp import INDEX_PATH, derive_layer, matrix_vjp
from symnet.verify import PROVED, REFUTED, check

N, D, M, K = size("N"), size("D"), size("M"), size("K")
X, W, b = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M), sp.MatrixSymbol("b", 1, M)


def test_the_affine_forward_becomes_a_sum_over_the_inner_size_with_the_bias_broadcast():
    indexed = translate(LAYERS["affine"]).layer
    n, m = indexed.output.indices
    Xt, Wt, bt = (entry.base for entry in indexed.inputs)
    k = sp.Symbol("k", integer=True)
    expected = bt[m] + sp.Sum(Xt[n, k] * Wt[k, m], (k, 0, D - 1))
    assert str(indexed.output) == "Y[n, m]"
    assert [str(e) for e in indexed.inputs] == ["X[n, d]", "W[d, m]", "b[m]"]
    assert canonical_dummies(indexed.forward) == canonical_dummies(expected)
    assert indexed.ranges == {n: N, m: M, sp.Symbol("d", integer=True): D}


def test_a_matrix_without_an_index_form_is_one_line_naming_the_layer_and_the_matrix():
    s = sp.MatrixSymbol("s", 1, 1)
    gain = Layer("gain", sp.HadamardProduct(X, sp.OneMatrix(N, 1) * s * sp.OneMatrix(1, D)),
                 inputs=(X, s))
    with pytest.raises(TranslationError) as caught:
        translate(gain)
    message = str(caught.value)
    assert "'gain'" in message and "s has no index form" in message and "\n" not in message
    # the layer is still derived, by sympy's matrix calculus, and says why
    derivation = derive_layer(gain)
    assert derivation.paths[s].startswith("sympy's matrix calculus: s has no index form")


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_every_catalog_layer_is_derived_by_the_index_path_and_equals_matrix_calculus(name):
    layer = LAYERS[name]
    derivation = derive_layer(layer)
    for matrix in layer.inputs:
        assert derivation.paths[matrix].startswith(INDEX_PATH), derivation.paths[matrix]
        assert derivation.vjps[matrix] == matrix_vjp(layer.forward, matrix, layer.upstream)


def test_the_affine_vjps_come_back_as_a_person_writes_them():
    path = index_path(LAYERS["affine"])
    Xa, Wa, ba = LAYERS["affine"].inputs
    G = LAYERS["affine"].upstream
    assert path.vjps == {Xa: G * Wa.T, Wa: Xa.T * G, ba: sp.OneMatrix(1, N) * G}


def test_a_product_after_an_activation_comes_back_with_its_sums_exchanged():
    """dX of relu(X W) V is Sum_j G[n, j] Sum_m relu'(A[n, m]) V[m, j] W[d, m]: only with
    the sums exchanged is it (G V^T .* relu'(X W)) W^T."""
    from symnet.catalog.activations import relu

    V = sp.MatrixSymbol("V", M, K)
    layer = Layer("relu_then_linear", elementwise(relu, X * W) * V, inputs=(X, W, V))
    path = index_path(layer)
    assert path.why_not == {}
    derivation = derive_layer(layer)
    assert all(p.startswith(INDEX_PATH) for p in derivation.paths.values())


def test_layer_vjp_verdicts_hold_for_symbolic_sizes(capsys):
    assert main(["check", "affine", "relu", "maxout_layer", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    vjps = [v for e in entries.values() for v in e["verdicts"]
            if "against scalar calculus" in v["detail"]]
    assert len(vjps) == 3 + 1 + 5
    assert all(v["status"] == "proved" and v.get("sizes") == "symbolic" for v in vjps)
    # affine's hand derivations are the same products: proved for every size too
    assert all(v.get("sizes") == "symbolic" for v in entries["affine"]["verdicts"][1:])
    # maxout's hand derivations write the derivative out ([A >= B]): explicit sizes
    hand = [v for v in entries["maxout_layer"]["verdicts"] if v["claim"].startswith("L10")]
    assert hand and all(v["status"] == "proved" and "sizes" not in v for v in hand)


def test_a_planted_slip_in_the_way_back_is_refuted_and_not_proved_for_every_size(monkeypatch):
    """The index path's matrix form is what the page and the code get where sympy's
    matrix calculus differs from it: a wrong one (X^T G doubled) must be refuted."""
    import symnet.index.layer_path as layer_path

    G = sp.MatrixSymbol("G", N, M)
    layer = Layer("planted", X * W + broadcast(b, N), inputs=(X, W, b), upstream=G)
    real = layer_path.index_path.__wrapped__(layer)
    planted = layer_path.IndexPath(real.translated, {**real.vjps, W: 2 * X.T * G},
                                   real.entries, real.why_not)
    monkeypatch.setattr(layer_path, "index_path", lambda decl: planted)
    monkeypatch.setattr("symnet.matrix.vjp.index_path", lambda decl: planted)
    verdicts = {v.claim: v for v in check(layer)}
    slipped = [v for c, v in verdicts.items() if c.startswith("dL/dW")]
    assert [v.status for v in slipped] == [REFUTED]
    assert slipped[0].sizes is None
    assert verdicts["dL/dX = G*W.T"].status == PROVED


def test_a_network_without_a_loss_has_its_gradients_proved_for_every_size():
    from symnet.catalog.layers import NETWORKS

    verdicts = check(NETWORKS["two_layer_relu"])
    gradients = [v for v in verdicts if v.claim.startswith("dL/dW")]
    assert len(gradients) == 4
    assert all(v.status == PROVED and v.sizes == "symbolic" for v in gradients)
    # the lecture's hand derivations write relu' out as [X W1 > 0]: explicit sizes only
    assert all(v.sizes is None for v in verdicts if v.claim.startswith("L07"))


def test_a_network_with_a_one_by_one_bias_keeps_its_explicit_sizes():
    from symnet.catalog.layers import NETWORKS

    verdicts = check(NETWORKS["three_layer_sigmoid"])
    assert all(v.status == PROVED and v.sizes is None for v in verdicts)


def test_a_tensor_layer_of_a_catalog_activation_is_probed_through_its_declaration():
    """relu'(x) is a placeholder with no number of its own: the probes evaluate the formula
    relu's declaration derives (before, a TypeError traceback from the evaluator)."""
    from symnet.catalog.activations import relu
    from symnet.declare.elementwise import function_of
    from symnet.index import IndexLayer, indices, tensors
    from symnet.index import size as index_size

    n, d = indices("n d")
    Xt, Yt, g = tensors("X Y g")
    layer = IndexLayer("relu_scaled", Yt[n, d], function_of(relu)(Xt[n, d]) * g[d],
                       inputs=(Xt[n, d], g[d]), ranges={n: index_size("N"), d: index_size("D")})
    verdicts = check(layer)
    assert len(verdicts) == 2
    assert all(v.status == PROVED and v.sizes == "symbolic" for v in verdicts)


def _squares_then_product():
    """Y[n, c] = Sum_h R[n, h] W[h, c] with the statistic R[n, h] = X[n, h]^2: an entry
    of a statistic that holds the summation variable h."""
    from symnet.index import IndexLayer, indices, over, tensors
    from symnet.index import size as index_size

    n, h, c = indices("n h c")
    Xt, Yt, Wt, R = tensors("X Y W R")
    return IndexLayer("squares_then_product", Yt[n, c], over(R[n, h] * Wt[h, c], h,
                                                             index_size("H")),
                      inputs=(Xt[n, h], Wt[h, c]),
                      ranges={n: index_size("N"), h: index_size("H"), c: index_size("C")},
                      statistics={R[n, h]: Xt[n, h] ** 2})


def test_a_statistic_summed_over_its_own_index_is_differentiated_entry_by_entry():
    """Held as one symbol, R[n, h] inside the sum over h was taken as one number for every
    h: dX came out with W summed over its rows. Now each entry of R is its own."""
    from symnet.derive import derive

    layer = _squares_then_product()
    Xt, Wt = layer.bases
    dX = derive(layer).vjps[Xt]
    n, h = layer.input_of(Xt).indices
    G = layer.upstream
    j = sp.Symbol("j", integer=True)
    expected = 2 * Xt[n, h] * sp.Sum(G[n, j] * Wt[h, j], (j, 0, sp.Symbol("C", integer=True,
                                                                           positive=True) - 1))
    assert sp.expand(dX - expected) == 0
    assert all(v.status == PROVED and v.sizes == "symbolic" for v in check(layer))


# --- tensor layers as network stages (symnet.index.stages) ---------------------------------


def _network_entries():
    from symnet.index import indices, tensors
    from symnet.index import size as index_size

    sizes = tuple(index_size(s) for s in ("N", "D", "H", "C"))
    return sizes, indices("n d h c"), tensors("X W1 b1 g1 be1 W2 b2 A B R S")


def test_stages_compose_into_one_tensor_layer_with_each_output_a_named_statistic():
    from symnet.catalog.activations import relu
    from symnet.catalog.layers import affine, batchnorm
    from symnet.index.stages import index_network, stage

    (N_, D_, H_, C_), (n, d, h, c), (X_, W1, b1, g1, be1, W2, b2, A, B, R, S) = \
        _network_entries()
    net = index_network("bn_net", X_[n, d], [
        stage(affine, W=W1[d, h], b=b1[h], out=A[n, h]),
        stage(batchnorm, gamma=g1[h], beta=be1[h], out=B[n, h]),
        stage(relu, out=R[n, h]),
        stage(affine, W=W2[h, c], b=0, out=S[n, c])], ranges={n: N_, d: D_, h: H_, c: C_})
    assert net.output == S[n, c]
    assert [str(e) for e in net.inputs] == ["X[n, d]", "W1[d, h]", "b1[h]", "g1[h]", "be1[h]",
                                            "W2[h, c]"]
    assert [str(e) for e in net.statistics] == ["A[n, h]", "B_mu[h]", "B_var[h]",
                                                "B_sigma[h]", "B_x_hat[n, h]", "B[n, h]",
                                                "R[n, h]"]
    # the second affine's sum runs over H (its own D), its bias dropped
    (k, lower, upper), = net.forward.limits
    assert upper == H_ - 1 and not net.forward.has(b2)


@pytest.mark.parametrize("stages, problem", [
    (lambda e: [("affine", {"W": e["W1"], "out": e["A"]})],
     "must leave exactly one input unbound"),
    (lambda e: [("affine", {"W": e["W1"], "b": e["b1"], "bias": 0, "out": e["A"]})],
     "has no input bias to bind"),
    (lambda e: [("affine", {"W": e["W2"], "b": e["b1"], "out": e["A"]})],
     "the layer's index d is d in one entry and h in W2[h, c]"),
])
def test_a_stage_that_does_not_fit_is_one_line_naming_the_network(stages, problem):
    from symnet.catalog.layers import affine
    from symnet.declare.tensor import IndexDeclarationError
    from symnet.index.stages import index_network, stage

    (N_, D_, H_, C_), (n, d, h, c), (X_, W1, b1, g1, be1, W2, b2, A, B, R, S) = \
        _network_entries()
    entries = {"W1": W1[d, h], "b1": b1[h], "W2": W2[h, c], "A": A[n, h]}
    steps = [stage(affine, **bindings) for _, bindings in stages(entries)]
    with pytest.raises(IndexDeclarationError) as caught:
        index_network("net", X_[n, d], steps, ranges={n: N_, d: D_, h: H_, c: C_})
    assert problem in str(caught.value) and "'net'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_affine_relu_affine_network_of_stages_is_derived_and_proved_for_every_size():
    from symnet.catalog.activations import relu
    from symnet.catalog.layers import affine
    from symnet.derive import derive
    from symnet.index.stages import index_network, stage

    (N_, D_, H_, C_), (n, d, h, c), (X_, W1, b1, g1, be1, W2, b2, A, B, R, S) = \
        _network_entries()
    net = index_network("two_layer", X_[n, d], [
        stage(affine, W=W1[d, h], b=0, out=A[n, h]), stage(relu, out=R[n, h]),
        stage(affine, W=W2[h, c], b=0, out=S[n, c])], ranges={n: N_, d: D_, h: H_, c: C_})
    vjps = derive(net).vjps
    j = sp.Symbol("j", integer=True)
    G = net.upstream
    assert sp.expand(vjps[W2] - sp.Sum(G[j, c] * R[j, h], (j, 0, N_ - 1))) == 0
    assert all(v.status == PROVED and v.sizes == "symbolic" for v in check(net))


@pytest.mark.slow
def test_an_affine_then_batchnorm_network_of_stages_is_proved_for_every_size():
    """A statistic over the batch after a change of feature size (D -> H), composed into one
    tensor layer: every VJP proved for symbolic sizes, the bias's 0 (batch norm subtracts
    the mean a bias shifts). About 15 s; a relu and a second affine after it (the whole MLP,
    2-7 minutes here) add no new kind of step: test_network_mlp chains that network's stages."""
    from symnet.catalog.layers import affine, batchnorm
    from symnet.derive import derive
    from symnet.index.stages import index_network, stage

    (N_, D_, H_, C_), (n, d, h, c), (X_, W1, b1, g1, be1, W2, b2, A, B, R, S) = \
        _network_entries()
    net = index_network("bn_net", X_[n, d], [
        stage(affine, W=W1[d, h], b=b1[h], out=A[n, h]),
        stage(batchnorm, gamma=g1[h], beta=be1[h], out=B[n, h])], ranges={n: N_, d: D_, h: H_})
    assert derive(net).vjps[b1] == 0
    verdicts = check(net)
    assert [v.claim.split(" = ")[0] for v in verdicts] == \
        ["dL/dX[n, d]", "dL/dW1[d, h]", "dL/db1[h]", "dL/dg1[h]", "dL/dbe1[h]"]
    assert all(v.status == PROVED and v.sizes == "symbolic" for v in verdicts), \
        [str(v) for v in verdicts]
