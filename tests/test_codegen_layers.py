"""The generated layer modules (generated/layers/), parametrised over the layers the
catalog generates: central-difference gradient checks (float64, 3 seeds, N = 1 among
the shapes), agreement with the derived matrix expressions evaluated by sympy on explicit
matrices, float32 kept, mutations planted in the backward caught, the kink convention at
a tie, L26 through the generated affine layer, L25 as the backward's peak memory, and a
network composed of generated modules only."""

from __future__ import annotations

import ast
import importlib.util

import numpy as np
import pytest

from symnet.catalog import LAYER_REGISTRY, REGISTRY
from symnet.cli import main
from symnet.cli.generate import catalog_sources
from symnet.codegen import CodegenError, lower
from symnet.derive import derive
from symnet.loader import load_file
from symnet.matrix.vjp import derive_layer
from tests.helpers import (
    GENERATED,
    MUTATIONS,
    ROOT,
    FirstOnly,
    flip_sign,
    load,
    relative_error,
    symnet,
)
from tests.layer_helpers import (
    SIZES,
    SQUARE,
    central_differences,
    draw,
    generated,
    gradient_error,
    module_path,
    run,
    shape_of,
    sizes_of,
    sympy_value,
)

LAYER_NAMES = [s.declaration.name for s in catalog_sources() if s.declaration.kind == "layer"]
SEEDS = (0, 1, 2)
def cases():
    for name in LAYER_NAMES:
        for batch, others in SIZES:
            for seed in SEEDS:
                yield pytest.param(name, batch, others, seed,
                                   id=f"{name}-N{batch}-{'x'.join(map(str, others))}-{seed}")


