"""Each target's printer spells a function as that target's own or refuses it in one line
(issue 16, section 1: "a primitive with no spelling for that target, exit 2 with one line
naming it; nothing written"); the torch Functions save what the numpy caches save.

sympy's numpy printer takes what numpy lacks (erf, gamma) from Python's math module, which
the generated modules never import and whose functions take no arrays: a GELU module called
math.erf and failed at its first call. Here every sympy function a declaration can write is
printed by the three printers: the text names only the target's modules, or the printer
refuses it naming the function and the target.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import re

import numpy as np
import pytest
import sympy as sp

from symnet.catalog import REGISTRY
from symnet.codegen.errors import CodegenError
from symnet.codegen.printer import NumpyPrinter
from symnet.codegen.printer_jax import JaxPrinter
from symnet.codegen.printer_torch import TorchPrinter
from tests.helpers import GENERATED, load, symnet

GELU = ("import sympy as sp\nfrom symnet import Activation\nfrom symnet.symbols import x\n"
        "gelu = Activation('gelu', x*(1 + sp.erf(x/sp.sqrt(2)))/2, inputs=x,\n"
        "                  doc='GELU: x Phi(x).')\n")
#: printer -> the modules its text may call (a generated module imports these alone)
MODULES = {NumpyPrinter: {"np"}, TorchPrinter: {"torch"}, JaxPrinter: {"jnp", "jax"}}
X = sp.Symbol("x", real=True)


def _sympy_functions():
    """Every function class sympy exports, applied to x (or x and 2 where it takes two)."""
    for name in sorted(dir(sp)):
        function = getattr(sp, name)
        if not (isinstance(function, type) and issubclass(function, sp.Function)
                and function.__module__.startswith("sympy.functions")):
            continue
        for args in ((X,), (X, 2)):
            try:
                expr = function(*args)
            except Exception:   # noqa: BLE001 - a function that takes other arguments
                continue
            if isinstance(expr, sp.Expr) and expr.has(X):
                yield pytest.param(expr, id=name)
                break


@pytest.mark.parametrize("printer", list(MODULES), ids=lambda p: p.target)
@pytest.mark.parametrize("expr", list(_sympy_functions()))
def test_every_function_prints_in_the_targets_own_modules_or_is_refused(printer, expr):
    try:
        text = printer({"fully_qualified_modules": True}).doprint(expr)
    except CodegenError as exc:
        message = str(exc)
        assert "\n" not in message
        assert printer.target in message or "spelling" not in message, message
        return
    called = set(re.findall(r"(?<![\w.])([A-Za-z_]\w*)\.[A-Za-z_]", text))
    assert called <= MODULES[printer], text
    for dotted in re.findall(r"(?<![\w.])((?:np|torch|jnp|jax)(?:\.[A-Za-z_]\w*)+)", text):
        assert _resolves(dotted), f"{dotted} does not exist ({text})"


#: how the generated modules import each module name their code calls
IMPORTED_AS = {"np": "numpy", "torch": "torch", "jnp": "jax.numpy", "jax": "jax"}


def _resolves(dotted: str) -> bool:
    """Whether a dotted name of generated code names something that exists (attributes
    of arrays, as in x.astype, are not looked up: only module-level names are)."""
    module, *attributes = dotted.split(".")
    found = pytest.importorskip(IMPORTED_AS[module])
    for attribute in attributes:
        if not hasattr(found, attribute):
            return False
        found = getattr(found, attribute)
    return True


def test_every_spelling_in_the_tables_exists():
    from symnet.codegen.printer_jax import JAX_BEYOND_NUMPY
    from symnet.codegen.printer_torch import TORCH_BEYOND_NUMPY, TORCH_FUNCTIONS

    for spelled in (*TORCH_FUNCTIONS.values(), *TORCH_BEYOND_NUMPY.values(),
                    *JAX_BEYOND_NUMPY.values()):
        assert _resolves(spelled), spelled


@pytest.mark.parametrize("name, spelled", [("numpy", None), ("torch", "torch.erf"),
                                           ("jax", "jax.scipy.special.erf")])
def test_erf_is_the_targets_own_or_refused(name, spelled):
    printer = {p.target: p for p in MODULES}[name]({"fully_qualified_modules": True})
    if spelled is None:
        with pytest.raises(CodegenError, match="erf .*no numpy spelling"):
            printer.doprint(sp.erf(X))
    else:
        assert printer.doprint(sp.erf(X)) == f"{spelled}(x)"


@pytest.fixture(scope="module")
def gelu_modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gelu")
    (folder / "gelu.py").write_text(GELU)
    # the frameworks installed only: generate refuses a target whose framework is missing,
    # and the tests of a missing one skip with the reason
    targets = [t for t in ("torch", "jax") if importlib.util.find_spec(t)]
    if not targets:
        pytest.skip("neither PyTorch nor JAX is installed: pip install 'symnet[torch,jax]'")
    result = symnet("generate", str(folder / "gelu.py"),
                    *(f"--target={t}" for t in targets), "-o", str(folder / "out"))
    assert result.returncode == 0, result.stderr
    return folder / "out"


def _gelu(x: np.ndarray) -> np.ndarray:
    """x Phi(x) from Python's own erf, entry by entry: the reference."""
    return np.vectorize(lambda v: v * (1 + math.erf(v / math.sqrt(2))) / 2)(x)


