"""Tensor layers in index notation (issue 15, symnet.index): declarations checked at once,
VJPs derived through the named statistics to the form a person writes, proved for every
size, and lowered to numpy reductions; batch norm end to end."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symnet.catalog.layers import TENSOR_LAYERS, batchnorm
from symnet.declare.tensor import IndexLayer, indices, max_over, over, size, tensors
from symnet.derive import derive
from symnet.errors import DeclarationError
from tests.layer_helpers import central_differences

N, D = size("N"), size("D")
n, d, k = indices("n d k")
X, Y, G, gamma, beta, mu, W = tensors("X Y G gamma beta mu W")


# --- 1. declarations -----------------------------------------------------------------------


def declare(forward, **options):
    options.setdefault("inputs", (X[n, d], gamma[d]))
    options.setdefault("ranges", {n: N, d: D})
    return IndexLayer("bad", options.pop("output", Y[n, d]), forward, **options)


@pytest.mark.parametrize("forward, options, words", [
    (over(X[n, d], n, N), {}, ["index n", "free on the left and summed on the right"]),
    (X[n, d] - mu[d], {"statistics": {mu[d]: over(X[n, d], d, D) / D}},
     ["statistic mu[d]", "index d", "free on the left and summed on the right"]),
    (X[n, d] * gamma[k], {}, ["index k", "free on the right but not on the left"]),
    (X[n, d] - mu[d], {"statistics": {mu[d]: over(X[k, d], k, D) / N}},
     ["X[k, d]", "index k", "size D", "axis of size N"]),
    (X[n, d] - mu[d], {"statistics": {mu[d]: over(X[n, d], n, D) / N}},
     ["index n", "runs over N values in one use and D in another"]),
    (X[n, d] + over(X[k, d], k, N) + over(gamma[k], k, D), {},
     ["index k runs over", "values in one use and", "in another"]),
    (X[n, d] * W[d], {}, ["W is used", "no declared rank"]),
    (X[n, d] * gamma[n, d], {}, ["gamma has rank 1", "gamma[n, d]"]),
    (X[n, d], {"ranges": {n: N}}, ["index d", "has no range"]),
])
def test_a_malformed_declaration_is_one_line_naming_the_problem(forward, options, words):
    with pytest.raises(DeclarationError) as caught:
        declare(forward, **options)
    message = str(caught.value)
    assert "\n" not in message and "'bad'" in message
    for word in words:
        assert word in message, message


def test_a_well_formed_declaration_of_any_rank_passes():
    W3 = sp.IndexedBase("W3", real=True)
    e, j = indices("e j")
    K, E = size("K"), size("E")
    X2 = sp.IndexedBase("X2", real=True)
    layer = IndexLayer("bilinear_like", Y[n, j],
                       over(over(X[n, d] * W3[j, d, e] * X2[n, e], d, D), e, E),
                       inputs=(X[n, d], W3[j, d, e], X2[n, e]),
                       ranges={n: N, d: D, e: E, j: K})
    assert layer.shape_of(W3[j, d, e]) == (K, D, E)


# --- 2. derivation -------------------------------------------------------------------------


def test_batchnorm_dx_is_the_compact_form_in_the_named_statistics():
    sigma, x_hat = sp.IndexedBase("sigma", real=True), sp.IndexedBase("x_hat", real=True)
    vjps = derive(batchnorm).vjps
    j = sp.Symbol("j", integer=True)
    column = sp.Sum(G[j, d], (j, 0, N - 1))
    weighted = sp.Sum(G[j, d] * x_hat[j, d], (j, 0, N - 1))
    compact = gamma[d] / sigma[d] * (G[n, d] - column / N - x_hat[n, d] * weighted / N)
    assert sp.expand(vjps[X] - compact) == 0
    assert sp.expand(vjps[gamma] - weighted) == 0
    assert vjps[beta] == column
    assert not any(v.has(sp.KroneckerDelta, sp.Piecewise) for v in vjps.values())


def _vjp_lines(capsys, *arguments) -> list[str]:
    from symnet.cli import main

    assert main(["derive", *arguments]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if "VJP" in line]


def test_derive_batchnorm_prints_the_compact_dx_with_column_sums(capsys):
    """The page says dX as the issue (and cs231n) writes it, not as nested Sum(...)."""
    dX, dgamma, dbeta = _vjp_lines(capsys, "batchnorm")
    assert "dX = gamma*(G*N - x_hat*colsum(G .* x_hat) - colsum(G))/(N*sigma)" in dX
    assert "colsum: the sum over n" in dX
    assert "dgamma = colsum(G .* x_hat)" in dgamma and "dbeta = colsum(G)" in dbeta
    assert not any("Sum(" in line for line in (dX, dgamma, dbeta))
    latex = " ".join(_vjp_lines(capsys, "batchnorm", "--latex"))
    assert r"\operatorname{colsum}{\left(G \odot x_{hat} \right)}" in latex
    assert r"\sum" not in latex


def test_the_page_says_rowsum_and_a_contraction_as_an_einsum_with_the_indices_named(capsys):
    (dX,) = _vjp_lines(capsys, "softmax_rows")
    assert "dX = Y .* (G - rowsum(G .* Y))" in dX and "rowsum: the sum over c" in dX
    dX1, dX2, dW, db = _vjp_lines(capsys, "bilinear")
    # the summed indices named as the declaration names their places: G[n, i], W[i, d, e]
    assert "dX1 = einsum('ni,ne,ide->nd', G, X2, W)" in dX1 and "einsum: the sum over" in dX1
    assert "dX2 = einsum('ni,nd,ide->ne', G, X1, W)" in dX2
    assert "dW = einsum('ni,nd,ne->ide', G, X1, X2)" in dW and "db = colsum(G)" in db
    assert not any("Sum(" in line for line in (dX1, dX2, dW))
    latex = " ".join(_vjp_lines(capsys, "bilinear", "--latex"))
    assert r"dX_{1} = \operatorname{einsum}_{ni,ne,ide \to nd}\left(G, X_{2}, W\right)" in latex
    assert r"\sum" not in latex


def _contraction_entries(layer, shown: sp.Expr, entry: sp.Indexed) -> sp.Expr:
    """The page's einsum or matrix product back in entries, at `entry`'s indices."""
    from symnet.index.page import Einsum

    bases = {str(b): b for b in layer.declared()}
    if shown.has(Einsum):
        (einsum,) = shown.atoms(Einsum)
        spec, *operands = einsum.args
        words, result = str(spec).split("->")
        at = {letter: i for letter, i in zip(result, entry.indices, strict=True)}
        limits = {}
        for word, operand in zip(words.split(","), operands, strict=True):
            declared = layer.declared()[bases[str(operand)]]
            for letter, place in zip(word, declared.indices, strict=True):
                if letter not in at:
                    at[letter] = sp.Symbol(f"{letter}_", integer=True)
                    limits[letter] = (at[letter], 0, layer.ranges[place] - 1)
        product = sp.Mul(*(bases[str(o)][[at[c] for c in w]]
                           for w, o in zip(words.split(","), operands, strict=True)))
        # nested, the first summed index outermost (G's, as the derivation nests them):
        # the prover does not interchange sums
        for limit in reversed(limits.values()):
            product = sp.Sum(product, limit)
        return shown.xreplace({einsum: product})
    from sympy.matrices.expressions.matexpr import MatrixElement as element
    return shown[entry.indices].replace(lambda e: isinstance(e, element),
                                        lambda e: bases[e.parent.name][e.i, e.j])


def _own_product_layer():
    """Y[n, m] = 3 sum_k X[n, k] W[m, k]: each VJP a matrix product, one transposed."""
    k, m = indices("k m")
    M, K = size("M"), size("K")
    Xk, Wk, Yk = tensors("X W Y")
    return IndexLayer("own_product", Yk[n, m], 3 * over(Xk[n, k] * Wk[m, k], k, K),
                      inputs=(Xk[n, k], Wk[m, k]), ranges={n: N, k: K, m: M})


def test_a_contraction_shown_on_the_page_equals_the_derived_vjp_for_every_size():
    from symnet.index.check import zero_for_every_size
    from symnet.index.page import as_contraction
    from symnet.notation import text

    layers = {"bilinear": TENSOR_LAYERS["bilinear"], "own_product": _own_product_layer()}
    shown = {}
    for name, layer in layers.items():
        for entry in layer.inputs:
            derived = derive(layer).vjps[entry.base]
            contraction = as_contraction(layer, derived, entry)
            if contraction is not None:
                shown[(name, str(entry.base))] = text(contraction)
                back = _contraction_entries(layer, contraction, entry)
                assert zero_for_every_size(layer, back, derived), (name, entry, contraction)
    assert shown == {("bilinear", "X1"): "einsum('ni,ne,ide->nd', G, X2, W)",
                     ("bilinear", "X2"): "einsum('ni,nd,ide->ne', G, X1, W)",
                     ("bilinear", "W"): "einsum('ni,nd,ne->ide', G, X1, X2)",
                     ("own_product", "X"): "3*G*W", ("own_product", "W"): "3*G.T*X"}


def _as_entries(layer, arrays: sp.Expr) -> sp.Expr:
    """The page's array form back in entries: each array at the output's indices, colsum and
    rowsum as sums over the first and the last of them, .* as a product."""
    from symnet.index.page import Hadamard, colsum, rowsum

    out = layer.output.indices
    j = sp.Symbol("j_", integer=True)
    entries = {sp.Symbol(str(b)): entry for b, entry in layer.declared().items()
               if b != layer.upstream}
    entries[sp.Symbol(str(layer.upstream))] = layer.upstream[out]

    def summed(e):
        axis = 0 if isinstance(e, colsum) else 1
        body = e.args[0].xreplace(entries).xreplace({out[axis]: j})
        return sp.Sum(body, (j, 0, layer.ranges[out[axis]] - 1))

    back = arrays.replace(lambda e: isinstance(e, Hadamard), lambda e: sp.Mul(*e.args))
    back = back.replace(lambda e: isinstance(e, (colsum, rowsum)), summed)
    return back.xreplace(entries)


def test_the_array_form_of_each_vjp_equals_the_derived_one():
    from symnet.index.check import zero_for_every_size
    from symnet.index.page import as_arrays

    shown = 0
    for name, layer in TENSOR_LAYERS.items():
        for entry in layer.inputs:
            derived = derive(layer).vjps[entry.base]
            arrays = as_arrays(layer, derived)
            if arrays is not None:
                shown += 1
                assert zero_for_every_size(layer, _as_entries(layer, arrays), derived), \
                    (name, entry, arrays)
    assert shown == 6      # all but bilinear's dX1, dX2, dW (dropout: dX alone)


def test_the_catalog_holds_batchnorm_as_a_tensor_layer():
    from symnet.catalog import CATALOG

    assert CATALOG["batchnorm"] is batchnorm is TENSOR_LAYERS["batchnorm"]
    assert batchnorm.kind == "tensor layer"


# --- 3. proof for every size ---------------------------------------------------------------


def _verdicts():
    from symnet.verify import check

    return check(batchnorm)


def test_every_batchnorm_verdict_is_proved_for_symbolic_sizes():
    verdicts = _verdicts()
    assert len(verdicts) == len(batchnorm.inputs) + len(batchnorm.hand)
    for verdict in verdicts:
        assert verdict.status == "proved", str(verdict)
        assert verdict.as_dict()["sizes"] == "symbolic"
    labels = " ".join(v.claim for v in verdicts)
    assert "staged" in labels and "compact" in labels


def _slips():
    """Planted slips in the two hand forms of dX: a dropped 1/N, a sign."""
    staged, compact = (r.expected for r in batchnorm.hand[:2])
    j = sp.Symbol("k", integer=True)
    column = sp.Sum(G[j, d], (j, 0, N - 1))
    return {
        "compact without 1/N": compact * N,
        "compact sign of colsum(G)": compact + 2 * gamma[d] * column / (N * sp.IndexedBase(
            "sigma", real=True)[d]),
        "staged without 1/N": staged.xreplace({N ** -1: sp.Integer(1)}),
        "staged sign": -staged,
    }


@pytest.mark.parametrize("slip", list(_slips()))
def test_a_planted_slip_in_a_hand_form_is_refuted_with_a_counterexample(slip):
    from symnet.index.check import check_index_claim, zero_for_every_size

    wrong = _slips()[slip]
    derived = derive(batchnorm).vjps[X]
    verdict = check_index_claim(batchnorm, slip, derived, wrong)
    assert verdict.status == "refuted", str(verdict)
    assert verdict.counterexample["point"]
    assert 2 <= int(verdict.counterexample["point"]["N"]) <= 5
    assert not zero_for_every_size(batchnorm, derived, wrong)


def test_probes_draw_sizes_up_to_5_and_a_refutation_names_its_sizes():
    from symnet.index.check import SizedProbeSpace, check_index_claim
    from symnet.verify.claims import probe

    derived = derive(batchnorm).vjps[X]
    space = SizedProbeSpace(defaults=dict(batchnorm.params))
    assert probe(derived, derived, space) is None
    drawn = {value for point in space.drawn for _, value in point}
    assert drawn == {2, 3, 4, 5}, drawn
    verdict = check_index_claim(batchnorm, "sign", derived, -derived)
    point = verdict.counterexample["point"]
    assert verdict.sizes == f"refuted at N={point['N']}", verdict.sizes   # D: not in dX


def test_a_proof_that_times_out_names_the_explicit_sizes_probed(monkeypatch):
    import re

    import symnet.index.check as index_check

    monkeypatch.setattr(index_check, "zero_for_every_size", lambda *args: False)
    derived = derive(batchnorm).vjps[X]
    verdict = index_check.check_index_claim(batchnorm, "timed out", derived, derived)
    assert verdict.status == "probed", str(verdict)
    assert verdict.sizes.startswith("probed at N="), verdict.sizes
    points = [dict(re.findall(r"(\w+)=(\d+)", p)) for p in verdict.sizes.split("; ")]
    assert len(points) > 1 and all(set(p) == {"N"} for p in points), verdict.sizes
    assert {int(v) for p in points for v in p.values()} <= {2, 3, 4, 5}
    assert verdict.as_dict()["sizes"] == verdict.sizes


def _not_again(layer):
    raise AssertionError("checked again: the cache did not keep the verdicts")


def test_check_json_gives_each_verdict_its_sizes(capsys, tmp_path, monkeypatch):
    import json

    from symnet.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SYMNET_NO_CACHE", raising=False)
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    for how in ("checked", "kept in the cache"):
        if how == "kept in the cache":   # the second run must not check again
            import symnet.index.check

            monkeypatch.setattr(symnet.index.check, "check_index_layer", _not_again)
        assert main(["check", "batchnorm", "--json"]) == 0
        entry = json.loads(capsys.readouterr().out)["entries"][0]
        assert entry["kind"] == "tensor layer"
        assert {v["sizes"] for v in entry["verdicts"]} == {"symbolic"}
        assert {v["status"] for v in entry["verdicts"]} == {"proved"}


# --- 4. generated code ---------------------------------------------------------------------


def _module():
    from tests.helpers import GENERATED, load

    return load(GENERATED / "layers" / "batchnorm.py")


def reference_batchnorm(X, gamma, beta, eps=1e-5):
    """A hand-written numpy batch norm (cs231n's compact backward), for comparison only."""
    mu = X.mean(axis=0)
    var = ((X - mu) ** 2).mean(axis=0)
    x_hat = (X - mu) / np.sqrt(var + eps)

    def backward(G):
        n = X.shape[0]
        dX = gamma / (n * np.sqrt(var + eps)) * (n * G - G.sum(axis=0)
                                                 - x_hat * (G * x_hat).sum(axis=0))
        return dX, (G * x_hat).sum(axis=0), G.sum(axis=0)

    return gamma * x_hat + beta, backward


def _arrays(seed, shape=(5, 3), dtype=np.float64):
    rng = np.random.default_rng(seed)
    N_, D_ = shape
    return (rng.normal(size=shape).astype(dtype), rng.normal(size=D_).astype(dtype),
            rng.normal(size=D_).astype(dtype), rng.normal(size=shape).astype(dtype))


def _loss(module, X, gamma, beta, G):
    return float((module.forward(X, gamma, beta)[0] * G).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_batchnorm_backward_matches_central_differences(seed):
    module = _module()
    X, gamma, beta, G = _arrays(seed)
    grads = module.backward(G, module.forward(X, gamma, beta)[1])
    h = 1e-6
    for k, array in enumerate((X, gamma, beta)):
        numeric = np.zeros_like(array)
        for at in np.ndindex(array.shape):
            args = [X.copy(), gamma.copy(), beta.copy()]
            args[k][at] += h
            up = _loss(module, *args, G)
            args[k][at] -= 2 * h
            numeric[at] = (up - _loss(module, *args, G)) / (2 * h)
        assert grads[k].shape == array.shape
        error = np.abs(grads[k] - numeric).max() / max(1e-12, np.abs(numeric).max())
        assert error <= 1e-7, (k, error)


@pytest.mark.parametrize("shape", [(2, 1), (7, 4), (64, 10)])
def test_generated_batchnorm_matches_a_hand_written_reference(shape):
    module = _module()
    X, gamma, beta, G = _arrays(3, shape)
    Y, cache = module.forward(X, gamma, beta)
    expected, backward = reference_batchnorm(X, gamma, beta)
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(module.backward(G, cache), backward(G), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_generated_batchnorm_keeps_float32_and_stays_finite():
    module = _module()
    X, gamma, beta, G = _arrays(4, (16, 5), np.float32)
    X[:, 0] = 3.0                                   # a constant column: var = 0
    X[:, 1] = 1e3 + X[:, 1]                         # a large offset
    X[:, 2] *= 1e3                                  # a large scale
    Y, cache = module.forward(X, gamma, beta)
    grads = module.backward(G, cache)
    assert Y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert np.isfinite(Y).all() and all(np.isfinite(g).all() for g in grads)
    expected, backward = reference_batchnorm(X.astype(np.float64), gamma.astype(np.float64),
                                             beta.astype(np.float64))
    np.testing.assert_allclose(Y[:, 1:], expected[:, 1:], rtol=1e-3, atol=1e-3)


def test_generated_batchnorm_caches_statistics_and_computes_no_batch_square():
    import ast
    import re

    from tests.helpers import GENERATED

    source = (GENERATED / "layers" / "batchnorm.py").read_text()
    tree = ast.parse(source)
    backward = next(f for f in tree.body if isinstance(f, ast.FunctionDef)
                    and f.name == "backward")
    text = ast.unparse(backward)
    for statistic in ("mean(", "np.sqrt", "var"):       # nothing of forward recomputed
        assert statistic not in text, statistic
    # only column reductions, none building an N x D x N array: two-operand einsums to one
    # axis, and products with the row of ones
    assert set(re.findall(r"np\.einsum\('([^']*)'", text)) == {"nd,nd->d"}
    assert re.findall(r"(\w+) @", text) == ["ones"]
    # E[(x - mu)^2], never E[x^2] - E[x]^2; eps inside the square root
    assert "X_minus_mu = X - mu" in source
    assert "var = np.einsum('nd,nd->d', X_minus_mu, X_minus_mu)/N" in source
    assert "np.sqrt(var + eps)" in source


def test_generated_batchnorm_holds_column_statistics_as_gamma_is():
    """mu, var, sigma as (D,) vectors, not (1, D) rows: numpy right-aligns both alike, but
    each operation between a (1, D) and a (D,) array (gamma/sigma) costs about 0.5 us more
    than between two (D,) ones, and a (1, D) VJP needs a reshape to gamma's shape; at 64 x
    100 these made batch norm's generated layer 1.05-1.1x the hand-written one."""
    import ast

    from tests.helpers import GENERATED, load

    module = load(GENERATED / "layers" / "batchnorm.py")
    rng = np.random.default_rng(0)
    X_, gamma_, beta_ = (rng.standard_normal(shape) for shape in ((5, 3), 3, 3))
    _, cache = module.forward(X_, gamma_, beta_)
    for name in ("ones", "mu", "var", "sigma"):
        assert cache[module.CACHE.index(name)].ndim == 1, name
    dX, dgamma, dbeta = module.backward(rng.standard_normal((5, 3)), cache)
    assert dX.shape == (5, 3) and dgamma.shape == dbeta.shape == (3,)
    source = (GENERATED / "layers" / "batchnorm.py").read_text()
    backward = next(f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)
                    and f.name == "backward")
    assert ".reshape(" not in ast.unparse(backward) and "None" not in ast.unparse(backward)


@pytest.mark.parametrize("layer, line", [("softmax_rows", "Y *= np.reciprocal(Z)"),
                                         ("batchnorm", "x_hat *= np.reciprocal(sigma)")])
def test_a_reciprocal_of_an_array_is_np_reciprocal(layer, line):
    """`1/Z` converts the Python int 1 before it divides: 1.1 us at 64 x 1 against 0.7 us
    for np.reciprocal(Z), about 2% of softmax_rows at 64 x 100 float32 (and `Y /= Z`, the
    other way to save the call, divides every entry: 3.5% slower at 256 x 1024 float64)."""
    source = _generated_path(layer).read_text()
    assert line in source and "*= 1/" not in source


def test_the_readme_quotes_the_generated_batchnorm_backward():
    from tests.helpers import GENERATED, ROOT

    readme = (ROOT / "README.md").read_text()
    quoted = readme.split("Batch norm's backward comes out as cs231n's careful one:")[1]
    lines = quoted.split("```python\n")[1].split("```")[0].splitlines()
    source = (GENERATED / "layers" / "batchnorm.py").read_text()
    assert len(lines) == 4 and "\n".join(lines) in source


#: (layer, the full-size arrays forward keeps, those backward returns): what each
#: allocates at the least; bilinear's contractions are np.einsum's own
FULL_ARRAYS = {"batchnorm": (2, 1), "softmax_rows": (1, 1), "dropout": (1, 1)}


def _peak(call) -> int:
    import tracemalloc

    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", list(FULL_ARRAYS))
def test_a_generated_tensor_layer_allocates_its_results_and_no_full_size_temporary(name):
    """Each full-size statement is one allocation, the rest in place: the forward's peak
    memory is what it keeps (x_hat and Y for batch norm), the backward's its gradients
    (was: a temporary per operation, 2-3x that)."""
    layer, module = TENSOR_LAYERS[name], _generated(name)
    shape = (256, 512)
    sizes = dict(zip(("N", "D", "C"), (*shape, shape[1]), strict=True))
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=tuple(sizes[str(s)] for s in layer.shape_of(e)))
              for e in layer.arguments]
    full = np.empty(shape).nbytes
    kept, returned = FULL_ARRAYS[name]
    slack = full // 10 + 2 ** 16
    assert _peak(lambda: module.forward(*arrays)) <= kept * full + slack
    Y, cache = module.forward(*arrays)
    dY = rng.normal(size=Y.shape)
    assert _peak(lambda: module.backward(dY, cache)) <= returned * full + slack


