"""Writing files so that a failure never leaves a half-written one behind, and holding a
Ctrl-C back while something must be finished whole."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from pathlib import Path


def usual_file_mode() -> int:
    """The mode `open()` would give a new file: 0666 minus the umask (0644 under umask 022).
    mkstemp makes its file 0600, private, which reports, drawings and graph code are not."""
    try:   # Linux says the umask without changing it, which os.umask cannot
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8, newlines as given) as write_bytes_atomically does, without the
    flush to the disk: what is kept is whole or absent, and can be made again."""
    write_bytes_atomically(path, text.encode("utf-8"), durable=False)


def write_bytes_atomically(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to a temporary file beside `path` (`durable`: flushed to the disk), then
    rename it into place with the mode open() would give it. On any error (a full disk,
    Ctrl-C) the temporary file is removed and `path` is as it was; an OSError names `path`,
    not the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            os.chmod(temporary, usual_file_mode())
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())   # a full disk may only say so here, not on write
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class DeferredInterrupts:
    """While entered (in the main thread, where SIGINT's handler is Python's default), a
    Ctrl-C only sets `requested`; `check()`, called where the work is whole (between two
    training steps, after a tree is written), raises the KeyboardInterrupt then. A second
    Ctrl-C raises at once and sets `forced`: the work it broke may be torn. Elsewhere
    (another thread, a caller's own SIGINT handler) nothing changes."""

    def __init__(self):
        self.requested = self.forced = False
        self.previous = None

    def __enter__(self) -> DeferredInterrupts:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._hold)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _hold(self, signum, frame) -> None:
        if self.requested:
            self.forced = True
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

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
