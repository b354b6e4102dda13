"""Writing files so that a failure never leaves a half-written one behind: one file
(write_atomically), a whole tree (replace_tree); holding a Ctrl-C back while something must
be finished whole; judging an output path before a run."""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import shutil
import signal
import sys
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


# --- replacing a tree --------------------------------------------------------------------
#
# A tree is replaced as a whole. A sibling copy of it (hard links: an unchanged file
# costs nothing, and a changed one is unlinked before it is written, never written through)
# takes the new files, then is swapped with the tree: in one step where Linux offers it
# (renameat2 RENAME_EXCHANGE), else in two renames, undone if the second fails. Whatever
# stops a generate (an error, Ctrl-C, a kill), the tree is the old one or the new one; a
# kill can leave a sibling folder behind, which the next generate removes, or moves back
# when it is the old tree and the tree itself is missing (stopped between two renames).

STAGED, OLD = "symnet-new", "symnet-old"   # roles of the sibling folders
#: left out of the copy: bytecode of the old modules, and temporary files of older symnets
NOT_COPIED = shutil.ignore_patterns("__pycache__", ".*.tmp")


def read_or_none(path: Path) -> str | None:
    """The text of `path`, or None where there is no such file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _sibling(root: Path, role: str, pid: int | None = None) -> Path:
    return root.with_name(f".{root.name}.{role}.{os.getpid() if pid is None else pid}")


def _running(pid: int) -> bool:
    """Whether another process with this id runs (its sibling folder is in use)."""
    if pid == os.getpid() or os.name != "posix":   # Windows' os.kill would end the process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _recover(root: Path) -> None:
    """Clear what a stopped generate left beside `root` (see the section's comment)."""
    prefix = f".{root.name}."
    for leftover in sorted(root.parent.glob(f"{glob.escape(prefix)}symnet-*.*")):
        role, _, pid = leftover.name[len(prefix):].partition(".")
        if role not in (STAGED, OLD) or not pid.isdigit() or _running(int(pid)):
            continue
        if role == OLD and not root.exists():
            os.rename(leftover, root)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:   # a file system without hard links
        shutil.copy2(source, target)


def _stage(staged: Path, root: Path, files: dict[str, str], changed: list[str]) -> None:
    """A copy of the tree at `root`, at `staged`, with the changed files written into it."""
    if root.exists():
        shutil.copytree(root, staged, symlinks=True, copy_function=_link_or_copy,
                        ignore=NOT_COPIED)
    else:
        staged.mkdir()
    for rel in changed:
        target = staged / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)   # a hard link to the old tree's file
        with open(target, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(files[rel])


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux's renameat2 with RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):   # a C library older than glibc 2.28
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_cwd, exchange = -100, 2   # AT_FDCWD, RENAME_EXCHANGE
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _swap(staged: Path, root: Path) -> None:
    """Put the staged tree at `root`; the old one is left at `staged` or at the OLD sibling."""
    if not root.exists():
        os.rename(staged, root)
    elif not _exchange(staged, root):
        old = _sibling(root, OLD)
        os.rename(root, old)
        try:
            os.rename(staged, root)
        except BaseException:
            os.rename(old, root)
            raise


def _refuse(root: Path) -> None:
    from symnet.errors import OutputError

    if root.exists() and not root.is_dir():
        raise OutputError(f"cannot write into {root}: it is not a folder")
    here = Path.cwd().resolve()
    if here == root or root in here.parents:
        raise OutputError(f"cannot write into {root}: the folder is replaced as a whole and "
                          f"the current folder is inside it; run from outside it")


def replace_tree(root: Path, files: dict[str, str]) -> list[str]:
    """Replace the tree at `root` with one where `files` (relative path -> text) are written
    (all else it holds is kept), as a whole or not at all; returns the relative paths of the
    files that changed (none changed: nothing is written). A Ctrl-C meanwhile is raised
    once the tree is whole; an OSError (a full disk) leaves the old tree. A file added to
    the tree by someone else while it is replaced is lost with the old tree."""
    root = Path(root).resolve()
    _recover(root)
    changed = [rel for rel, text in files.items() if read_or_none(root / rel) != text]
    if not changed:
        return []
    _refuse(root)
    missing = [folder for folder in root.parents if not folder.exists()]   # innermost first
    with DeferredInterrupts() as interrupts:
        try:
            root.parent.mkdir(parents=True, exist_ok=True)
            _stage(_sibling(root, STAGED), root, files, changed)
            _swap(_sibling(root, STAGED), root)
        finally:   # whatever stopped it: our sibling folders go (the old tree comes back
            _recover(root)   # if it was moved aside), and so do the folders made for it
            if not root.exists():
                for folder in missing:
                    _remove_empty(folder)
    interrupts.check()
    return changed


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