def test_generate_writes_the_batchnorm_module(tmp_path, capsys):
    from symnet.cli import main
    from tests.helpers import GENERATED

    assert main(["generate", "batchnorm", "-o", str(tmp_path)]) == 0
    written = (tmp_path / "layers" / "batchnorm.py").read_text()
    assert written == (GENERATED / "layers" / "batchnorm.py").read_text()
    assert "def forward(X, gamma, beta, eps=1e-05):" in written
    assert "return dX, dgamma, dbeta" in written


# --- 5. every tensor layer of the catalog --------------------------------------------------

SIZES = {"N": 5, "D": 3, "C": 4, "K": 2, "E": 3}


def _generated(name):
    from tests.helpers import GENERATED, load

    return load(GENERATED / "layers" / f"{name}.py")


def _inputs(layer, seed, dtype=np.float64):
    """forward's arrays: the inputs, then the constants (dropout's mask)."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(SIZES[str(s)] for s in layer.shape_of(e)) for e in layer.arguments]
    return [rng.normal(size=shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", list(TENSOR_LAYERS))
def test_every_generated_tensor_layer_matches_central_differences(name, seed):
    layer, module = TENSOR_LAYERS[name], _generated(name)
    arrays = _inputs(layer, seed)
    Y, cache = module.forward(*arrays)
    G = np.random.default_rng(seed + 10).normal(size=Y.shape)
    grads = module.backward(G, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(layer.inputs)     # none for a constant (dropout's mask)
    differentiated = arrays[:len(layer.inputs)]
    numerics = central_differences(lambda: (module.forward(*arrays)[0] * G).sum(),
                                   differentiated, h=1e-6)
    for k, (array, numeric) in enumerate(zip(differentiated, numerics, strict=True)):
        assert grads[k].shape == array.shape
        error = np.abs(grads[k] - numeric).max() / max(1e-12, np.abs(numeric).max())
        assert error <= 1e-7, (name, k, error)


@pytest.mark.parametrize("name", list(TENSOR_LAYERS))
def test_every_tensor_layer_is_proved_for_symbolic_sizes_and_keeps_float32(name):
    from symnet.verify import check

    layer = TENSOR_LAYERS[name]
    for verdict in check(layer):
        assert verdict.status == "proved" and verdict.sizes == "symbolic", str(verdict)
    module = _generated(name)
    arrays = _inputs(layer, 0, np.float32)
    Y, cache = module.forward(*arrays)
    grads = module.backward(np.ones_like(Y), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert Y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)


def test_softmax_rows_vjp_reads_the_output():
    j = sp.Symbol("j", integer=True)
    c, C = sp.Symbol("c", integer=True), size("C")
    vjp = derive(TENSOR_LAYERS["softmax_rows"]).vjps[X]
    expected = Y[n, c] * (G[n, c] - sp.Sum(G[n, j] * Y[n, j], (j, 0, C - 1)))
    assert sp.expand(vjp - expected) == 0
    source = (_generated_path("softmax_rows")).read_text()
    assert "exp" not in source.split("def backward")[1]      # the backward reuses Y


def test_softmax_rows_reference():
    module = _generated("softmax_rows")
    X_ = np.random.default_rng(5).normal(size=(6, 4)) * 10
    e = np.exp(X_ - X_.max(axis=1, keepdims=True))
    np.testing.assert_allclose(module.forward(X_)[0], e / e.sum(axis=1, keepdims=True),
                               rtol=1e-12)


def _generated_path(name):
    from tests.helpers import GENERATED

    return GENERATED / "layers" / f"{name}.py"


def _gradient_error(module, layer, seed=0) -> float:
    """The largest entry-wise error of the module's backward against central differences
    (tests.helpers), relative to max(1, |numerical|)."""
    from tests.helpers import numerical_gradients, run

    arrays = _inputs(layer, seed)
    G = np.random.default_rng(seed + 10).normal(size=module.forward(*arrays)[0].shape)
    inputs = len(layer.inputs)
    wrt, fixed = dict(enumerate(arrays[:inputs])), {"dout": G, "constants": arrays[inputs:]}
    _, grads = run(layer, module, wrt, fixed)
    numerical = numerical_gradients(layer, module, wrt, fixed, h=1e-6)
    return max(float(np.max(np.abs(g - n) / np.maximum(1.0, np.abs(n))))
               for g, n in zip(grads, numerical, strict=True))


def _planted(name: str, mutation: str) -> str | None:
    """The generated module of `name` with `mutation` planted in the first place of its
    backward that takes it, or None where there is no such place."""
    import ast

    from tests.helpers import MUTATIONS, FirstOnly

    tree = ast.parse(_generated_path(name).read_text())
    backward = next(f for f in tree.body if isinstance(f, ast.FunctionDef)
                    and f.name == "backward")

    def change(node):   # not the cache's unpacking (a tuple target)
        if isinstance(node, ast.Assign) and not isinstance(node.targets[0], ast.Name):
            return None
        return MUTATIONS[mutation](node)

    changer = FirstOnly(change)
    backward.body = [changer.visit(statement) for statement in backward.body]
    return ast.unparse(ast.fix_missing_locations(tree)) if changer.done else None


#: (layer, mutation) for every mutation that has a place in the layer's backward (bilinear's
#: backward has no sum or difference, so no term to drop)
PLANTABLE = [(name, mutation) for name in TENSOR_LAYERS
             for mutation in ("flipped sign", "dropped term") if _planted(name, mutation)]


def test_every_tensor_layer_takes_a_planted_mutation():
    assert {name for name, _ in PLANTABLE} == set(TENSOR_LAYERS)


@pytest.mark.parametrize(("name", "mutation"), PLANTABLE)
def test_a_mutation_planted_in_a_generated_backward_is_caught(name, mutation):
    from tests.helpers import load

    mutated = load(_generated_path(name), _planted(name, mutation))
    assert _gradient_error(_generated(name), TENSOR_LAYERS[name]) <= 1e-7
    assert _gradient_error(mutated, TENSOR_LAYERS[name]) > 1e-3


def test_a_users_layer_with_a_statistic_over_the_features_derives_proves_and_generates(
        tmp_path, monkeypatch, capsys):
    from symnet.cli import main
    from symnet.loader import resolve
    from tests.helpers import ROOT, load

    monkeypatch.setenv("HOME", str(tmp_path))
    reference = f"{ROOT / 'examples' / 'my_tensor_layer.py'}:layernorm"
    layer = resolve(reference)
    assert main(["check", reference]) == 0
    assert "3 proved" in capsys.readouterr().out
    assert main(["generate", reference, "-o", str(tmp_path / "out")]) == 0
    module = load(tmp_path / "out" / "layers" / "layernorm.py")
    assert _gradient_error(module, layer) <= 1e-7
    X_, gamma_, beta_ = _inputs(layer, 1)
    mean = X_.mean(axis=1, keepdims=True)
    expected = gamma_ * (X_ - mean) / np.sqrt(X_.var(axis=1, keepdims=True) + 1e-5) + beta_
    np.testing.assert_allclose(module.forward(X_, gamma_, beta_)[0], expected, rtol=1e-12)


def test_an_input_whose_axes_run_against_the_layout_is_transposed_not_reshaped(tmp_path):
    from symnet.codegen.emit import Source, module_file
    from tests.helpers import load

    A = sp.IndexedBase("A", real=True)
    layer = IndexLayer("crossed", Y[n, d], X[n, d] * A[d, n] + over(A[d, k] * X[k, d], k, N),
                       inputs=(X[n, d], A[d, n]), ranges={n: N, d: D})
    path = tmp_path / "crossed.py"
    path.write_text(module_file(Source("crossed", layer))[1])
    module = load(path)
    assert _gradient_error(module, layer) <= 1e-7


def test_the_affine_layer_in_index_notation_lowers_to_blas_products_like_the_matrix_one(
        tmp_path):
    from symnet.codegen.emit import Source, module_file
    from tests.helpers import GENERATED, load

    M, m = size("M"), indices("m")[0]
    Wd, b = sp.IndexedBase("W", real=True), sp.IndexedBase("b", real=True)
    layer = IndexLayer("dense", Y[n, m], over(X[n, d] * Wd[d, m], d, D) + b[m],
                       inputs=(X[n, d], Wd[d, m], b[m]), ranges={n: N, d: D, m: M})
    path = tmp_path / "dense.py"
    path.write_text(module_file(Source("dense", layer))[1])
    source = path.read_text()
    for line in ("Y = X @ W + b", "dX = dY @ W.T", "dW = X.T @ dY"):
        assert line in source
    assert "einsum" not in source
    dense, affine = load(path), load(GENERATED / "layers" / "affine.py")
    rng = np.random.default_rng(0)
    X_, W_, b_, G_ = (rng.normal(size=s) for s in ((4, 3), (3, 2), (2,), (4, 2)))
    Y_, cache = dense.forward(X_, W_, b_)
    Y2, cache2 = affine.forward(X_, W_, b_[None, :])
    np.testing.assert_allclose(Y_, Y2, rtol=1e-14)
    for mine, theirs in zip(dense.backward(G_, cache), affine.backward(G_, cache2),
                            strict=True):
        np.testing.assert_allclose(mine, theirs.reshape(mine.shape), rtol=1e-14)


def test_full_statements_of_every_form_compute_what_they_say(tmp_path):
    """passes.py's forms at once: a negated centred array times an input and a row, exp of a
    full value, entries added and subtracted, a row times a column (full only together)."""
    from symnet.codegen.emit import Source, module_file
    from tests.helpers import load

    A, mu_n = sp.IndexedBase("A", real=True), sp.IndexedBase("mu", real=True)
    layer = IndexLayer("mixed", Y[n, d], -(X[n, d] - mu_n[n]) * A[n, d] * gamma[d]
                       + sp.exp(X[n, d] - mu_n[n]) - A[n, d] + X[n, d],
                       inputs=(X[n, d], A[n, d], gamma[d]), ranges={n: N, d: D},
                       statistics={mu_n[n]: over(X[n, d], d, D) / D})
    path = tmp_path / "mixed.py"
    path.write_text(module_file(Source("mixed", layer))[1])
    module = load(path)
    rng = np.random.default_rng(0)
    X_, A_, gamma_ = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), rng.normal(size=3)
    centred = X_ - X_.mean(axis=1, keepdims=True)
    expected = -centred * A_ * gamma_ + np.exp(centred) - A_ + X_
    np.testing.assert_allclose(module.forward(X_, A_, gamma_)[0], expected, rtol=1e-13)
    assert _gradient_error(module, layer) <= 1e-7


# --- constants: inputs that are data, not differentiated ----------------------------------


def test_dropouts_mask_is_a_constant_backward_returns_dx_alone(capsys):
    """A mask is data: forward takes it after X, backward returns dX only (was dX and dM,
    three full-size results where the hand version makes two), the page says it."""
    from symnet.cli import main

    layer, module = TENSOR_LAYERS["dropout"], _generated("dropout")
    assert [str(e.base) for e in layer.inputs] == ["X"]
    assert [str(e.base) for e in layer.constants] == ["M"]
    assert set(derive(layer).vjps) == {layer.inputs[0].base}
    X_, M_ = _inputs(layer, 0)
    Y_, cache = module.forward(X_, M_)
    dX = module.backward(np.ones_like(Y_), cache)
    assert isinstance(dX, np.ndarray) and np.array_equal(dX, M_ / 0.5)
    assert main(["derive", "dropout"]) == 0
    assert "constant  M[n, d]" in capsys.readouterr().out


def test_a_hand_derivation_with_respect_to_a_constant_is_refused():
    from symnet.declare.scalar import Gradient

    M = sp.IndexedBase("M", real=True)
    with pytest.raises(DeclarationError, match="wrt must be one of the inputs X"):
        IndexLayer("masked", Y[n, d], X[n, d] * M[n, d], inputs=(X[n, d],),
                   constants=(M[n, d],), ranges={n: N, d: D},
                   hand=[Gradient(G[n, d] * X[n, d], wrt=M)])


def test_dropouts_torch_and_jax_modules_give_the_mask_no_gradient():
    """torch's Function returns None for the constant M, jax's custom_vjp a zero
    cotangent; dX equals the numpy module's."""
    torch, jax = pytest.importorskip("torch"), pytest.importorskip("jax")
    from tests.helpers import GENERATED, load

    X_, M_ = _inputs(TENSOR_LAYERS["dropout"], 1)
    expected = _generated("dropout").backward(np.ones_like(X_), (M_, 0.5))
    torch_module = load(GENERATED / "torch_modules" / "layers" / "dropout.py")
    Xt, Mt = (torch.tensor(a, requires_grad=True) for a in (X_, M_))
    torch_module.dropout(Xt, Mt).sum().backward()
    assert Mt.grad is None and np.allclose(Xt.grad.numpy(), expected)
    jax_module = load(GENERATED / "jax_modules" / "layers" / "dropout.py")
    dX, dM = jax.grad(lambda x, m: jax_module.dropout(x, m).sum(), argnums=(0, 1))(X_, M_)
    assert not np.asarray(dM).any() and np.allclose(np.asarray(dX), expected)


