"""The PyTorch and JAX modules (`symnet generate --target torch|jax`, committed in
generated/torch_modules/ and generated/jax_modules/): for every catalog activation, loss,
regulariser, layer and tensor layer, torch's gradcheck and jax's check_grads pass in
float64; values and gradients equal the numpy module's to 1e-12; they stay finite at +-1000
(float64) and +-100 (float32; softmax_rows too, shifted by its row max);
float32 in is float32 out; kinks follow the declaration (relu'(0) = 0); a second derivative
through a torch Function fails clearly; the jax callables jit and vmap. The README's own
declaration files (examples/my_declarations.py, my_tensor_layer.py) are generated for both
targets and checked the same way. Each framework's tests skip, with the reason, where it is
not installed."""

from __future__ import annotations

import ast
import importlib.util

import numpy as np
import pytest

from symnet.catalog import LAYER_REGISTRY, REGISTRY
from symnet.catalog.layers import TENSOR_LAYERS
from symnet.cli import main
from symnet.declare.scalar import Activation, Regularizer
from tests import layer_helpers
from tests.helpers import GENERATED, ROOT, FirstOnly, draw_away_from_kinks, flip_sign, load, run

FOLDERS = {"activation": "activations", "loss": "losses", "regularizer": "regularizers",
           "layer": "layers", "tensor layer": "layers"}
TARGET_FOLDERS = {"numpy": "", "torch": "torch_modules", "jax": "jax_modules"}
LAYERS = {n: d for n, d in LAYER_REGISTRY.items() if d.kind == "layer" and d.activation is None}
ENTRIES = {**REGISTRY, **LAYERS, **TENSOR_LAYERS}
#: a tensor layer's sizes by name (its batch N first)
TENSOR_SIZES = {"N": 4, "D": 3, "C": 5, "K": 2, "E": 3}
SKIP_REASON = {"torch": "PyTorch is the [torch] extra: pip install 'symnet[torch]'",
               "jax": "JAX is the [jax] extra: pip install 'symnet[jax]'"}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason=SKIP_REASON["torch"])


@pytest.fixture(scope="module")
def jax():
    jax = pytest.importorskip("jax", reason=SKIP_REASON["jax"])
    jax.config.update("jax_enable_x64", True)   # float64 checks; float32 must stay float32
    return jax


def framework(request, target: str):
    return request.getfixturevalue(target)


def path_of(decl, target: str, root=GENERATED):
    folder = root / TARGET_FOLDERS[target] if TARGET_FOLDERS[target] else root
    return folder / FOLDERS[decl.kind] / f"{decl.name}.py"


def module_of(decl, target: str, root=GENERATED):
    return load(path_of(decl, target, root))


# --- one case per declaration: inputs, and how its value is read ----------------------------


class Case:
    """A declaration's inputs: `arrays` (differentiated), `extra` (a loss's target),
    `upstream` (an activation's or layer's dL/dout: the value is sum(out * upstream);
    None for a loss, whose value is its output)."""

    def __init__(self, decl, seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        self.decl = decl
        if decl.kind == "tensor layer":
            def normal(entry):
                shape = tuple(TENSOR_SIZES[str(s)] for s in decl.shape_of(entry))
                return rng.normal(size=shape).astype(dtype)
            self.arrays = [normal(e) for e in decl.inputs]
            # a constant (dropout's mask) is passed as data, after the inputs: no gradient
            self.extra, self.upstream = [normal(e) for e in decl.constants], normal(decl.output)
            return
        if decl.kind == "layer":
            sizes = layer_helpers.sizes_of(decl, 4, (3, 2))
            drawn = layer_helpers.draw(decl, rng, sizes, dtype)
            self.arrays = [drawn[m] for m in decl.inputs]
            self.extra, self.upstream = [], drawn[decl.upstream]
            return
        wrt, fixed = draw_away_from_kinks(decl, rng, (4, 3), dtype=dtype)
        self.arrays = list(wrt.values())
        self.upstream = fixed.get("dout")
        target = fixed.get("target")
        self.extra = [] if target is None else [target]

    def numpy(self):
        """(value, [gradients]) of the numpy module."""
        module = module_of(self.decl, "numpy")
        if self.decl.kind == "tensor layer":
            names = [str(e.base) for e in self.decl.inputs]
            return run(self.decl, module, dict(zip(names, self.arrays, strict=True)),
                       {"dout": self.upstream, "constants": self.extra})
        if self.decl.kind == "layer":
            arrays = dict(zip(self.decl.inputs, self.arrays, strict=True))
            arrays[self.decl.upstream] = self.upstream
            return layer_helpers.run(self.decl, module, arrays)
        names = [str(v) for v in self.decl.inputs] if isinstance(self.decl, Activation) \
            else ["W" if isinstance(self.decl, Regularizer) else "s"]
        fixed = {"dout": self.upstream, "target": self.extra[0] if self.extra else None}
        return run(self.decl, module, dict(zip(names, self.arrays, strict=True)), fixed)

    def with_arrays(self, arrays):
        other = object.__new__(Case)
        other.__dict__.update(self.__dict__, arrays=arrays)
        return other


def torch_run(torch, callable_, case: Case, dtype):
    """(value, [gradients], output) through the torch callable and autograd."""
    tensors = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in case.arrays]
    out = callable_(*tensors, *(torch.as_tensor(e) for e in case.extra))
    value = out if case.upstream is None else \
        (out * torch.as_tensor(case.upstream, dtype=dtype)).sum()
    grads = torch.autograd.grad(value, tensors)
    return value.detach().numpy(), [g.numpy() for g in grads], out.detach().numpy()


