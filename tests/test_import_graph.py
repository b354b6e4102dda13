"""The import graph of symnet/, built from the source with function-level imports included:
data flows one way, so no module reaches itself through imports, and no module imports one
of a later stage.

The stages, earliest first (STAGES, the one place they are listed; each module belongs to
the stage of its longest prefix listed there, and may import its own stage and earlier
ones only):

    foundation    errors, files, timeout, symbols, primitives, algebra, cases, tidy, and
                  the notation everything is shown in (notation, matrix.text): no stage's
                  data
    runtime       numpy only; last in the flow, but it imports nothing of the stages
                  before it (generated/ imports numpy only, tests/test_runtime_data.py), so
                  it sits just above the foundation: only that is open to it
    declare       what a function is, one module per level (symnet.declare: scalar,
                  elementwise, layer, network, tensor, step), the re-exports of some of it
                  where users found it before (matrix.layers, the package index), and the
                  catalog declared with it
    derive        derive (its one entry, dispatching on the declaration's type),
                  matrix (vjp, network_derive, explicit), index.{derive, page}, and show:
                  the rows of each kind of derivation (show.scalar, show.matrix) and the
                  page built of them (show.page, re-exported as display: what `symnet
                  derive` prints and Jupyter shows)
    verify        verify (its package holds the matrix checks: verify.{matrix,
                  entrywise}, and the probes' values: verify.at_point), index.check
    codegen       codegen, templating, graph (its straight-line code is emitted through
                  templates too), show.docstring (the same rows as a generated module's
                  docstring, wrapped as the generated code is)
    cli           cli, cache, loader, show.report (what `symnet derive --report` writes:
                  the page, the verdicts and the generated module), the package symnet
                  itself and __main__

A later stage reaches an earlier one by registration, not by import: the derive stage's
package registers the layers' and networks' handlers; symnet.show.page registers the page
Jupyter shows of a derivation (notation.ShowsAsLatex); declarations render themselves for
Jupyter through notation alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "symnet"

STAGES = [
    ("foundation", ["symnet.errors", "symnet.files", "symnet.timeout", "symnet.symbols",
                    "symnet.primitives", "symnet.algebra", "symnet.tidy", "symnet.notation",
                    "symnet.matrix.text", "symnet.target_kinds", "symnet.stable_rows",
                    "symnet.cases"]),
    ("runtime", ["symnet.runtime"]),
    ("declare", ["symnet.declare", "symnet.matrix.layers", "symnet.index", "symnet.catalog"]),
    ("derive", ["symnet.derive", "symnet.matrix", "symnet.index.derive", "symnet.index.chain",
                "symnet.index.layer_path", "symnet.index.page", "symnet.display", "symnet.show"]),
    ("verify", ["symnet.verify", "symnet.index.check", "symnet.index.layer_sizes"]),
    ("codegen", ["symnet.codegen", "symnet.index.arrays", "symnet.index.lower",
                 "symnet.index.lower_chain",
                 "symnet.index.passes", "symnet.index.contract",
                 "symnet.templating", "symnet.graph", "symnet.show.docstring"]),
    ("cli", ["symnet", "symnet.__main__", "symnet.cli", "symnet.cache", "symnet.loader",
             "symnet.show.report"]),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, package: str) -> list[str]:
    """The module names an import statement names (a `from X import y` may name X.y)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(parent + ([base] if base else []))
        return [base] + [f"{base}.{alias.name}" for alias in node.names]
    return []


def import_graph() -> dict[str, set[str]]:
    """module -> the symnet modules it imports anywhere in its source."""
    known = modules()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = {resolve(t) for node in ast.walk(ast.parse(path.read_text()))
                   for t in _imported(node, package)}
        # a module's own enclosing packages are loaded before it anyway: `from symnet.catalog
        # import activations` inside symnet.catalog.layers names a sibling, not a cycle
        graph[name] = {t for t in targets if t is not None and t != name
                       and not name.startswith(t + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm,
    iterative: the graph is small, but recursion depth should not depend on it)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def stage_of(module: str) -> int | None:
    """The index in STAGES of the stage whose longest listed prefix names `module`."""
    best, found = -1, None
    for number, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), number
    return found


def backward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a module to one of a later stage, as 'a (stage) -> b (stage)'."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if stage_of(target) > stage_of(module):
                found.append(f"{module} ({STAGES[stage_of(module)][0]}) -> {target} "
                             f"({STAGES[stage_of(target)][0]})")
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_every_module_has_a_stage():
    unplaced = sorted(m for m in modules() if stage_of(m) is None)
    assert not unplaced, f"place these in STAGES: {unplaced}"


def test_no_stage_imports_a_later_one():
    assert backward_imports(import_graph()) == []


