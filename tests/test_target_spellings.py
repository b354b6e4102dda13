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

import math
import re

import numpy as np
import pytest
import sympy as sp

from symnet.codegen.errors import CodegenError
from symnet.codegen.printer import NumpyPrinter
from symnet.codegen.printer_jax import JaxPrinter
from symnet.codegen.printer_torch import TorchPrinter
from tests.helpers import load, symnet

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
    result = symnet("generate", str(folder / "gelu.py"), "--target", "torch", "--target",
                    "jax", "-o", str(folder / "out"))
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