def jax_run(jax, callable_, case: Case, dtype):
    """(value, [gradients], output) through the jax callable and jax.value_and_grad."""
    jnp = jax.numpy
    extra = [jnp.asarray(e) for e in case.extra]
    upstream = None if case.upstream is None else jnp.asarray(case.upstream, dtype=dtype)

    def value(*arrays):
        out = callable_(*arrays, *extra)
        return (out if upstream is None else (out * upstream).sum()), out

    arrays = [jnp.asarray(a, dtype=dtype) for a in case.arrays]
    (total, out), grads = jax.value_and_grad(value, argnums=tuple(range(len(arrays))),
                                             has_aux=True)(*arrays)
    return np.asarray(total), [np.asarray(g) for g in grads], np.asarray(out)


RUNS = {"torch": torch_run, "jax": jax_run}


def dtypes(fw, target: str, name: str):
    return getattr(fw.numpy if target == "jax" else fw, name)


def target_callable(decl, target, root=GENERATED):
    return getattr(module_of(decl, target, root), decl.name)


CASES = [pytest.param(target, name, id=f"{target}-{name}")
         for target in ("torch", "jax") for name in ENTRIES]


# --- agreement with numpy ------------------------------------------------------------------


@pytest.mark.parametrize("target, name", CASES)
def test_values_and_gradients_equal_the_numpy_modules(request, target, name):
    fw = framework(request, target)
    decl = ENTRIES[name]
    for seed in (0, 1):
        case = Case(decl, seed)
        expected_value, expected_grads = case.numpy()
        value, grads, _ = RUNS[target](fw, target_callable(decl, target), case,
                                       dtypes(fw, target, "float64"))
        np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=1e-14)
        assert len(grads) == len(expected_grads)
        for got, expected in zip(grads, expected_grads, strict=True):
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# --- the frameworks' own gradient checks ---------------------------------------------------


@pytest.mark.parametrize("name", list(ENTRIES))
def test_torch_gradcheck_in_float64(torch, name):
    decl = ENTRIES[name]
    case = Case(decl, seed=3)
    callable_ = target_callable(decl, "torch")
    tensors = tuple(torch.tensor(a, requires_grad=True) for a in case.arrays)
    extra = [torch.as_tensor(e) for e in case.extra]
    assert torch.autograd.gradcheck(lambda *t: callable_(*t, *extra), tensors)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_jax_check_grads_in_reverse_mode(jax, name):
    from jax.test_util import check_grads

    decl = ENTRIES[name]
    case = Case(decl, seed=3)
    callable_ = target_callable(decl, "jax")
    extra = [jax.numpy.asarray(e) for e in case.extra]
    arrays = [jax.numpy.asarray(a) for a in case.arrays]
    check_grads(lambda *a: callable_(*a, *extra), arrays, order=1, modes=["rev"])


# --- dtypes and extremes -------------------------------------------------------------------


