"""The import graph of symnet/, built from the source with function-level imports included:
data flows one way, so no module may reach itself through imports.

One cycle is still known (issue 14, the architecture issue): the declarations' notebook
display, derive's dispatch to the matrix level and the matrix modules' text reach each
other (derive, display, spec and eight modules of matrix/). It is listed here so that the
test fails on any new cycle and on any module joining the known one; when the cycle is
broken, KNOWN_CYCLES goes, and the test then fails on any cycle at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "symnet"

KNOWN_CYCLES = [
    {"symnet.derive", "symnet.display", "symnet.spec", "symnet.matrix.display",
     "symnet.matrix.elementwise", "symnet.matrix.explicit", "symnet.matrix.layers",
     "symnet.matrix.networks", "symnet.matrix.network_derive", "symnet.matrix.text",
     "symnet.matrix.vjp"},
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


def test_no_import_cycle_but_the_known_one():
    found = cycles(import_graph())
    unknown = [sorted(c) for c in found if c not in KNOWN_CYCLES]
    assert not unknown, f"import cycles: {unknown}"
    gone = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"a known cycle changed or is gone; update KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_sees_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count():
    """derive imports the matrix level inside a function: still an edge."""
    assert "symnet.matrix.vjp" in import_graph()["symnet.derive"]