# --- contractions of three arrays: a chain of pairs, each computed once ---------------------


def _einsum_calls(module, monkeypatch) -> list:
    """Each np.einsum and np.tensordot call of the module as (what, its operands)."""
    calls, einsum, tensordot = [], np.einsum, np.tensordot

    def recording(spec, *operands, **options):
        calls.append((spec, operands))
        return einsum(spec, *operands, **options)

    def recording_tensordot(a, b, axes):
        calls.append(("tensordot", (a, b)))
        return tensordot(a, b, axes=axes)

    monkeypatch.setattr(module.np, "einsum", recording)
    monkeypatch.setattr(module.np, "tensordot", recording_tensordot)
    return calls


def test_bilinear_chains_its_contractions_in_pairs_and_shares_them(monkeypatch):
    """No np.einsum of three arrays (each searched its order at every call: about 50 us);
    the forward's X1 W is cached and read by dX2, dY (x) X2 is made once for dX1 and dW
    (was: X1 W and dY (x) X2 each computed twice)."""
    layer, module = TENSOR_LAYERS["bilinear"], _generated("bilinear")
    X1_, X2_, W_, b_ = _inputs(layer, 0)
    calls = _einsum_calls(module, monkeypatch)
    Y_, cache = module.forward(X1_, X2_, W_, b_)
    forward, calls[:] = list(calls), []
    dY_ = np.ones_like(Y_)
    module.backward(dY_, cache)
    assert all(len(operands) == 2 for _, operands in forward + calls)

    def both(a, b, among):
        return sum(any(o is a for o in ops) and any(o is b for o in ops) for _, ops in among)

    assert both(dY_, X2_, calls) == 1 and not any("tensordot" in what for what, _ in calls)
    # the pairs that sum an index are BLAS products, each made once: X1 W in forward (read
    # by dX2 from the cache), then dY_X2 with W and with X1 (and the column sums of dY)
    products = _matrix_products(_generated_path("bilinear"))
    assert products["forward"] == [{"X1", "W"}]
    assert sorted(map(sorted, products["backward"])) == [["W", "dY_X2"], ["X1", "dY_X2"],
                                                         ["dY", "ones"]]