def _gelu_prime(x: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: (1 + math.erf(v / math.sqrt(2))) / 2
                        + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi))(x)


def test_gelu_for_torch_passes_gradcheck_and_matches_erf(gelu_modules):
    torch = pytest.importorskip("torch")
    gelu = load(gelu_modules / "torch_modules" / "activations" / "gelu.py").gelu
    x = torch.linspace(-6, 6, 25, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gelu, (x,))
    out = gelu(x)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), _gelu(x.detach().numpy()), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), _gelu_prime(x.detach().numpy()), rtol=1e-12,
                               atol=1e-15)
    assert gelu(x.detach().float()).dtype == torch.float32


def test_gelu_for_jax_passes_check_grads_and_matches_erf(gelu_modules):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from jax.test_util import check_grads

    gelu = load(gelu_modules / "jax_modules" / "activations" / "gelu.py").gelu
    x = jax.numpy.linspace(-6, 6, 25, dtype=jax.numpy.float64)
    check_grads(gelu, (x,), order=1, modes=["rev"])
    np.testing.assert_allclose(np.asarray(jax.jit(gelu)(x)), _gelu(np.asarray(x)), rtol=1e-12,
                               atol=1e-15)
    gradient = jax.grad(lambda v: gelu(v).sum())(x)
    np.testing.assert_allclose(np.asarray(gradient), _gelu_prime(np.asarray(x)), rtol=1e-12,
                               atol=1e-15)
    assert gelu(x.astype(jax.numpy.float32)).dtype == jax.numpy.float32


def test_gelu_for_numpy_is_refused_in_one_line_and_nothing_written(tmp_path):
    (tmp_path / "gelu.py").write_text(GELU)
    result = symnet("generate", str(tmp_path / "gelu.py"), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symnet: error:"), result.stderr
    for word in ("'gelu'", "erf", "numpy"):
        assert word in lines[0]
    assert not (tmp_path / "out").exists()


# --- what a torch Function saves: what the numpy cache saves, a mask where a kink suffices --

ACTIVATIONS = [n for n, d in REGISTRY.items() if d.kind == "activation"]
#: activations whose backward reads the inputs only through a kink, and the same formula
#: written directly in torch (autograd of torch.where saves the 1-byte condition)
KINKED = {"relu": lambda torch, x: torch.where(x > 0, x, 0 * x),
          "leaky_relu": lambda torch, x: torch.where(x > 0, x, 0.1 * x),
          "maxout": lambda torch, a, b: torch.maximum(a, b)}


def _inputs(decl, dtype=np.float32):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((64, 32)).astype(dtype) for _ in decl.inputs]


