"""Tensor layers as the stages of a network (issue 15, section 6): a network of a batch-norm
stage and an activation, composed by symnet.index.stages, generated through the index
lowering (the activation spelled from its declaration) and checked against central
differences; `Network(..., stages=[use(batchnorm, ...), ...])` derived and checked; an
activation stage in its stable forms, finite at +-1000 (float64) and +-100 (float32)."""

from __future__ import annotations

import numpy as np
import pytest

from symnet.catalog import activations
from symnet.catalog.activations import relu, sigmoid
from symnet.catalog.layers import batchnorm
from symnet.index import indices, size, tensors
from symnet.index.stages import index_network, stage
from tests.helpers import emitted
from tests.layer_helpers import central_differences


def _batchnorm_then(activation):
    """X -> batchnorm(gamma, beta) -> activation, as one tensor layer."""
    N, D = size("N"), size("D")
    n, d = indices("n d")
    X, g, be, B, R = tensors("X g be B R")
    return index_network(f"bn_{activation.name}", X[n, d], [
        stage(batchnorm, gamma=g[d], beta=be[d], out=B[n, d]),
        stage(activation, out=R[n, d])], ranges={n: N, d: D})


def _generated(layer, tmp_path):
    return emitted(layer, tmp_path, "tests/test_network_stages.py")


def _central_differences(module, arrays, G, h=1e-6):
    return central_differences(lambda: (module.forward(*arrays)[0] * G).sum(), arrays, h)


@pytest.mark.parametrize("activation", [relu, sigmoid], ids=lambda a: a.name)
def test_a_network_with_a_batchnorm_stage_generates_a_backward_matching_central_differences(
        activation, tmp_path):
    module = _generated(_batchnorm_then(activation), tmp_path)
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        arrays = [rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=3)]
        Y, cache = module.forward(*arrays)
        assert Y.shape == (6, 3)
        G = rng.normal(size=Y.shape)
        grads = module.backward(G, cache)
        for grad, numeric, array in zip(grads, _central_differences(module, arrays, G),
                                        arrays, strict=True):
            assert grad.shape == array.shape
            error = np.abs(grad - numeric).max() / max(1e-12, np.abs(numeric).max())
            assert error <= 1e-7, (activation.name, seed, error)


def test_the_activation_of_a_stage_is_spelled_from_its_declaration_not_by_hand(tmp_path):
    """relu's forward is the declaration's max(0, x), its derivative the step symnet derived
    (a mask of B > 0): no placeholder reaches the printer, no derivative is written here."""
    import inspect

    module = _generated(_batchnorm_then(relu), tmp_path)
    forward, backward = inspect.getsource(module.forward), inspect.getsource(module.backward)
    assert "np.maximum(0, B)" in forward
    assert "(B > 0)" in backward and "relu" not in backward.split('"""')[-1]


# --- Network(..., stages=[use(batchnorm, ...), ...]) ----------------------------------------


def _matrices():
    import sympy as sp

    from symnet.declare.layer import size as matrix_size

    N, D, H = matrix_size("N"), matrix_size("D"), matrix_size("H")
    return {"X": sp.MatrixSymbol("X", N, D), "g": sp.MatrixSymbol("g", 1, D),
            "be": sp.MatrixSymbol("be", 1, D), "gH": sp.MatrixSymbol("gH", 1, H),
            "W": sp.MatrixSymbol("W", D, H), "b": sp.MatrixSymbol("b", 1, H),
            "B": sp.MatrixSymbol("B", N, H), "X43": sp.MatrixSymbol("X", 4, 3),
            "g3": sp.MatrixSymbol("g", 1, 3), "b3": sp.MatrixSymbol("b", 1, 3)}


def _network(name="bn_net", **options):
    from symnet.catalog.layers import affine
    from symnet.declare.network import Network, use

    m = _matrices()
    return Network(name, input=m["X"], stages=[use(batchnorm, gamma=m["g"], beta=m["be"]),
                                               use(relu), use(affine, W=m["W"], b=m["b"])],
                   **options)