def _generated_path(name: str):
    from tests.helpers import GENERATED

    return GENERATED / "layers" / f"{name}.py"


def _matrix_products(path, sizes=("N", "D", "K", "E")) -> dict:
    """Each function's `A @ B` as the arrays its two sides read (not the sizes)."""
    import ast

    found = {}
    for function in ast.parse(path.read_text()).body:
        if isinstance(function, ast.FunctionDef):
            found[function.name] = [
                {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id not in sizes}
                for node in ast.walk(function)
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)]
    return found


def test_bilinear_writes_its_blas_products_out_without_np_tensordot():
    """np.tensordot spends about 10 us of Python around the same product (the arrays
    reshaped to matrices, then @): at 64 x 100 that made bilinear 1.05-1.10x the hand
    version. Its products are written out as a person writes them, sizes read once."""
    source = _generated_path("bilinear").read_text()
    assert "tensordot" not in source
    assert "W_X1 = (X1 @ W.transpose(1, 0, 2).reshape(D, K*E)).reshape(N, K, E)" in source
    assert "dX1 = dY_X2.reshape(N, K*E) @ W.transpose(0, 2, 1).reshape(K*E, D)" in source
    # the product's rows the small axes (K*E), its columns the data's (D): 81 against 101
    # ms the other way round, (D, K*E), at 1024 x 4096 float64
    assert "dW = (dY_X2.reshape(N, K*E).T @ X1).reshape(K, E, D).transpose(0, 2, 1)" in source