def extreme(case: Case, size: float, dtype) -> Case:
    """The case with its arrays at +-size, 0 and small values, in `dtype`."""
    pattern = np.array([-size, size, -1.0, 0.5, size / 2, -size / 3])
    arrays = [np.resize(pattern, a.shape).astype(dtype) for a in case.arrays]
    shifted = case.with_arrays(arrays)
    if shifted.upstream is not None:
        shifted.upstream = shifted.upstream.astype(dtype)
    if shifted.extra and shifted.extra[0].dtype.kind == "f":
        shifted.extra = [shifted.extra[0].astype(dtype)]
    return shifted


@pytest.mark.parametrize("target, name", CASES)
@pytest.mark.parametrize("dtype, size", [("float64", 1000.0), ("float32", 100.0)])
def test_finite_at_the_extremes_and_the_dtype_kept(request, target, name, dtype, size):
    fw = framework(request, target)
    decl = ENTRIES[name]
    case = extreme(Case(decl, seed=0), size, dtype)
    value, grads, out = RUNS[target](fw, target_callable(decl, target), case,
                                     dtypes(fw, target, dtype))
    for array in (value, out, *grads):
        assert array.dtype == np.dtype(dtype), f"{dtype} in, {array.dtype} out"
        assert np.all(np.isfinite(array))


# --- kinks, second derivatives, jit and vmap -----------------------------------------------


@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("name", [n for n, d in REGISTRY.items() if d.kind == "activation"])
def test_the_derivative_at_a_kink_is_the_declarations(request, target, name):
    """At 0, where the catalog's kinks are, the gradient is the numpy module's, which
    follows the declaration (relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = 1)."""
    fw = framework(request, target)
    decl = REGISTRY[name]
    case = Case(decl).with_arrays([np.zeros((2, 3)) for _ in decl.inputs])
    case.upstream = np.ones((2, 3))
    _, expected = case.numpy()
    _, grads, _ = RUNS[target](fw, target_callable(decl, target), case,
                               dtypes(fw, target, "float64"))
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    if name == "relu":
        assert not grads[0].any()


@pytest.mark.parametrize("name", ["relu", "softmax_ce", "affine", "batchnorm"])
def test_a_second_derivative_through_a_torch_function_fails_clearly(torch, name):
    decl = ENTRIES[name]
    case = Case(decl)
    tensors = [torch.tensor(a, requires_grad=True) for a in case.arrays]
    out = target_callable(decl, "torch")(*tensors, *(torch.as_tensor(e) for e in case.extra))
    with pytest.raises(RuntimeError, match="backward has no second derivative"):
        torch.autograd.grad(out.sum(), tensors[:1], create_graph=True)
    # torch's once_differentiable alone: the second derivative raises where the upstream
    # gradient requires grad, but with a plain one it would be silently taken as 0
    (first,) = torch.autograd.grad(out.sum(), tensors[:1])
    assert first.grad_fn is None


@pytest.mark.parametrize("name", ["elu", "softmax_ce", "huber", "maxout_layer", "batchnorm",
                                  "dropout", "bilinear"])
def test_jax_callables_jit_and_vmap(jax, name):
    jnp = jax.numpy
    decl = ENTRIES[name]
    callable_ = target_callable(decl, "jax")
    cases = [Case(decl, seed) for seed in (0, 1)]
    extra = [jnp.asarray(e) for e in cases[0].extra]

    def value(*arrays):
        out = callable_(*arrays, *extra)
        return out.sum()

    direct = [jax.value_and_grad(value)(*map(jnp.asarray, c.arrays)) for c in cases]
    jitted = jax.jit(jax.value_and_grad(value))
    for case, (v, g) in zip(cases, direct, strict=True):
        jv, jg = jitted(*map(jnp.asarray, case.arrays))
        np.testing.assert_allclose(jv, v, rtol=1e-12)
        np.testing.assert_allclose(jg, g, rtol=1e-12, atol=1e-15)
    stacked = [jnp.stack([jnp.asarray(c.arrays[n]) for c in cases])
               for n in range(len(cases[0].arrays))]
    values, grads = jax.vmap(jax.value_and_grad(value))(*stacked)
    np.testing.assert_allclose(values, [v for v, _ in direct], rtol=1e-12)
    np.testing.assert_allclose(grads, np.stack([g for _, g in direct]), rtol=1e-12, atol=1e-15)


# --- tensor layers: float32, batch norm's statistics, your own ----------------------------

TENSOR_CASES = [pytest.param(target, name, id=f"{target}-{name}")
                for target in ("torch", "jax") for name in TENSOR_LAYERS]