def test_a_network_declaration_takes_a_tensor_layer_as_a_stage():
    net = _network()
    layer = net.tensor
    assert str(layer.output) == "Y[n, h]"
    assert [str(e) for e in layer.inputs] == ["X[n, d]", "g[d]", "be[d]", "W[d, h]", "b[h]"]
    assert [str(e) for e in layer.statistics][-2:] == ["B1[n, d]", "R2[n, d]"]
    assert [str(w) for w in net.weights] == ["g", "be", "W", "b"]


def test_a_network_with_a_batchnorm_stage_is_derived_through_its_stages_in_index_form():
    import sympy as sp

    from symnet.derive import derive

    net = _network()
    vjps = derive(net).vjps
    bases = {str(base): base for base in vjps}
    n, d, h = sp.symbols("n d h", integer=True)
    G, R = net.tensor.upstream, sp.IndexedBase("R2", real=True)
    j = sp.Symbol("j", integer=True)
    N = net.input.shape[0]
    assert sp.expand(vjps[bases["W"]] - sp.Sum(G[j, h] * R[j, d], (j, 0, N - 1))) == 0
    assert sp.expand(vjps[bases["b"]] - sp.Sum(G[j, h], (j, 0, N - 1))) == 0
    # the batch norm's own compact form, its upstream the relu's (G W^T) .* relu'
    assert "B1_x_hat" in str(vjps[bases["X"]])


def test_every_verdict_of_a_network_with_a_batchnorm_stage_is_proved_for_symbolic_sizes():
    from symnet.declare.network import Network, use
    from symnet.verify import PROVED, check

    m = _matrices()
    net = Network("bn_relu", input=m["X"], stages=[use(batchnorm, gamma=m["g"], beta=m["be"]),
                                                   use(relu)])
    verdicts = check(net)
    # each stage's verdicts, then the network's VJPs by the chain rule (symnet.index.chain)
    assert [v.claim.split(" by ")[0] for v in verdicts[-3:]] == ["dL/dX[n, d]", "dL/dg[d]",
                                                                 "dL/dbe[d]"]
    assert all(v.status == PROVED and v.sizes == "symbolic" for v in verdicts)


@pytest.mark.parametrize("stages, options, words", [
    (lambda m, u: [u(batchnorm, gamma=m["gH"], beta=m["be"])], {},
     "the layer's index d is d in one entry and h in gH[h]"),
    (lambda m, u: [u(batchnorm, gamma=m["g"], beta=m["be"])], {"loss": "softmax_ce"},
     "needs target= a MatrixSymbol of the output's shape N x D"),
    (lambda m, u: [u(batchnorm, gamma=m["g3"], beta=m["b3"])], {"input": "X43"},
     "needs symbolic sizes, but X is 4 x 3"),
    (lambda m, u: [u(batchnorm, gamma=m["g"], beta=m["be"], out=m["B"]), u(relu)], {},
     "its output is N x D, but out=B is N x H"),
    (lambda m, u: [u(batchnorm, gamma=m["g"])], {},
     "must leave exactly one input unbound"),
])
def test_a_tensor_stage_that_does_not_fit_is_one_line_naming_the_network(stages, options,
                                                                         words):
    from symnet.catalog import losses
    from symnet.declare.network import Network, use
    from symnet.errors import SymnetError

    m = _matrices()
    options = dict(options)
    if "loss" in options:
        options["loss"] = getattr(losses, options["loss"])
    network_input = m[options.pop("input", "X")]
    with pytest.raises(SymnetError) as caught:
        Network("net", input=network_input, stages=stages(m, use), **options)
    message = str(caught.value)
    assert words in message and "'net'" in message and "\n" not in message


DECLARATION = '''
import sympy as sp
from symnet.catalog.activations import relu
from symnet.catalog.layers import batchnorm
from symnet.declare.layer import size
from symnet.declare.network import Network, use

N, D = size("N"), size("D")
X = sp.MatrixSymbol("X", N, D)
g, be = sp.MatrixSymbol("g", 1, D), sp.MatrixSymbol("be", 1, D)
bn_relu = Network("bn_relu", input=X, stages=[use(batchnorm, gamma=g, beta=be), use(relu)])
bad = Network("bad", input=X, stages=[use(batchnorm, gamma=g, beta=be)], hand=[1])
'''