@pytest.mark.parametrize("spec, blas", [("nd,ide->nie", True), ("jd,jie->ide", True),
                                        ("nj,nm->njm", False), ("nd,nd->d", False),
                                        ("ne,nie->ni", False), ("nd,de->n", False)])
def test_a_pair_is_a_blas_tensordot_only_where_it_sums_and_batches_nothing(spec, blas):
    from symnet.index.products import is_blas

    assert is_blas(spec) is blas


@pytest.mark.parametrize("name", ["batchnorm", "bilinear"])
def test_a_backward_builds_no_row_of_ones_when_the_forward_has_one(name, monkeypatch):
    """At 64 x 100 a call costs its count of numpy calls: batch norm's backward reads the
    forward's row of ones from the cache (was: np.ones at every backward); bilinear's
    forward has none, so its backward builds its own."""
    layer, module = TENSOR_LAYERS[name], _generated(name)
    Y_, cache = module.forward(*_inputs(layer, 0))
    built, ones = [], np.ones
    monkeypatch.setattr(module.np, "ones", lambda *a, **k: built.append(a) or ones(*a, **k))
    module.backward(np.ones_like(Y_), cache)
    assert len(built) == (0 if name == "batchnorm" else 1)


# --- 6. a max over an index, the output proved invariant to it -----------------------------