@pytest.mark.parametrize("name, batch, others, seed", list(cases()))
def test_L05_generated_layer_gradients_match_central_differences(name, batch, others, seed):
    layer = LAYER_REGISTRY[name]
    arrays = draw(layer, np.random.default_rng(seed), sizes_of(layer, batch, others))
    assert gradient_error(layer, generated(name), arrays) <= 1e-7


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_generated_layer_agrees_with_the_derived_matrix_expressions(name):
    layer, derivation = LAYER_REGISTRY[name], derive_layer(LAYER_REGISTRY[name])
    module = generated(name)
    for (batch, others), seed in zip(SIZES, SEEDS, strict=True):
        sizes = sizes_of(layer, batch, others)
        arrays = draw(layer, np.random.default_rng(seed), sizes)
        Y, cache_ = module.forward(*[arrays[m] for m in layer.inputs])
        np.testing.assert_allclose(Y, sympy_value(layer, layer.forward, sizes, arrays),
                                   rtol=1e-12, atol=1e-13)
        grads = module.backward(arrays[layer.upstream], cache_)
        for matrix, grad in zip(layer.inputs, grads, strict=True):
            expected = sympy_value(layer, derivation.vjps[matrix], sizes, arrays)
            assert grad.shape == shape_of(matrix, sizes)
            np.testing.assert_allclose(grad, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_float32_in_gives_float32_out(name):
    layer = LAYER_REGISTRY[name]
    sizes = sizes_of(layer, *SIZES[1])
    arrays = draw(layer, np.random.default_rng(0), sizes, dtype=np.float32)
    module = generated(name)
    _, grads = run(layer, module, arrays)
    Y, _ = module.forward(*[arrays[m] for m in layer.inputs])
    assert Y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    wide = {m: a.astype(np.float64) for m, a in arrays.items()}
    for narrow, exact in zip(grads, run(layer, module, wide)[1], strict=True):
        np.testing.assert_allclose(narrow, exact, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_generated_layer_code_is_straight_line_numpy(name):
    """No loop (over the batch or anything), no np.heaviside (its 1/2 at a kink), no
    Jacobian-sized helper (np.eye, np.kron, np.einsum), numpy the only import (affine's
    code needs none: products, transposes and the arrays' own column sums)."""
    tree = ast.parse(module_path(name).read_text())
    nodes = list(ast.walk(tree))
    assert not [n for n in nodes if isinstance(n, (ast.For, ast.While, ast.comprehension))]
    called = {n.attr for n in nodes if isinstance(n, ast.Attribute)}
    assert not called & {"heaviside", "eye", "kron", "einsum", "outer"}
    imported = [a.name for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names]
    assert set(imported) <= {"numpy"} and not any(isinstance(n, ast.ImportFrom) for n in nodes)


# --- mutations planted in the generated backward -------------------------------------------


def _swap_axis(node):
    """np.sum(..., axis=0) -> axis=1: the column sum taken over the wrong axis."""
    if isinstance(node, ast.keyword) and node.arg == "axis" and \
            isinstance(node.value, ast.Constant):
        return ast.keyword("axis", ast.Constant(1 - node.value.value))


def _drop_transpose(node):
    """W.T -> W."""
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return node.value


LAYER_MUTATIONS = {**MUTATIONS, "column sum over the wrong axis": _swap_axis,
                   "dropped transpose": _drop_transpose}


def mutated(name: str, change):
    """The module with `change` planted in its backward after the cache is unpacked, or
    None when the backward has no place for it."""
    path = module_path(name)
    tree = ast.parse(path.read_text())
    backward = next(f for f in tree.body if isinstance(f, ast.FunctionDef)
                    and f.name == "backward")
    mutation = FirstOnly(change)
    for statement in backward.body[1:-1]:           # after the docstring, before return
        if not (isinstance(statement, ast.Assign) and
                getattr(statement.value, "id", None) == "cache"):
            mutation.visit(statement)
    if not mutation.done:
        return None
    return load(path, ast.unparse(ast.fix_missing_locations(tree)))


#: (layer, mutation) where the backward has a place for it (affine's has no comparison):
#: only these are tests, none that could only skip
LAYER_PLANTABLE = [(name, mutation) for name in LAYER_NAMES
                   for mutation, change in LAYER_MUTATIONS.items()
                   if mutated(name, change) is not None]


@pytest.mark.parametrize("name, mutation", LAYER_PLANTABLE,
                         ids=[f"{name}-{mutation}" for name, mutation in LAYER_PLANTABLE])
def test_a_mutation_planted_in_the_generated_layer_backward_is_caught(name, mutation):
    module = mutated(name, LAYER_MUTATIONS[mutation])
    layer = LAYER_REGISTRY[name]
    arrays = draw(layer, np.random.default_rng(0), sizes_of(layer, *SQUARE))  # .T-less runs
    assert gradient_error(layer, module, arrays) > 1e-3


def test_every_kind_of_layer_mutation_is_planted_somewhere():
    assert {mutation for _, mutation in LAYER_PLANTABLE} == set(LAYER_MUTATIONS)


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_a_sign_flip_and_a_dropped_transpose_can_be_planted_in_every_layer(name):
    assert mutated(name, flip_sign) is not None
    assert mutated(name, _drop_transpose) is not None


# --- kinks, L26, L25 -----------------------------------------------------------------------


def test_maxout_layer_routes_a_tie_to_the_first_map_as_maxout_declares():
    (kink,) = REGISTRY["maxout"].kinks
    a, b = REGISTRY["maxout"].inputs
    rng = np.random.default_rng(0)
    X, W, bias, dY = (rng.normal(size=s) for s in ((4, 3), (3, 2), (1, 2), (4, 2)))
    module = generated("maxout_layer")
    Y, cache_ = module.forward(X, W, bias, W.copy(), bias.copy())   # A == B everywhere
    dX, dW1, db1, dW2, db2 = module.backward(dY, cache_)
    assert float(kink.derivative[a]) == 1 and float(kink.derivative[b]) == 0
    np.testing.assert_array_equal(dW1, X.T @ dY)
    np.testing.assert_array_equal(db1, dY.sum(axis=0, keepdims=True))
    assert not dW2.any() and not db2.any()


def test_L26_affine_backward_through_the_generated_layer():
    """y = x w: dL/dx = dL/dy w^T (N x D) and dL/dw = x^T dL/dy (D x M), exactly."""
    affine = generated("affine")
    rng = np.random.default_rng(26)
    x, w, b, dy = (rng.normal(size=s) for s in ((5, 3), (3, 2), (1, 2), (5, 2)))
    y, cache_ = affine.forward(x, w, b)
    dx, dw, db = affine.backward(dy, cache_)
    assert (y.shape, dx.shape, dw.shape, db.shape) == ((5, 2), (5, 3), (3, 2), (1, 2))
    np.testing.assert_array_equal(dx, dy @ w.T)
    np.testing.assert_array_equal(dw, x.T @ dy)
    source = module_path("affine").read_text()
    assert "    dX = dY @ W.T\n    dW = X.T @ dY\n" in source   # as written in cs231n


def test_L25_the_generated_affine_backward_allocates_at_most_3x_its_inputs_and_output():
    spec = importlib.util.spec_from_file_location(
        "affine_memory", ROOT / "benchmarks" / "affine_memory.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    assert benchmark.MODULE == module_path("affine")
    result = benchmark.measure(batch=64, size=512)
    assert result["shapes"] == [(64, 512), (512, 512), (1, 512)]
    assert 0.5 <= result["ratio"] <= benchmark.TARGET == 3.0   # the outputs are allocated


# --- a network of generated modules only ---------------------------------------------------


def test_a_two_layer_network_of_generated_modules_passes_a_gradient_check():
    """affine -> relu -> affine -> softmax_ce, every forward and backward a generated
    module (the runtime's composition): central differences on the total loss."""
    affine, relu = generated("affine"), load(GENERATED / "activations" / "relu.py")
    softmax_ce = load(GENERATED / "losses" / "softmax_ce.py")
    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(5, 4)), np.eye(3)[rng.integers(0, 3, size=5)]
    params = {"W1": rng.normal(size=(4, 6)), "b1": rng.normal(size=(1, 6)),
              "W2": rng.normal(size=(6, 3)), "b2": rng.normal(size=(1, 3))}

    def loss_and_gradients():
        h, first = affine.forward(X, params["W1"], params["b1"])
        a, hidden = relu.forward(h)
        s, second = affine.forward(a, params["W2"], params["b2"])
        loss, ds = softmax_ce.loss(s, Y)
        da, dW2, db2 = affine.backward(ds, second)
        _, dW1, db1 = affine.backward(relu.backward(da, hidden), first)
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

    _, analytic = loss_and_gradients()
    numerical = central_differences(lambda: loss_and_gradients()[0], list(params.values()))
    for name, expected in zip(params, numerical, strict=True):
        assert relative_error(analytic[name], expected) <= 1e-7, name


# --- generate: layers have modules, networks are composed at run time ----------------------


def test_every_layer_of_the_catalog_but_the_activations_has_its_module():
    layers = {n for n, d in LAYER_REGISTRY.items() if d.kind == "layer"}
    activations = {n for n, d in REGISTRY.items() if d.kind == "activation"}
    assert set(LAYER_NAMES) == layers - activations and {"affine", "maxout_layer"} <= \
        set(LAYER_NAMES)
    from symnet.catalog.layers import TENSOR_LAYERS  # index notation: symnet.index

    on_disk = {p.stem for p in (GENERATED / "layers").glob("*.py")} - {"__init__"}
    assert on_disk == set(LAYER_NAMES) | set(TENSOR_LAYERS)


def test_generate_says_a_network_is_composed_at_run_time_and_writes_nothing(tmp_path, capsys):
    assert main(["generate", "two_layer_svm", "-o", str(tmp_path / "out")]) == 0
    shown = capsys.readouterr().out
    assert "two_layer_svm: a network gets no module of its own; the runtime composes it " \
           "from the generated modules of its layers affine, relu; loss svm; regulariser " \
           "l2" in shown
    assert not (tmp_path / "out").exists()


def test_lowering_a_network_is_a_clear_error():
    with pytest.raises(CodegenError, match="'two_layer_relu': a network gets no module"):
        lower(derive(LAYER_REGISTRY["two_layer_relu"]))


# --- layers of a user's own --------------------------------------------------------------

USER_LAYERS = '''
import sympy as sp
from symnet.catalog.activations import elu, relu, sigmoid, tanh
from symnet.declare.layer import Layer, broadcast, elementwise, size

N, D, M, K = size("N"), size("D"), size("M"), size("K")
X, W, V = sp.MatrixSymbol("X", N, D), sp.MatrixSymbol("W", D, M), sp.MatrixSymbol("V", M, K)
b = sp.MatrixSymbol("b", 1, M)
dense_tanh = Layer("dense_tanh", elementwise(tanh, X*W + broadcast(b, N)), inputs=(X, W, b))
dense_sigmoid = Layer("dense_sigmoid", elementwise(sigmoid, X*W + broadcast(b, N)),
                      inputs=(X, W, b))
dense_elu = Layer("dense_elu", elementwise(elu, X*W + broadcast(b, N)), inputs=(X, W, b))
relu_then_linear = Layer("relu_then_linear", elementwise(relu, X*W)*V, inputs=(X, W, V))
gated = Layer("gated", sp.HadamardProduct(X*W, elementwise(sigmoid, X*W + broadcast(b, N))),
              inputs=(X, W, b))
nested = Layer("nested", elementwise(tanh, elementwise(relu, X*W)), inputs=(X, W))
'''


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    """(the user's declarations by name, the folder their modules were generated into)."""
    root = tmp_path_factory.mktemp("user_layers")
    (root / "mine.py").write_text(USER_LAYERS)
    assert main(["generate", str(root / "mine.py"), "-o", str(root / "out")]) == 0
    return load_file(str(root / "mine.py")), root / "out" / "layers"


USER_NAMES = ["dense_tanh", "dense_sigmoid", "dense_elu", "relu_then_linear", "gated", "nested"]


@pytest.mark.parametrize("name", USER_NAMES)
def test_a_users_layer_is_generated_and_passes_the_gradient_check(name, users):
    layer, module = users[0][name], load(users[1] / f"{name}.py")
    for (batch, others), seed in zip(SIZES, SEEDS, strict=True):
        arrays = draw(layer, np.random.default_rng(seed), sizes_of(layer, batch, others))
        assert gradient_error(layer, module, arrays) <= 1e-7


#: (Y, dX) at pre-activations +1000 (first row) and -1000 (second), two units, dY = 1
EXTREMES = {"dense_sigmoid": ([1.0, 0.0], [0.0, 0.0]), "dense_elu": ([1000.0, -1.0], [2.0, 0.0]),
            "dense_tanh": ([1.0, -1.0], [0.0, 0.0])}


@pytest.mark.parametrize("name", EXTREMES)
def test_a_users_layer_is_finite_and_right_at_pre_activations_of_a_thousand(name, users):
    module = load(users[1] / f"{name}.py")
    X = np.array([[1000.0], [-1000.0]])
    W, b, dY = np.ones((1, 2)), np.zeros((1, 2)), np.ones((2, 2))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        Y, cache_ = module.forward(X, W, b)
        dX, dW, db = module.backward(dY, cache_)
    rows, gradients = EXTREMES[name]
    np.testing.assert_allclose(Y, np.repeat(np.array(rows)[:, None], 2, axis=1))
    np.testing.assert_allclose(dX[:, 0], gradients)
    assert np.isfinite(dW).all() and np.isfinite(db).all()


def test_a_users_layer_reuses_the_forward_output_and_names_its_local_gradient(users):
    source = (users[1] / "dense_tanh.py").read_text()
    assert "    cache = (X, W, Y)\n" in source and "    dA = dY*(1 - Y**2)\n" in source
    source = (users[1] / "relu_then_linear.py").read_text()
    assert "    dB = dY @ V.T\n    dA = dB*(A > 0).astype(X.dtype)\n" in source


def test_a_sum_repeated_over_the_batch_alone_is_refused_with_the_declarations_name(tmp_path):
    """ones(N, N)*X repeats X's column sums on every row: numpy would give one row, so
    symnet refuses to write it rather than write a wrong shape."""
    (tmp_path / "sums.py").write_text(
        "import sympy as sp\nfrom symnet.declare.layer import Layer, size\n"
        "N = size('N')\nX = sp.MatrixSymbol('X', N, size('D'))\n"
        "column_sums = Layer('column_sums', sp.OneMatrix(N, N)*X, inputs=X)\n")
    result = symnet("generate", "sums.py:column_sums", "-o", "out", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "'column_sums'" in result.stderr and "not (N, D)" in result.stderr
    assert not (tmp_path / "out").exists()
