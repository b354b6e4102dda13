"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: str | Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_output(option: str, path: str | Path, folder: bool = False) -> Path:
    """`path` as given to `option`, if it can be written as a file (or, with `folder`, as a
    folder): it is not already the other kind, and its nearest existing parent is a folder
    symnet may write into. Checked before a run starts, so that a long run is never lost to
    its output path; a full disk can still only be met when writing."""
    from symnet.errors import OutputError

    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "a file"
        raise OutputError(f"{option} {path}: is {kind}; give a "
                          f"{'folder' if folder else 'file name'}")
    parent = next(p for p in [path.parent, *path.parent.parents] if p.exists())
    if not parent.is_dir():
        raise OutputError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write into {parent} (permission denied)")
    return path