m_max, Z_sum = tensors("m Z")


def column_softmax(**options):
    """The softmax over each column (over the batch), shifted by the column max."""
    options.setdefault("statistics", {m_max[d]: max_over(X[k, d], k, N),
                                      Z_sum[d]: over(sp.exp(X[k, d] - m_max[d]), k, N)})
    options.setdefault("invariant", (m_max,))
    return IndexLayer("colsoftmax", Y[n, d], sp.exp(X[n, d] - m_max[d]) / Z_sum[d],
                      inputs=(X[n, d],), ranges={n: N, d: D}, **options)


@pytest.mark.parametrize("name", list(TENSOR_LAYERS))
@pytest.mark.parametrize("dtype, size", [(np.float64, 1000.0), (np.float32, 100.0)])
def test_every_generated_tensor_layer_is_finite_at_the_extremes(name, dtype, size):
    """Entries at +-size, 0 and small values (as test_targets' extremes), dtype kept; the
    softmax's max shift keeps exp's argument <= 0 (was its row mean: exp(1000 + ...))."""
    layer, module = TENSOR_LAYERS[name], _generated(name)
    pattern = np.array([-size, size, -1.0, 0.5, size / 2, -size / 3])
    arrays = [np.resize(pattern, a.shape).astype(dtype) for a in _inputs(layer, 0)]
    Y, cache = module.forward(*arrays)
    grads = module.backward(np.ones_like(Y), cache)
    for array in (Y, *(grads if isinstance(grads, tuple) else (grads,))):
        assert array.dtype == dtype and np.isfinite(array).all(), name


