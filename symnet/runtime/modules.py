"""Finding the generated modules the runtime trains with.

The catalog's modules live in `generated/` (at the top of a source checkout, or shipped
inside the installed package); a user's own modules are loaded from the directory
`symnet generate -o DIR` wrote them to, or, for `symnet train FILE.py:NAME`, run from the
text just generated (load_text).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from symnet.errors import SymnetError

_PACKAGE = Path(__file__).resolve().parents[1]
KINDS = ("activations", "losses", "regularizers", "layers")


class ModuleNotGenerated(SymnetError):
    """A module the runtime needs has not been generated."""


def generated_dir() -> Path:
    for candidate in (_PACKAGE.parent / "generated", _PACKAGE / "generated"):
        if candidate.is_dir():
            return candidate
    raise ModuleNotGenerated("symnet's generated/ folder is missing from this installation")


def folder_package(folder: str | Path) -> str:
    """The name of a package whose modules are the files of `folder`, registered in
    sys.modules on first use: a generated module loaded from its file as a member of it
    imports the modules beside it (a training step's `from .blas import gemm`, the helpers
    written once into networks/). One package per folder, named after its path, so that
    generated/networks and a `symnet generate -o DIR`'s DIR/networks never share a blas."""
    folder = Path(folder).resolve()
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    readable = re.sub(r"\W", "_", folder.name)      # a dot would make a package level
    name = f"symnet_generated_{readable}_{digest}"
    if name not in sys.modules:
        package = ModuleType(name)
        package.__path__ = [str(folder)]
        package.__package__ = name
        sys.modules[name] = package
    return name


def load_path(path: str | Path) -> ModuleType:
    """Import one generated module from its file, as a member of its folder's package."""
    path = Path(path)
    if not path.is_file():
        raise ModuleNotGenerated(f"{path}: no generated module there (run `symnet generate`)")
    name = f"{folder_package(path.parent)}.{path.stem}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def load_text(path: str | Path, text: str, in_package: bool = False) -> ModuleType:
    """The module whose source is `text`, named after its file `path` (for tracebacks):
    executed from `text` itself, so that nothing else written at `path` (nor a bytecode
    file beside it) is ever run in its place. `in_package`: a member of its folder's
    package (folder_package), so that a training step's `from .blas import gemm` finds the
    blas module loaded before it the same way, from its text."""
    path = Path(path)
    name = f"symnet_generated_{path.parent.name}_{path.stem}"
    if in_package:
        package = folder_package(path.parent)
        name = f"{package}.{path.stem}"
    module = ModuleType(name)
    module.__file__ = str(path)
    if in_package:
        module.__package__ = package
    sys.modules[name] = module          # as an import does: the module's code may look for it
    try:
        exec(compile(text, str(path), "exec", dont_inherit=True), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load(kind: str, name: str, directory: str | Path | None = None) -> ModuleType:
    """The generated module `name` of a kind (activations, losses, regularizers, layers)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of module {kind!r}")
    root = Path(directory) if directory is not None else generated_dir()
    for path in (root / kind / f"{name}.py", root / f"{name}.py"):
        if path.is_file():
            return load_path(path)
    raise ModuleNotGenerated(f"no generated {kind[:-1]} {name!r} in {root} "
                             f"(run `symnet generate {name}`)")
