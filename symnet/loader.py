"""Find a declaration by catalog name or as ``path/to/file.py:name``.

A user's file is run as a module of its own; any error in it is reported with the
file and line, never as a traceback from symnet's insides.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

import sympy as sp
from sympy import ShapeError

from symnet import cache
from symnet.catalog import CATALOG, DECLARATION_TYPES, declarations_in
from symnet.errors import DeclarationError, LoadError


def split_reference(reference: str) -> tuple[str | None, str]:
    """'dir/file.py:name' -> ('dir/file.py', 'name'); 'relu' -> (None, 'relu')."""
    path, colon, name = reference.rpartition(":")
    if colon and path.endswith(".py"):
        return path, name
    return None, reference


def _suggest(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def load_file(path: str) -> dict:
    """The declarations a user's .py file defines, by name."""
    file = Path(path)
    if not file.is_file():
        raise LoadError(f"{path}: no such file")
    module_name = "symnet_user_" + hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    try:
        # run the bytes read, which the cache keys its results by: an import could run a
        # bytecode file of an edit that kept the file's size within the same second
        executed = file.read_bytes()
        with modules_beside(file):
            exec(compile(executed, str(file), "exec", dont_inherit=True), vars(module))
    except SyntaxError as exc:
        raise LoadError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except DeclarationError as exc:
        raise DeclarationError(exc.declaration,
                               f"{exc.problem} (in {path}{_line_in(exc, file)})") from None
    except SystemExit as exc:  # sys.exit() in a declaration file would end symnet itself
        raise LoadError(f"{path}{_line_in(exc, file)}: the file exits while it is loaded "
                        f"(SystemExit({exc.code!r})); a declaration file only declares") from None
    except ShapeError as exc:
        raise LoadError(f"{path}{_line_in(exc, file)}: matrix shapes do not fit: "
                        f"{_shape_problem(exc)}") from None
    except Exception as exc:  # a user's file can raise anything; report where
        raise LoadError(f"{path}{_line_in(exc, file)}: {type(exc).__name__}: "
                        f"{_one_line(exc)}") from None
    finally:
        sys.modules.pop(module_name, None)
    found = _declarations_of(path, module)
    _remember_origins(path, file, module, found)
    cache.note_loaded(found.values(), executed)
    return found


class _FolderFinder(importlib.abc.MetaPathFinder):
    """Finds top-level modules in one folder, before the rest of the path (as `python
    file.py` puts the file's folder first on sys.path)."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def find_spec(self, name, path=None, target=None):
        if path is not None:      # a submodule: its package's own __path__ finds it
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [self.folder])
        # a folder without __init__.py (plots/, data/) is no helper, and must not hide a
        # package of that name installed further down the path
        return spec if spec is not None and spec.origin is not None else None


@contextmanager
def modules_beside(file: Path):
    """While a declaration file loads, the modules in its folder are importable (a helper
    module of the user's, `from helpers import f`), wherever symnet runs from; sys.path is
    left alone. A helper stays imported, like any module, so that symnet.cache counts its
    bytes in the key of the file's results (cache.local_modules)."""
    finder = _FolderFinder(file.resolve().parent)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder in sys.meta_path:          # unless the user's file removed it itself
            sys.meta_path.remove(finder)


def _shape_problem(exc: Exception) -> str:
    """sympy's ShapeError in words: its product check carries the two sizes that differ."""
    match exc.args:
        case (str(), int() | sp.Integer() as left, int() | sp.Integer() as right):
            return (f"a product's left factor has {left} columns but its right factor "
                    f"{right} rows")
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _declarations_of(path: str, module) -> dict:
    """The file's declarations by name; two different declarations of one name (two
    declared alike, or one imported from the catalog and one declared) are an error, since
    either would silently hide the other."""
    found = declarations_in(module)
    for name, first in found.items():
        others = [v for v, value in vars(module).items()
                  if getattr(value, "name", None) == name and value is not first
                  and isinstance(value, DECLARATION_TYPES)]
        if others:
            bound = [v for v, value in vars(module).items() if value is first] + others
            raise LoadError(f"{path}: two declarations are named {name!r} (variables "
                            f"{', '.join(bound)}); rename one, names must be unique")
    return found


#: where each declaration loaded from a user's file was written: name -> "path:line"
ORIGINS: dict[str, str] = {}


def _remember_origins(path: str, file: Path, module, found: dict) -> None:
    """The line of the top-level assignment that binds each declaration, so that an error
    found later (deriving, checking, generating) can name it."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return
    lines = {target.id: node.lineno for node in tree.body if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)}
    for variable, value in vars(module).items():
        if variable in lines and any(value is decl for decl in found.values()):
            ORIGINS[value.name] = f"{path}:{lines[variable]}"


def declared_at(error: Exception) -> str:
    """' (declared at FILE.py:LINE)' for an error about a declaration of a user's file
    that does not say where it is yet; '' otherwise."""
    origin = ORIGINS.get(getattr(error, "declaration", None) or "")
    if origin is None or origin.rpartition(":")[0] in str(error):
        return ""
    return f" (declared at {origin})"


def _line_in(exc: BaseException, file: Path) -> str:
    """':LINE' of the last frame of the traceback that lies in the user's file."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == file.resolve():
            line = f":{frame.lineno}"
    return line


def resolve_all(reference: str) -> list:
    """NAME or FILE.py:NAME -> [that declaration]; FILE.py -> every declaration in it."""
    if reference.endswith(".py"):
        found = load_file(reference)
        if not found:
            raise LoadError(f"{reference} declares no Activation, Loss or Regularizer")
        return list(found.values())
    return [resolve(reference)]


def resolve(reference: str):
    """The declaration a command-line NAME refers to."""
    path, name = split_reference(reference)
    if path is None:
        if name not in CATALOG:
            raise LoadError(f"{name!r} is not in the catalog{_suggest(name, CATALOG)} "
                            f"(see `symnet list`; a file of your own is FILE.py:NAME)")
        return CATALOG[name]
    found = load_file(path)
    if name not in found:
        listed = ", ".join(found) or "none"
        raise LoadError(f"{path} declares no {name!r}{_suggest(name, found)} "
                        f"(it declares: {listed})")
    return found[name]