def test_a_planted_backward_import_is_found():
    """A scalar declaration importing display (as symnet/spec.py did, for Jupyter) is a
    declaration reaching into the derive stage; display importing it is the flow."""
    graph = {"symnet.declare.scalar": {"symnet.display"},
             "symnet.display": {"symnet.declare.scalar"}}
    assert backward_imports(graph) == [
        "symnet.declare.scalar (declare) -> symnet.display (derive)"]


def test_the_cycle_finder_sees_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count():
    """vjp imports the derive stage's entry inside a function only: still an edge."""
    assert "symnet.derive.dispatch" in import_graph()["symnet.matrix.vjp"]


def test_the_old_homes_of_declarations_give_the_same_objects():
    """Files written before symnet/declare/ import the layer's and the tensor layer's
    declaration language from symnet.matrix.layers and symnet.index (the README taught
    both): the same objects, so a declaration made through either is the catalog's kind."""
    import symnet.declare.layer as layer
    import symnet.declare.tensor as tensor
    from symnet.index import IndexLayer, indices, over, tensors
    from symnet.index import size as index_size
    from symnet.matrix.layers import Layer, broadcast, elementwise, size

    assert (Layer, broadcast, elementwise, size) == (layer.Layer, layer.broadcast,
                                                    layer.elementwise, layer.size)
    assert (IndexLayer, indices, over, tensors, index_size) == (
        tensor.IndexLayer, tensor.indices, tensor.over, tensor.tensors, tensor.size)


#: the modules whose import reaches symnet.derive, which imports layers', networks' and
#: pages' modules back to register them: each must import first, in a fresh interpreter
REGISTERING = ["symnet.derive", "symnet.derive.scalar", "symnet.derive.dispatch",
               "symnet.matrix.vjp", "symnet.matrix.network_derive", "symnet.matrix.explicit",
               "symnet.display", "symnet.show.page", "symnet.show.scalar",
               "symnet.show.matrix", "symnet.declare.layer",
               "symnet.declare.network", "symnet.declare.scalar"]


@pytest.mark.parametrize("first", REGISTERING)
def test_a_module_imported_first_loads_and_every_derivation_displays(first):
    """A registering package imports modules that import it back (at run time, not in the
    graph above: importing symnet.derive.dispatch runs symnet/derive/__init__.py first).
    Whichever is imported first, none may be met half loaded; and then derive covers every
    level and each derivation shows as LaTeX in Jupyter."""
    code = (f"import {first}\nfrom symnet.catalog import CATALOG\n"
            f"from symnet.derive import derivation_of, derive\n"
            f"from symnet.declare.network import Network\n"
            f"assert derivation_of.dispatch(Network).__name__ == 'derive_network'\n"
            f"for name in ('relu', 'affine'):\n"
            f"    assert derive(CATALOG[name])._repr_latex_().startswith('$$'), name\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


#: imports each module named in argv first, in a fork of an interpreter that has loaded only
#: the third-party packages (the slow part, once): a module met half loaded by a cycle of
#: imports fails there, whichever module of the cycle comes first
FIRST_IMPORT = """
import importlib, os, sys, traceback
import jinja2, numpy, sympy
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1]:
        failed.append(name)
print(" ".join(failed))
"""


def failing_first_imports(names, cwd=ROOT) -> list[str]:
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORT, *names], capture_output=True,
                          text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_half_loaded_import_is_found(tmp_path):
    """a imports b, which imports a name of a: a imported first is met half loaded."""
    (tmp_path / "planted_a.py").write_text("import planted_b\nNAME = 1\n")
    (tmp_path / "planted_b.py").write_text("from planted_a import NAME\n")
    assert failing_first_imports(["planted_a", "planted_b"], cwd=tmp_path) == ["planted_a"]


def test_every_module_of_symnet_imports_first():
    """Each module imported first into a fresh interpreter loads (symnet.__main__ runs the
    command line instead). symnet.matrix.entrywise, when it lived there, did not: it
    imported symnet.verify, whose package imported the matrix checks, which imported
    entrywise half loaded."""
    names = sorted(name for name in modules() if name != "symnet.__main__")
    assert failing_first_imports(names) == []



def imports_of_test_modules(folder: Path) -> list[str]:
    """'file: module' for each import of a test module (test_*.py) by a test module."""
    found = []
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names
                      if n.split(".")[-1].startswith("test_") and n.split(".")[0] in
                      ("tests", n)]   # tests.test_x or test_x; not jax.test_util
    return found


def test_no_test_module_imports_another():
    """Shared helpers live in tests/helpers.py, layer_helpers.py, fused_helpers.py and
    conftest.py: test_adam_passes imported test_fused_optimizers, so collecting one file
    ran the other's module code too."""
    assert imports_of_test_modules(Path(__file__).parent) == []


def test_a_test_module_importing_another_is_found(tmp_path):
    (tmp_path / "test_one.py").write_text("from tests.test_two import helper\n")
    (tmp_path / "test_two.py").write_text("import numpy\n")
    assert imports_of_test_modules(tmp_path) == ["test_one.py: tests.test_two"]
