"""Results of the symbolic stages kept on disk, keyed by content: never stale.

A key is a hash of everything the result depends on:
  * the declaration itself (sympy's exact `srepr` of each of its fields, recursively; a
    catalog entry by its name, since the catalog is code),
  * for a declaration loaded from a user's file, the bytes of that file and of every local
    module loaded with it (neither installed nor symnet's own): srepr names a user's
    `sympy.Function` subclass but holds neither its `fdiff` nor its printer,
  * what was asked of it (verdicts, or a module for a reduction and a reference),
  * a fingerprint of symnet's own code and templates,
  * the versions of Python, sympy, mpmath, numpy and jinja2.
Any change is another key, so an entry is never served for anything but the exact input
that made it. Entries are JSON files written atomically, each holding its key and a hash
of its content; one whose key, hash or shape is wrong is treated as absent (computed
again and overwritten), never served.

The folder is created private (0700); one that belongs to another user, or that group or
others may write in, is refused (CacheError: one line, exit 2), as ssh refuses such a key:
whoever can write there chooses what symnet reports and what `symnet train` runs.

Only the command line uses the cache (`symnet check`, `symnet generate`): the library
functions always compute, so tests that patch a stage see the patched result.
SYMNET_CACHE names the cache's root (default ~/.cache/symnet, shared with `symnet train`'s
modules); SYMNET_NO_CACHE=1 turns it off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import site
import sys
import sysconfig
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from symnet.errors import SymnetError
from symnet.files import write_atomically

_PACKAGE = Path(__file__).resolve().parent
#: the libraries whose versions change what symnet derives, checks and renders
LIBRARIES = ("sympy", "mpmath", "numpy", "jinja2")


class CacheError(SymnetError):
    """symnet's cache folder cannot be trusted or used."""


def home() -> Path:
    """symnet's folder for what it keeps between runs: $SYMNET_CACHE or ~/.cache/symnet
    (results/ for this cache, modules/ for the modules `symnet train` generates)."""
    return Path(os.environ.get("SYMNET_CACHE") or Path.home() / ".cache" / "symnet")


def enabled() -> bool:
    return not os.environ.get("SYMNET_NO_CACHE")


def root() -> Path | None:
    """The folder of cached results (checked private), or None when caching is off."""
    return folder("results") if enabled() else None


def folder(*parts: str) -> Path:
    """home()/parts..., each level created private and checked (private_folder)."""
    path = private_folder(home())
    for part in parts:
        path = private_folder(path / part)
    return path


def private_folder(path: Path) -> Path:
    """`path`, created 0700 if missing; CacheError if it is no folder, belongs to another
    user or group or others may write in it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise CacheError(f"{path}: not a folder, so no place for symnet's cache (set "
                         f"SYMNET_CACHE to a folder of your own, or SYMNET_NO_CACHE=1)") from None
    except OSError:
        return path           # a read-only home: nothing kept there, nothing read back
    _refuse_if_shared(path)
    return path


def _refuse_if_shared(path: Path) -> None:
    if not hasattr(os, "geteuid"):
        return                # no owners and modes to compare (Windows)
    try:
        info = path.stat()
    except OSError:
        return
    if info.st_uid != os.geteuid():
        raise CacheError(f"{path}: symnet's cache folder belongs to another user (uid "
                         f"{info.st_uid}); set SYMNET_CACHE to a folder of your own, or "
                         f"SYMNET_NO_CACHE=1")
    if info.st_mode & 0o022:
        raise CacheError(f"{path}: symnet's cache folder is writable by group or others "
                         f"(mode {info.st_mode & 0o777:o}); `chmod go-w` it, or set "
                         f"SYMNET_CACHE to a private folder")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of every source file of symnet and every template, by path and bytes."""
    from symnet.templating import templates_dir

    digest = hashlib.sha256()
    files = [(p.relative_to(_PACKAGE).as_posix(), p) for p in sorted(_PACKAGE.rglob("*.py"))
             if "__pycache__" not in p.parts]
    files += [(f"templates/{p.name}", p) for p in sorted(templates_dir().glob("*.j2"))]
    for name, path in files:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def library_versions() -> str:
    """Python's version and those of the libraries that derive and render (LIBRARIES)."""
    from importlib import metadata

    found = [f"python {sys.version}"]
    for name in LIBRARIES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return "; ".join(found)