def test_softmax_rows_at_scale_1e3_and_for_a_constant_row():
    module = _generated("softmax_rows")
    X_ = np.random.default_rng(7).normal(size=(6, 5)) * 1e3
    X_[0] = 2e3                                      # a constant row: every entry ties
    e = np.exp(X_ - X_.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True)
    Y_, cache = module.forward(X_)
    np.testing.assert_allclose(Y_, expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(Y_[0], 1 / 5, rtol=1e-15)
    G_ = np.random.default_rng(8).normal(size=Y_.shape)
    dX = module.backward(G_, cache)
    np.testing.assert_allclose(dX, expected * (G_ - (G_ * expected).sum(axis=1, keepdims=True)),
                               rtol=1e-10, atol=1e-300)


def test_a_max_statistic_is_lowered_to_each_targets_max():
    from tests.helpers import GENERATED

    spelled = {"layers": "shift = X.max(axis=1, keepdims=True)",
               "torch_modules/layers": "shift = X.amax(dim=1, keepdim=True)",
               "jax_modules/layers": "shift = X.max(axis=1, keepdims=True)"}
    for folder, line in spelled.items():
        source = (GENERATED / folder / "softmax_rows.py").read_text()
        assert line in source, folder
        assert "shift" not in source.split("def backward")[1], folder   # held constant


def test_the_page_shows_the_max_and_says_the_output_does_not_depend_on_it(capsys):
    from symnet.cli import main

    assert main(["derive", "softmax_rows"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "statistic  shift" in x]
    assert "shift[n] = Max(X[n, k], (k, 0, C - 1))" in line
    assert "Y does not depend on it (dY/dshift = 0, proved for every size)" in line


def test_softmax_rows_proves_its_invariance_for_symbolic_sizes():
    from symnet.verify import check

    verdicts = check(TENSOR_LAYERS["softmax_rows"])
    claims = [v for v in verdicts if "does not depend on shift[n]" in v.claim]
    assert len(claims) == 1 and claims[0].status == "proved" and claims[0].sizes == "symbolic"
    assert all(v.status == "proved" and v.sizes == "symbolic" for v in verdicts)


def test_a_layer_of_ones_own_with_a_max_over_the_batch_derives_and_generates(tmp_path):
    from symnet.codegen.emit import Source, module_file
    from symnet.index.check import zero_for_every_size
    from symnet.index.derive import derive_index_layer
    from tests.helpers import load

    layer = column_softmax()
    derivation = derive_index_layer(layer)
    assert derivation.invariant == (m_max[d],)
    vjp = derivation.vjps[X]
    assert vjp.has(Y) and not vjp.has(sp.exp) and not vjp.has(m_max)   # reads the output
    assert zero_for_every_size(layer, vjp, Y[n, d] * (G[n, d] - over(G[k, d] * Y[k, d], k, N)))
    path = tmp_path / "colsoftmax.py"
    path.write_text(module_file(Source("colsoftmax", layer))[1])
    assert "m = X.max(axis=0, keepdims=True)" in path.read_text()
    module = load(path)
    X_ = np.random.default_rng(3).normal(size=(5, 3)) * 1e3
    e = np.exp(X_ - X_.max(axis=0, keepdims=True))
    np.testing.assert_allclose(module.forward(X_)[0], e / e.sum(axis=0), rtol=1e-12,
                               atol=1e-300)
    assert _gradient_error(module, layer) <= 1e-7


def test_a_wrong_invariance_claim_is_refused_naming_the_statistic():
    """A shift applied to the numerator only: Y depends on it, and the claim is refused."""
    from symnet.errors import DerivationError

    wrong = IndexLayer(
        "numerator", Y[n, d], sp.exp(X[n, d] - m_max[d]) / over(sp.exp(X[k, d]), k, N),
        inputs=(X[n, d],), ranges={n: N, d: D},
        statistics={m_max[d]: max_over(X[k, d], k, N)}, invariant=(m_max,))
    with pytest.raises(DerivationError) as raised:
        derive(wrong)
    message = str(raised.value)
    assert "\n" not in message and "'numerator'" in message
    assert "invariant to the statistic m[d]" in message and "does not simplify to 0" in message


def test_a_planted_invariance_proof_that_passes_anything_is_refuted_by_the_check(monkeypatch):
    """With the derivation's proof planted to pass a wrong claim, the check's own verdict on
    the invariance (probed at random points, shift a free tensor) refutes it."""
    from symnet.index import derive as index_derive
    from symnet.verify import check

    monkeypatch.setattr(index_derive, "is_zero_for_every_size", lambda expr: True)
    wrong = IndexLayer(
        "numerator", Y[n, d], sp.exp(X[n, d] - m_max[d]) / over(sp.exp(X[k, d]), k, N),
        inputs=(X[n, d],), ranges={n: N, d: D},
        statistics={m_max[d]: max_over(X[k, d], k, N)}, invariant=(m_max,))
    verdicts = {v.claim: v for v in check(wrong)}
    (claim,) = [c for c in verdicts if "does not depend on m[d]" in c]
    assert verdicts[claim].status == "refuted" and verdicts[claim].counterexample


@pytest.mark.parametrize("options, words", [
    ({"invariant": ()}, ["statistic m[d] takes a max", "invariant=(m,)"]),
    ({"invariant": (W,)}, ["invariant=W", "only a statistic"]),
])
def test_a_max_needs_an_invariance_claim_and_only_a_statistic_has_one(options, words):
    with pytest.raises(DeclarationError) as raised:
        column_softmax(**options)
    for word in words:
        assert word in str(raised.value)


def test_a_max_in_the_forward_itself_is_refused():
    with pytest.raises(DeclarationError, match="no derivative where entries tie"):
        IndexLayer("peak", Y[n, d], X[n, d] - max_over(X[k, d], k, N), inputs=(X[n, d],),
                   ranges={n: N, d: D})


def test_a_network_with_softmax_rows_as_a_stage_keeps_its_invariance():
    """index_network carries a stage's invariant statistics over (renamed P_shift): the
    composed layer is declared, its invariance proved, every verdict proved symbolic (was:
    refused, a max statistic without invariant=)."""
    from symnet.catalog.layers import affine, softmax_rows
    from symnet.index.stages import index_network, stage
    from symnet.verify import check

    H, h = size("H"), indices("h")[0]
    W1, b1, A, P = tensors("W1 b1 A P")
    net = index_network("attention_weights", X[n, d],
                        [stage(affine, W=W1[d, h], b=b1[h], out=A[n, h]),
                         stage(softmax_rows, out=P[n, h])], ranges={n: N, d: D, h: H})
    assert [str(b) for b in net.invariant] == ["P_shift"]
    verdicts = check(net)
    assert any("does not depend on P_shift[n]" in v.claim for v in verdicts)
    assert all(v.status == "proved" and v.sizes == "symbolic" for v in verdicts), verdicts
