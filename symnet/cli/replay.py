"""The `symnet` command's entry point: a command whose whole result is already on disk is
replayed from there, without importing sympy; any other runs in `symnet.cli.main`, and is
recorded when it may be replayed later. It lives in the package symnet.cli, whose
__init__ imports no command module until a parser is built: a replay imports no sympy.

Replayable are the commands over the whole catalog: `symnet check`, `symnet list` (each
with or without --json) and `symnet generate [--check] [--reduction R] [-o DIR]`. Their
output is a function of
  * the command line,
  * symnet's own code and templates (the catalog is code: `symnet.cache.code_fingerprint`),
  * the versions of Python and of the libraries that derive and render (sympy, mpmath,
    numpy, jinja2),
  * for generate, the bytes of every file in the folder it compares or writes,
and a record's key hashes all of them, so any change is a miss and the command runs again
(with the per-declaration cache of `symnet.cache` for what did not change). A run is
recorded only when it left the folder it watches as it found it (a `generate` that wrote
files is not replayed: the next one, which writes nothing, is). Records are sealed and
kept like the cache's entries (symnet.cache: a damaged, altered or misshapen record is
ignored and the command runs; a shared cache folder is refused). SYMNET_NO_CACHE=1 turns
replay off with the rest of the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from symnet import cache
from symnet.errors import SymnetError

#: command -> its options; those mapped to True take a value
REPLAYABLE = {
    "check": {"--json": False},
    "list": {"--json": False},
    "generate": {"--check": False, "--reduction": True, "-o": True, "--output": True},
}


def options(argv: list[str]) -> dict | None:
    """{option: value} of a replayable command line (the command under ""), else None:
    names of declarations (whose files may import anything), --help or a typo run as
    usual."""
    if not argv or argv[0] not in REPLAYABLE:
        return None
    known, found, rest = REPLAYABLE[argv[0]], {"": argv[0]}, list(argv[1:])
    while rest:
        option, _, value = rest.pop(0).partition("=")
        if option not in known:
            return None
        if known[option] and not value:
            if not rest:
                return None
            value = rest.pop(0)
        found[option] = value or True
    return found


def watched_folder(found: dict) -> Path | None:
    """The folder whose files a generate compares or writes: -o DIR or the checkout's
    generated/ (None when neither exists: the command then runs and explains)."""
    if found[""] != "generate":
        return None
    chosen = found.get("-o") or found.get("--output")
    if chosen:
        return Path(chosen).resolve()
    from symnet.templating import checkout_generated

    return checkout_generated()


def folder_state(folder: Path | None) -> str:
    """A hash of every file under `folder` by relative path and bytes ('' for none)."""
    if folder is None:
        return ""
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def record_key(found: dict, folder: Path | None, state: str) -> str:
    text = "\n".join(["replay", json.dumps(found, sort_keys=True), str(folder), state,
                      cache.code_fingerprint(), cache.library_versions()])
    return hashlib.sha256(text.encode()).hexdigest()


def record_path(digest: str) -> Path | None:
    """The record's file (results/commands/, checked private), None when caching is off."""
    return cache.entry_path(digest, "commands")


def _decode_record(record) -> tuple[str, str, int]:
    if not (isinstance(record, dict) and isinstance(record.get("stdout"), str)
            and isinstance(record.get("stderr"), str) and record.get("status") in (0, 1)):
        raise ValueError("a record of the wrong shape")
    return record["stdout"], record["stderr"], record["status"]


class _Tee(io.TextIOBase):
    """Writes through to a stream and keeps a copy of what passed."""

    def __init__(self, stream):
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def run_and_record(argv: list[str], digest: str, folder: Path | None, state: str) -> int:
    from symnet.cli import main as run

    out, err = _Tee(sys.stdout), _Tee(sys.stderr)
    with redirect_stdout(out), redirect_stderr(err):
        status = run(argv)
    if status in (0, 1) and folder_state(folder) == state:
        record = {"stdout": out.copy.getvalue(), "stderr": err.copy.getvalue(),
                  "status": status}
        cache.write_entry(record_path(digest), digest, record)   # a read-only home: none
    return status


def replay(digest: str) -> int | None:
    """The recorded command's exit status, its output printed again; None if there is no
    usable record (missing, damaged, altered or of the wrong shape)."""
    record = cache.read_entry(record_path(digest), digest, _decode_record)
    if record is None:
        return None
    stdout, stderr, status = record
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return status


def main(argv=None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `symnet list | head`: the reader has gone; no traceback, and nothing more to print
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _main(argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    found = options(argv)
    if found is None or not cache.enabled():
        from symnet.cli import main as run

        return run(argv)
    folder = watched_folder(found)
    state = folder_state(folder)
    digest = record_key(found, folder, state)
    try:
        replayed = replay(digest)
    except SymnetError as exc:          # the cache folder refused (symnet.cache.CacheError)
        print(f"symnet: error: {exc}", file=sys.stderr)
        return 2
    if replayed is not None:
        return replayed
    return run_and_record(argv, digest, folder, state)


if __name__ == "__main__":
    sys.exit(main())