# --- a user's file: its bytes and those of the local modules it loaded ------------------------

#: id(declaration) -> (declaration, hash of the file that declared it and its local modules)
_LOADED: dict[int, tuple[object, str]] = {}


def note_loaded(declarations, executed: bytes) -> None:
    """Remember, for each declaration a user's file defines, the file's bytes as executed
    and those of every local module loaded so far (symnet.loader calls this)."""
    if not enabled():
        return
    digest = hashlib.sha256(executed)
    for name, path in local_modules():
        try:
            data = path.read_bytes()
        except OSError:
            data = b"unreadable"
        digest.update(b"\0" + name.encode() + b"\0" + data)
    for declaration in declarations:
        _LOADED[id(declaration)] = (declaration, digest.hexdigest())


def local_modules() -> list[tuple[str, Path]]:
    """(name, file) of every loaded module that is neither Python's, an installed
    package's nor symnet's own (those are in the key already): a user's helpers. All of
    them, not only those the file imports: a superset never keys an entry too loosely."""
    installed = _installed_folders()
    found = []
    for name, module in sorted(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name == "__main__" or not isinstance(file, str) or file.startswith(installed):
            continue                          # the prefix test first: resolving is slower
        path = Path(file).resolve()
        if path.is_file() and not str(path).startswith(installed):
            found.append((name, path))
    return found


@lru_cache(maxsize=1)
def _installed_folders() -> tuple[str, ...]:
    """Python's, the installed packages' and symnet's folders, each as given and resolved,
    ending in a separator (prefixes of the files in them)."""
    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib", "scripts")}
    folders |= {*site.getsitepackages(), site.getusersitepackages(), str(_PACKAGE)}
    both = {form for f in folders for form in (os.path.abspath(f), os.path.realpath(f))}
    return tuple(sorted(os.path.join(f, "") for f in both))


def _loaded_from(declaration) -> str:
    kept = _LOADED.get(id(declaration))
    return kept[1] if kept is not None and kept[0] is declaration else ""


def content(value) -> str:
    """A text that determines `value` exactly: sympy objects by srepr, declarations (data
    classes) field by field, containers item by item in their order."""
    import sympy as sp  # here: replaying a whole command (symnet.cli.replay) needs no sympy

    if isinstance(value, (sp.Basic, sp.MatrixBase)):
        return sp.srepr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(f"{f.name}={content(getattr(value, f.name))}"
                           for f in dataclasses.fields(value))
        return f"{type(value).__qualname__}({fields})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{content(k)}: {content(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "[" + ", ".join(content(v) for v in value) + "]"
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
    return repr(value)


def _catalog_entry(declaration) -> bool:
    """Whether `declaration` is the catalog's own entry of its name: symnet's code (in the
    fingerprint) then determines it, and its name is content enough."""
    from symnet.catalog import CATALOG, STEPS

    name = getattr(declaration, "name", None)
    return name is not None and (CATALOG.get(name) is declaration
                                 or STEPS.get(name) is declaration)


def key(what: str, declaration, *extra) -> str:
    if _catalog_entry(declaration):
        shown = f"catalog:{declaration.name}"
    else:
        shown = f"{content(declaration)}\nfrom {_loaded_from(declaration) or 'no file'}"
    text = "\n".join([what, code_fingerprint(), library_versions(), shown, *map(repr, extra)])
    return hashlib.sha256(text.encode()).hexdigest()


# --- entries: sealed with their key and a hash of their content -------------------------------


def entry_path(digest: str, subfolder: str | None = None) -> Path | None:
    """The file of the entry `digest` (in results/SUBFOLDER, by default results/ and its
    first two hex digits), every folder on the way checked private; None when off."""
    if not enabled():
        return None
    return folder("results", subfolder or digest[:2]) / f"{digest}.json"


def _seal_hash(digest: str, payload) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{digest}\n{canonical}".encode()).hexdigest()


def sealed(digest: str, payload) -> str:
    """The text of an entry: `payload` (JSON values), its key and a hash of both."""
    payload = json.loads(json.dumps(payload, default=str))   # as a reader will see it
    return json.dumps({"key": digest, "sha256": _seal_hash(digest, payload),
                       "payload": payload})


def unsealed(text: str, digest: str):
    """The payload of an entry's text; ValueError unless it is sealed with this key and
    its hash matches its content (damaged, altered, or another entry's)."""
    entry = json.loads(text)
    if not isinstance(entry, dict) or set(entry) != {"key", "sha256", "payload"}:
        raise ValueError("not a sealed entry")
    if entry["key"] != digest or entry["sha256"] != _seal_hash(digest, entry["payload"]):
        raise ValueError("an entry of another key, or altered")
    return entry["payload"]


def read_entry(path: Path | None, digest: str, decode: Callable):
    """decode(payload) of the entry at `path`, or None if it is missing, damaged, altered
    or of the wrong shape (decode raises ValueError, KeyError or TypeError)."""
    if path is None:
        return None
    try:
        return decode(unsealed(path.read_text(encoding="utf-8"), digest))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None


def write_entry(path: Path | None, digest: str, payload) -> None:
    if path is None:
        return
    try:
        write_atomically(path, sealed(digest, payload))
    except (OSError, TypeError, ValueError):
        pass                        # a read-only home, or a result JSON cannot hold: no entry


def lookup(what: str, declaration, decode: Callable, *extra):
    """The result kept for this exact input, or None (results are lists and tuples)."""
    if not enabled():
        return None
    digest = key(what, declaration, *extra)
    return read_entry(entry_path(digest), digest, decode)


def store(what: str, declaration, result, encode: Callable, *extra) -> None:
    if not enabled():
        return
    digest = key(what, declaration, *extra)
    try:
        payload = encode(result)
    except (TypeError, ValueError):
        return
    write_entry(entry_path(digest), digest, payload)


# --- what the command line caches -------------------------------------------------------------


def _encode_verdicts(verdicts) -> list:
    return [v.as_dict() for v in verdicts]


def _decode_verdicts(data) -> list:
    """The verdicts of an entry; ValueError for any other shape (a hand-edited or foreign
    entry must not reach the reports, which index into it)."""
    from symnet.verify import PROBED, PROVED, REFUTED, Verdict

    _require(isinstance(data, list), "verdicts are a list")
    found = []
    for d in data:
        _require(isinstance(d, dict) and set(d) - {"sizes"} == {"claim", "status", "detail",
                                                               "counterexample"},
                 "a verdict's fields")
        _require(d.get("sizes") is None or isinstance(d["sizes"], str), "a verdict's sizes")
        _require(isinstance(d["claim"], str) and isinstance(d["detail"], str)
                 and d["status"] in (PROVED, REFUTED, PROBED), "a verdict's values")
        _require(d["counterexample"] is None or _is_counterexample(d["counterexample"]),
                 "a counterexample")
        found.append(Verdict(d["claim"], d["status"], d["detail"], d["counterexample"] or {},
                             d.get("sizes")))
    return found


def _is_counterexample(value) -> bool:
    return (isinstance(value, dict) and {"point", "lhs", "rhs"} <= set(value)
            and isinstance(value["point"], dict))


def _decode_module(data) -> tuple[str, str]:
    """(relative path, text) of an entry; ValueError unless the path is FOLDER/NAME.py of
    plain names (generate writes it under -o: no absolute path, no ..)."""
    _require(isinstance(data, list) and len(data) == 2
             and all(isinstance(part, str) for part in data), "a module is [path, text]")
    parts = data[0].split("/")
    _require(len(parts) == 2 and parts[1].endswith(".py")
             and all(p.removesuffix(".py").isidentifier() for p in parts), "a module's path")
    return data[0], data[1]


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"a cache entry of the wrong shape: {what}")


def kept_verdicts(declaration) -> list | None:
    """A declaration's verdicts if the cache has them, else None."""
    return lookup("verdicts", declaration, _decode_verdicts)


def keep_verdicts(declaration, verdicts: list) -> None:
    store("verdicts", declaration, verdicts, _encode_verdicts)


def _target(target: str) -> tuple:
    """A target's part of a module's key: none for numpy (its keys as they always were)."""
    return () if target == "numpy" else (target,)


def kept_module_file(source, reduction: str, target: str = "numpy") -> tuple[str, str] | None:
    """A declaration's generated module (symnet generate) for a target, (relative path,
    text), if the cache has it, else None."""
    return lookup("module", source.declaration, _decode_module, source.reference,
                  reduction, *_target(target))


def keep_module_file(source, reduction: str, module: tuple[str, str],
                     target: str = "numpy") -> None:
    store("module", source.declaration, module, list, source.reference, reduction,
          *_target(target))