def _numpy_cache(decl, arrays) -> list:
    module = load(GENERATED / "activations" / f"{decl.name}.py")
    _, cache = module.forward(*arrays)
    return sorted((a.shape, a.dtype.name) for a in cache if isinstance(a, np.ndarray))


def _torch_saved(torch, function, tensors) -> list:
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        function(*tensors)
    return saved


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_the_torch_function_saves_the_numpy_caches_arrays_dtype_and_all(name):
    torch = pytest.importorskip("torch")
    decl = REGISTRY[name]
    arrays = _inputs(decl)
    function = load(GENERATED / "torch_modules" / "activations" / f"{name}.py").__dict__[name]
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    saved = _torch_saved(torch, function, tensors)
    assert sorted((tuple(t.shape), str(t.dtype).removeprefix("torch.")) for t in saved) \
        == _numpy_cache(decl, arrays)


@pytest.mark.parametrize("name", list(KINKED))
def test_a_kinks_backward_saves_a_mask_no_more_than_the_direct_formula(name):
    torch = pytest.importorskip("torch")
    decl = REGISTRY[name]
    arrays = _inputs(decl)
    assert {dtype for _, dtype in _numpy_cache(decl, arrays)} == {"bool"}
    function = load(GENERATED / "torch_modules" / "activations" / f"{name}.py").__dict__[name]
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]

    def nbytes(saved):
        return sum(t.numel() * t.element_size() for t in
                   {t.data_ptr(): t for t in saved}.values())

    ours = nbytes(_torch_saved(torch, function, tensors))
    direct = nbytes(_torch_saved(torch, lambda *t: KINKED[name](torch, *t), tensors))
    assert ours <= direct


# --- fewer passes in torch: the fused sigmoid, one factor of Python numbers -----------------

TORCH_MODULES = sorted((GENERATED / "torch_modules").glob("*/*.py"))


def test_torch_and_jax_compute_the_logistic_with_their_own_fused_function():
    """Where a module computes the logistic function (sigmoid, silu, softplus' derivative,
    bce_logits' gradient), torch's is torch.sigmoid and jax's jax.nn.sigmoid, one pass,
    not numpy's expansion from exp_neg_abs_x = exp(-|x|) (five passes in torch)."""
    for name in ("sigmoid", "silu", "softplus"):
        for folder, spelled in (("torch_modules", "torch.sigmoid("),
                                ("jax_modules", "jax.nn.sigmoid(")):
            text = (GENERATED / folder / "activations" / f"{name}.py").read_text()
            assert spelled in text and "exp_neg_abs" not in text, name


def _numbers(node, scalars) -> bool:
    """Whether an expression of the generated code is a Python number at run time."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id in scalars
    if isinstance(node, ast.UnaryOp):
        return _numbers(node.operand, scalars)
    if isinstance(node, ast.BinOp):
        return _numbers(node.left, scalars) and _numbers(node.right, scalars)
    return False


def _factors(node) -> list:
    """The operands torch multiplies or divides one after the other: a*b/c is (a*b)/c."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        return _factors(node.left) + [node.right]
    return [node]


@pytest.mark.parametrize("path", TORCH_MODULES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_torch_product_multiplies_a_tensor_by_its_numbers_once(path):
    """2*d/N is two passes over d in torch, d*(2/N) one."""
    tree = ast.parse(path.read_text())
    for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        scalars = {"N"} | {a.arg for a in function.args.args[len(function.args.args)
                                                             - len(function.args.defaults):]}
        for node in ast.walk(function):
            factors = _factors(node) if isinstance(node, ast.BinOp) else []
            numbers = [f for f in factors if _numbers(f, scalars)]
            if len(factors) > len(numbers):
                assert len(numbers) <= 1, f"{function.name}: {ast.unparse(node)}"