@pytest.mark.parametrize("target, name", TENSOR_CASES)
def test_a_tensor_layer_keeps_float32_at_ordinary_values(request, target, name):
    fw = framework(request, target)
    decl = TENSOR_LAYERS[name]
    case = Case(decl, seed=2, dtype=np.float32)
    expected_value, expected_grads = Case(decl, seed=2).numpy()
    value, grads, out = RUNS[target](fw, target_callable(decl, target), case,
                                     dtypes(fw, target, "float32"))
    for array in (value, out, *grads):
        assert array.dtype == np.float32, f"float32 in, {array.dtype} out"
    np.testing.assert_allclose(value, expected_value, rtol=1e-4, atol=1e-4)
    for got, expected in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_batchnorm_offers_its_batch_statistics_and_inference_as_numpy_does(request, target):
    """The running averages' inputs (the last entries of forward()'s cache, named by CACHE
    and RUNNING) and inference() equal the numpy module's, in the target's arrays."""
    fw = framework(request, target)
    decl = TENSOR_LAYERS["batchnorm"]
    numpy_module, module = module_of(decl, "numpy"), module_of(decl, target)
    assert (module.CACHE, module.RUNNING) == (numpy_module.CACHE, numpy_module.RUNNING)
    arrays = Case(decl, seed=4).arrays
    as_target = fw.tensor if target == "torch" else fw.numpy.asarray
    statistics = numpy_module.forward(*arrays)[1][-len(numpy_module.RUNNING):]
    theirs = module.forward(*map(as_target, arrays))[1][-len(module.RUNNING):]
    for got, want in zip(theirs, statistics, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    running = [s + 0.5 for s in statistics]
    expected = numpy_module.inference(*arrays, *running)
    got = module.inference(*map(as_target, arrays), *map(as_target, running))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12)


#: a rank-3 input whose axes run in another order than the layout's: the lowering permutes
#: it (numpy's transpose(1, 2, 0), torch's permute), and reshapes its VJP back; and a sum
#: whose VJPs are all the upstream itself, each a copy of it (numpy's copy, torch's clone)
CROSSED = """
from symnet.index import IndexLayer, indices, size, tensors

N, D, E = size("N"), size("D"), size("E")
n, d, e = indices("n d e")
X, Y, A = tensors("X Y A")
crossed3 = IndexLayer("crossed3", Y[n, d, e], X[n, d, e] * A[e, n, d],
                      inputs=(X[n, d, e], A[e, n, d]), ranges={n: N, d: D, e: E})
B, C = tensors("B C")
copied = IndexLayer("copied", Y[n, d], B[n, d] + C[n, d], inputs=(B[n, d], C[n, d]),
                    ranges={n: N, d: D})
"""