def test_generate_writes_the_module_of_a_network_with_a_batchnorm_stage(tmp_path, capsys):
    from symnet.cli import main
    from tests.helpers import load

    source = tmp_path / "nets.py"
    source.write_text(DECLARATION.replace("bad = ", "# bad = "))
    assert main(["generate", f"{source}:bn_relu", "-o", str(tmp_path / "out")]) == 0
    module = load(tmp_path / "out" / "layers" / "bn_relu.py")
    rng = np.random.default_rng(4)
    arrays = [rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3)]
    Y, cache = module.forward(*arrays)
    G = rng.normal(size=Y.shape)
    for grad, numeric in zip(module.backward(G, cache), _central_differences(module, arrays, G),
                             strict=True):
        assert np.abs(grad - numeric).max() <= 1e-7 * max(1.0, np.abs(numeric).max())


def test_a_tensor_stage_network_refused_at_declaration_exits_2_with_one_line(tmp_path, capsys):
    from symnet.cli import main

    source = tmp_path / "nets.py"
    source.write_text(DECLARATION)
    assert main(["derive", f"{source}:bn_relu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("symnet: error:") and "takes no hand derivations yet" in err
    assert "\n" not in err


def test_a_network_with_a_batchnorm_stage_gets_inference_with_running_statistics(tmp_path):
    """The stage's mean and variance, renamed after its output (B_mu; their sums over n_1),
    are the running statistics, as in the catalog's batchnorm module: inference() with the
    batch's own statistics gives forward's output."""
    module = _generated(_batchnorm_then(relu), tmp_path)
    assert module.RUNNING == ("B_mu", "B_var")
    rng = np.random.default_rng(5)
    X, g, be = rng.normal(size=(7, 3)), rng.normal(size=3), rng.normal(size=3)
    Y, cache = module.forward(X, g, be)
    running = [cache[module.CACHE.index(name)] for name in module.RUNNING]
    assert np.allclose(module.inference(X, g, be, *running), Y)


def test_the_stages_outputs_are_named_apart_from_the_matrices_and_print_in_latex():
    """A stage's output is named by its layer's initial and number (B1: batchnorm1 would be
    printed by sympy as a norm, ||batch||_1), apart from the network's own matrices."""
    import sympy as sp

    from symnet.declare.network import Network, use

    m = _matrices()
    B1 = sp.MatrixSymbol("B1", *m["be"].shape)
    net = Network("named", input=m["X"], stages=[use(batchnorm, gamma=m["g"], beta=B1),
                                                 use(relu)])
    assert [str(e) for e in net.tensor.statistics][-1] == "B1_[n, d]"
    latex = net._repr_latex_()
    assert r"\|" not in latex and r"\operatorname{relu}" in latex


def test_derive_report_of_a_network_with_a_batchnorm_stage_shows_its_module(tmp_path):
    from symnet.cli import main

    source, report = tmp_path / "nets.py", tmp_path / "report.md"
    source.write_text(DECLARATION.replace("bad = ", "# bad = "))
    assert main(["derive", f"{source}:bn_relu", "--report", str(report)]) == 0
    text = report.read_text()
    assert "## Generated code" in text and "def backward(dY, cache):" in text


# --- the table of stable primitives in the index lowering (issue 15, section 4: "Stable") ---
# An activation stage is spelled from its declaration in the stable forms the matrix lowering
# computes (symnet.primitives.TABLE's rows: the logistic function, softplus, tanh, ELU's
# branch clamped to its side): a batchnorm -> activation module is finite at activation
# inputs of +-1000 in float64 and +-100 in float32, and still matches central differences.

#: the activations a stage may take whose naive formula has an exp (or tanh) of its input
EXPONENTIAL = ("sigmoid", "softplus", "tanh", "silu", "elu")
#: the scale of the activation's input each dtype must survive: exp(1000) is inf in
#: float64, exp(100) in float32
EXTREMES = {np.float64: 1000.0, np.float32: 100.0}


@pytest.fixture(scope="module", params=EXPONENTIAL)
def stable_module(request, tmp_path_factory):
    activation = getattr(activations, request.param)
    return _generated(_batchnorm_then(activation), tmp_path_factory.mktemp(request.param))


def _inputs(dtype, seed=0):
    """X, gamma, beta with the first column's activation input B spanning about +-scale
    (gamma = scale on a normalised column), the others of order 1."""
    rng = np.random.default_rng(seed)
    scale = EXTREMES[dtype]
    X = rng.normal(size=(6, 3))
    X[:, 0] = [-2, -1, -0.5, 0.5, 1, 2]
    gamma, beta = np.array([scale, 1.0, 0.5]), np.array([0.0, 0.3, -0.2])
    return [a.astype(dtype) for a in (X, gamma, beta)]


def _run(module, arrays, G):
    # every operation, as symnet.codegen.finite checks an activation's module: an inf on
    # the discarded side of an np.where is an overflow too
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        Y, cache = module.forward(*arrays)
        return Y, module.backward(G, cache)


@pytest.mark.parametrize("dtype", list(EXTREMES), ids=lambda t: t.__name__)
def test_a_batchnorm_then_activation_module_is_finite_at_the_extremes(stable_module, dtype):
    arrays = _inputs(dtype)
    assert np.abs(arrays[0][:, 0] - arrays[0][:, 0].mean()).max() > 0
    G = np.random.default_rng(1).normal(size=arrays[0].shape).astype(dtype)
    Y, grads = _run(stable_module, arrays, G)
    for value in (Y, *grads):
        assert value.dtype == dtype
        assert np.isfinite(value).all(), value


def test_at_the_extremes_the_backward_matches_central_differences(stable_module):
    for seed in (0, 1, 2):
        arrays = _inputs(np.float64, seed)
        G = np.random.default_rng(seed + 10).normal(size=arrays[0].shape)
        _, grads = _run(stable_module, arrays, G)
        numerics = _central_differences(stable_module, arrays, G)
        for grad, numeric in zip(grads, numerics, strict=True):
            error = np.abs(grad - numeric).max() / max(1e-12, np.abs(numeric).max())
            assert error <= 1e-6, (seed, error)


def test_float32_at_its_extremes_agrees_with_float64(stable_module):
    arrays = _inputs(np.float32)
    G = np.random.default_rng(2).normal(size=arrays[0].shape).astype(np.float32)
    Y32, grads32 = _run(stable_module, arrays, G)
    wide = [a.astype(np.float64) for a in arrays]
    Y64, grads64 = _run(stable_module, wide, G.astype(np.float64))
    for low, high in zip((Y32, *grads32), (Y64, *grads64), strict=True):
        assert np.abs(low - high).max() <= 1e-3 * max(1.0, np.abs(high).max())


def _own_naive_layer():
    """A layer of one's own that writes the naive formulas itself, beside a statistic:
    Y = g / (1 + exp(-(X - mu))) + log(1 + exp(X)), mu the column mean."""
    import sympy as sp

    from symnet.declare.tensor import IndexLayer, over

    N, D = size("N"), size("D")
    n, d = indices("n d")
    Y, X, g, mu = tensors("Y X g mu")
    return IndexLayer("own_naive", Y[n, d],
                      g[d] / (1 + sp.exp(-(X[n, d] - mu[d]))) + sp.log(1 + sp.exp(X[n, d])),
                      inputs=(X[n, d], g[d]), statistics={mu[d]: over(X[n, d], n, N) / N},
                      ranges={n: N, d: D})


@pytest.mark.parametrize("dtype", list(EXTREMES), ids=lambda t: t.__name__)
def test_a_layers_own_naive_formulas_are_lowered_through_the_tables_rows(dtype, tmp_path):
    module = _generated(_own_naive_layer(), tmp_path)
    scale = EXTREMES[dtype]
    X = np.array([[-scale, scale], [scale, -scale], [0.5, 0.2], [-0.3, 0.1]])
    arrays = [X.astype(dtype), np.array([1.0, -2.0], dtype=dtype)]
    G = np.random.default_rng(3).normal(size=X.shape).astype(dtype)
    Y, grads = _run(module, arrays, G)
    assert all(v.dtype == dtype and np.isfinite(v).all() for v in (Y, *grads))
    if dtype is np.float64:
        numerics = _central_differences(module, arrays, G)
        for grad, numeric in zip(grads, numerics, strict=True):
            error = np.abs(grad - numeric).max() / max(1e-12, np.abs(numeric).max())
            assert error <= 1e-6, error
