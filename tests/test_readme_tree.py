"""README.md's "Where things live" matches the tree: every path it names exists, and every
package under symnet/ has an entry (issue 14: the README tree matches the code)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Where things live"

#: a file or folder named in an entry's description: name.py, a glob (lower*.py), bad/
NAMED = re.compile(r"(?<![\w/.-])((?:[\w*]+/)*[\w*]+(?:\.py|/))(?![\w/])")


def tree_entries(readme: str) -> list[tuple[list[str], str]]:
    """(the paths in the first column, the description) of each entry of the section's
    indented block; an entry's description continues on lines indented further."""
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    entries = []
    for line in section.splitlines():
        if not line.startswith("    "):
            continue
        if line[4] != " ":
            column, _, description = line[4:].partition("  ")
            entries.append(([p.strip() for p in column.split(",")], description.strip()))
        elif entries:
            paths, description = entries[-1]
            entries[-1] = (paths, f"{description} {line.strip()}")
    return entries


def entry_paths(paths: list[str]) -> list[Path]:
    """symnet/display.py, report.py: the later names are beside the first."""
    first = ROOT / paths[0]
    return [first] + [first.parent / p for p in paths[1:]]


def named_in(description: str) -> list[str]:
    return NAMED.findall(description)


def exists_near(name: str, folder: Path) -> bool:
    """A name from a description is under the entry's folder, at any depth (blas.py is
    generated/networks/blas.py), or a path from symnet/ (matrix/check.py from verify/)."""
    wanted = name.rstrip("/")
    found = list(folder.glob(f"**/{wanted}")) + list((ROOT / "symnet").glob(wanted))
    return any(p.is_dir() if name.endswith("/") else p.is_file() for p in found)


def missing_paths(readme: str) -> list[str]:
    missing = []
    for paths, description in tree_entries(readme):
        located = entry_paths(paths)
        missing += [str(p.relative_to(ROOT)) for p in located if not p.exists()]
        folder = located[0] if located[0].is_dir() else located[0].parent
        missing += [f"{paths[0]}: {name}" for name in named_in(description)
                    if not exists_near(name, folder)]
    return missing


def unlisted_packages(readme: str) -> list[str]:
    listed = {p.resolve() for paths, _ in tree_entries(readme) for p in entry_paths(paths)}
    packages = {init.parent.resolve() for init in (ROOT / "symnet").rglob("__init__.py")}
    packages.discard((ROOT / "symnet").resolve())
    return sorted(str(p.relative_to(ROOT)) for p in packages - listed)


def test_the_tree_names_only_paths_that_exist():
    assert missing_paths((ROOT / "README.md").read_text()) == []


def test_the_tree_has_every_package_of_symnet():
    assert unlisted_packages((ROOT / "README.md").read_text()) == []


def test_a_stale_or_missing_entry_is_found():
    """The section as it was before symnet/derive.py became a package: the old file is
    missing, the new package unlisted; a description naming a file that is not there too."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    stale = [line for line in section.splitlines() if line.startswith("    symnet/derive/")]
    assert len(stale) == 1
    old = readme.replace(stale[0], "    symnet/derive.py          declaration -> gradients, "
                                    "in_closed_form.py")
    assert "symnet/derive.py" in missing_paths(old)
    assert "symnet/derive.py: in_closed_form.py" in missing_paths(old)
    assert unlisted_packages(old) == ["symnet/derive"]


#: the packages whose docstring is the list of their modules (the others, symnet itself,
#: cli and runtime, describe them in the README's tree instead)
LISTING_PACKAGES = ("catalog", "codegen", "declare", "derive", "graph", "index", "matrix",
                    "show", "verify")

#: a file a docstring names: tensor.py beside it, or symnet/declare/step.py from the root
DOC_NAMED = re.compile(r"(?<![\w/.-])((?:\w+/)*\w+\.py)(?!\w|\.\w)")


def docstring_mismatches(package: Path, docstring: str) -> list[str]:
    """The package's modules its docstring does not name, and the files it names that are
    not there (a bare name is beside the docstring, a path is from the repository's root)."""
    named = DOC_NAMED.findall(docstring)
    here = {p.name for p in package.glob("*.py")} - {"__init__.py"}
    unnamed = sorted(here - {n for n in named if "/" not in n})
    stale = sorted(n for n in named if not ((ROOT / n) if "/" in n else package / n).is_file())
    return [f"{package.name}: {n} not named" for n in unnamed] + \
        [f"{package.name}: {n} is not there" for n in stale]


def test_each_package_docstring_lists_its_modules():
    """issue 14: the codegen package docstring lists its modules (it had no step_elementwise.py;
    symnet/matrix/'s named entrywise.py, check.py and display.py, long gone)."""
    import ast

    found = []
    for name in LISTING_PACKAGES:
        package = ROOT / "symnet" / name
        source = (package / "__init__.py").read_text()
        found += docstring_mismatches(package, ast.get_docstring(ast.parse(source)) or "")
    assert found == []


def test_a_docstring_missing_a_module_or_naming_a_gone_one_is_found():
    package = ROOT / "symnet" / "codegen"
    assert docstring_mismatches(package, "printer.py, gone.py, symnet/declare/step.py") == \
        [f"codegen: {n} not named" for n in sorted(
            p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "printer.py"))] \
        + ["codegen: gone.py is not there"]