@pytest.fixture(scope="module")
def own_tensor_layers(tmp_path_factory):
    """(output folder, declarations): the README's layernorm (examples/my_tensor_layer.py),
    crossed3 and copied, generated for numpy, torch and jax."""
    from symnet.loader import resolve_all

    out = tmp_path_factory.mktemp("own_tensor_layers")
    crossed = out / "crossed.py"
    crossed.write_text(CROSSED)
    files = [ROOT / "examples" / "my_tensor_layer.py", crossed]
    decls = [decl for f in files for decl in resolve_all(str(f))]
    targets = ["numpy"] + [t for t in ("torch", "jax") if importlib.util.find_spec(t)]
    for path in files:   # the frameworks installed: the others' tests skip, with the reason
        assert main(["generate", str(path), *(f"--target={t}" for t in targets),
                     "-o", str(out / "modules")]) == 0
    return out / "modules", decls


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_your_own_tensor_layers_for_torch_and_jax(request, own_tensor_layers, target):
    fw = framework(request, target)
    root, decls = own_tensor_layers
    for decl in decls:
        case = Case(decl, seed=5)
        expected_value, expected = run(decl, module_of(decl, "numpy", root),
                                       {str(e.base): a for e, a in zip(decl.inputs, case.arrays,
                                                                       strict=True)},
                                       {"dout": case.upstream})
        callable_ = target_callable(decl, target, root)
        value, grads, _ = RUNS[target](fw, callable_, case, dtypes(fw, target, "float64"))
        np.testing.assert_allclose(value, expected_value, rtol=1e-12)
        for got, want in zip(grads, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        if target == "torch":
            tensors = tuple(fw.tensor(a, requires_grad=True) for a in case.arrays)
            assert fw.autograd.gradcheck(callable_, tensors), decl.name
        else:
            from jax.test_util import check_grads

            check_grads(callable_, [fw.numpy.asarray(a) for a in case.arrays], order=1,
                        modes=["rev"])


# --- the README's own declarations ---------------------------------------------------------


@pytest.fixture(scope="module")
def readme_modules(tmp_path_factory):
    """examples/my_declarations.py generated with --target torch and --target jax (and its
    numpy modules, to compare with)."""
    out = tmp_path_factory.mktemp("my_modules")
    declarations = ROOT / "examples" / "my_declarations.py"
    args = ["generate", str(declarations), "--target", "numpy", "-o", str(out)]
    for target in ("torch", "jax"):
        try:
            __import__(target)
            args += ["--target", target]
        except ImportError:
            pass
    assert main(args) == 0
    return out


def readme_declaration(name: str):
    from symnet.loader import resolve_all

    (decl,) = resolve_all(f"{ROOT / 'examples' / 'my_declarations.py'}:{name}")
    return decl


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "jax"])
@pytest.mark.parametrize("name", ["mish", "smoothed_ce", "dense_mish"])
def test_the_readme_declarations_for_torch_and_jax(request, readme_modules, target, name):
    fw = framework(request, target)
    decl = readme_declaration(name)
    case = Case(decl, seed=0)
    numpy_module = module_of(decl, "numpy", readme_modules)
    if decl.kind == "layer":
        arrays = dict(zip(decl.inputs, case.arrays, strict=True))
        arrays[decl.upstream] = case.upstream
        expected_value, expected = layer_helpers.run(decl, numpy_module, arrays)
    else:
        names = ["x"] if decl.kind == "activation" else ["s"]
        fixed = {"dout": case.upstream, "target": case.extra[0] if case.extra else None}
        expected_value, expected = run(decl, numpy_module,
                                       dict(zip(names, case.arrays, strict=True)), fixed)
    callable_ = target_callable(decl, target, readme_modules)
    value, grads, _ = RUNS[target](fw, callable_, case, dtypes(fw, target, "float64"))
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    for got, want in zip(grads, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    if target == "torch":
        tensors = tuple(fw.tensor(a, requires_grad=True) for a in case.arrays)
        extra = [fw.as_tensor(e) for e in case.extra]
        assert fw.autograd.gradcheck(lambda *t: callable_(*t, *extra), tensors)
    else:
        from jax.test_util import check_grads

        extra = [fw.numpy.asarray(e) for e in case.extra]
        check_grads(lambda *a: callable_(*a, *extra), [fw.numpy.asarray(a)
                                                       for a in case.arrays],
                    order=1, modes=["rev"])


# --- what the modules are made of ----------------------------------------------------------


@pytest.mark.parametrize("name", list(ENTRIES))
def test_torch_modules_are_device_and_dtype_agnostic_as_text(name):
    """No way off the tensor's device (.numpy(), numpy itself) and no float64 constant or
    dtype: numbers are Python numbers, new arrays take the input's dtype and device."""
    tree = ast.parse(path_of(ENTRIES[name], "torch").read_text())
    for node in ast.walk(tree):   # the code without its docstrings (and, unparsed, comments)
        if hasattr(node, "body") and isinstance(node.body, list):
            node.body = [s for s in node.body if not (isinstance(s, ast.Expr)
                         and isinstance(s.value, ast.Constant))] or [ast.Pass()]
    code = ast.unparse(tree)
    assert "torch.autograd.Function" in code
    for banned in (".numpy(", "import numpy", "np.", "float64", "double", "torch.tensor(",
                   ".cpu(", ".cuda(", "device='", 'device="'):
        assert banned not in code, banned


@pytest.mark.parametrize("name", list(ENTRIES))
def test_the_torch_function_saves_exactly_what_the_numpy_cache_holds(torch, name):
    """Counted with saved_tensors_hooks: the arrays of the numpy module's cache (a loss:
    its gradient, which the numpy loss returns with the value), nothing more."""
    decl = ENTRIES[name]
    case = Case(decl)
    numpy_module = module_of(decl, "numpy")
    if hasattr(numpy_module, "forward"):
        _, cache = numpy_module.forward(*case.arrays, *case.extra)
        expected = sorted(a.shape for a in cache if isinstance(a, np.ndarray))
    else:
        expected = [case.arrays[0].shape]
    saved = []
    tensors = [torch.tensor(a, requires_grad=True) for a in case.arrays]
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t,
                                                  lambda t: t):
        target_callable(decl, "torch")(*tensors, *(torch.as_tensor(e) for e in case.extra))
    assert sorted(tuple(s) for s in saved) == expected


def gradient_assignment(tree: ast.Module, decl):
    """The statements computing the gradient: backward's body, or the loss function's
    assignment of the gradient it returns."""
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    if "backward" in functions:   # without the cache's unpacking
        return [s for s in functions["backward"].body if isinstance(s, ast.Assign)
                and isinstance(s.targets[0], ast.Name)]
    function = functions.get("loss") or functions["penalty"]
    gradient = function.body[-1].value.elts[1].id
    return [s for s in function.body if isinstance(s, ast.Assign)
            and getattr(s.targets[0], "id", None) == gradient]


@pytest.mark.parametrize("target, name", CASES)
def test_a_sign_flipped_in_the_backward_is_caught(request, target, name):
    """The mutation test of tests/test_codegen_numerics.py, planted in the torch and jax
    modules: the frameworks' own gradient checks catch it."""
    fw = framework(request, target)
    decl = ENTRIES[name]
    path = path_of(decl, target)
    tree = ast.parse(path.read_text())
    mutation = FirstOnly(flip_sign)
    for statement in gradient_assignment(tree, decl):
        mutation.visit(statement)
    assert mutation.done
    callable_ = getattr(load(path, ast.unparse(ast.fix_missing_locations(tree))), name)
    case = Case(decl, seed=3)
    if target == "torch":
        tensors = tuple(fw.tensor(a, requires_grad=True) for a in case.arrays)
        extra = [fw.as_tensor(e) for e in case.extra]
        assert not fw.autograd.gradcheck(lambda *t: callable_(*t, *extra), tensors,
                                         raise_exception=False)
    else:
        from jax.test_util import check_grads

        extra = [fw.numpy.asarray(e) for e in case.extra]
        with pytest.raises(AssertionError):
            check_grads(lambda *a: callable_(*a, *extra),
                        [fw.numpy.asarray(a) for a in case.arrays], order=1, modes=["rev"])


# --- the command ---------------------------------------------------------------------------


def _tree(root) -> dict:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*.py"))
            if "__pycache__" not in p.parts}


def test_generate_targets_go_into_their_folders_and_are_checked(tmp_path, capsys, torch, jax):
    out = tmp_path / "out"
    assert main(["generate", "relu", "softmax_ce", "--target", "torch", "--target", "jax",
                 "-o", str(out)]) == 0
    written = _tree(out)
    assert sorted(written) == [f"{folder}/{rel}" for folder in ("jax_modules", "torch_modules")
                               for rel in ("__init__.py", "activations/__init__.py",
                                           "activations/relu.py", "losses/__init__.py",
                                           "losses/softmax_ce.py")]
    for rel, text in written.items():   # the catalog's, as committed
        assert text == (GENERATED / rel).read_text(), rel
    relu = out / "torch_modules" / "activations" / "relu.py"
    relu.write_text(relu.read_text().replace("x > 0", "x >= 0"))
    capsys.readouterr()
    assert main(["generate", "relu", "--target", "torch", "--check", "-o", str(out)]) == 1
    shown = capsys.readouterr().out
    assert "--- torch_modules/activations/relu.py (on disk)" in shown
    assert "+    x_positive = x > 0" in shown
    assert main(["generate", "relu", "--target", "jax", "--check", "-o", str(out)]) == 0


@pytest.mark.slow   # the whole catalog for torch and for jax: about 12 s
def test_a_stray_file_is_reported_in_its_targets_folder_only(tmp_path, capsys, torch, jax):
    import shutil

    copy = tmp_path / "generated"
    shutil.copytree(GENERATED, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "torch_modules" / "losses" / "old_loss.py").write_text("# left over\n")
    capsys.readouterr()
    assert main(["generate", "--target", "torch", "--check", "-o", str(copy)]) == 1
    assert "torch_modules/losses/old_loss.py: on disk, but no declaration generates it" \
        in capsys.readouterr().out
    assert main(["generate", "--target", "jax", "--check", "-o", str(copy)]) == 0
