"""Issue 13, section 4: nothing half-written, nothing torn.

A Ctrl-C during training stops after a completed step (its checkpoint resumes to the bits
of an unbroken run); `--save` on a full disk leaves no temporary file and says so in one
line; `symnet generate` replaces its whole output tree or leaves it as it was.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from symnet.cli import main
from symnet.runtime.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

# --- training: a Ctrl-C never tears a step -------------------------------------------------

#: a fused step (SGD, the whole batch: an epoch is one step) and two layer-by-layer runs of
#: mini-batches (an interrupt mostly lands in the middle of an epoch)
RUNS = {
    "fused sgd": ["--epochs", "150"],
    "adam, batches": ["--epochs", "30", "--batch-size", "50", "--optimizer", "adam",
                      "--lr", "1e-2"],
    "momentum, batches": ["--epochs", "30", "--batch-size", "50", "--optimizer", "momentum",
                          "--lr", "0.1"],
}
INTERRUPTS = {"fused sgd": 8, "adam, batches": 6, "momentum, batches": 6}   # 20 in all


def train(arguments, save, *more):
    """`symnet train` in this process; its exit status."""
    return main(["train", "--json", *arguments, "--save", str(save), *more])


def stored(path) -> dict:
    """Everything a checkpoint holds but the seconds it took, as bytes to compare."""
    params, state, history, settings = load_checkpoint(path)
    kept = {f"param/{k}": v.tobytes() for k, v in params.items()}
    kept.update({f"optimizer/{k}": np.asarray(v).tobytes() for k, v in state.items()})
    kept.update({f"history/{k}": repr(v) for k, v in vars(history).items()
                 if k not in ("seconds", "stopped", "last_good")})
    return kept


class Interrupter:
    """Wraps the runtime's train() as `symnet train` calls it: times it, and when `after` is
    set, sends SIGINT to the main thread from another thread `after` seconds into it, if it
    is training then: between entering and leaving its DeferredInterrupts (a signal just
    after train() returns would hit the test itself, not training)."""

    def __init__(self, monkeypatch):
        from symnet.cli import train as train_command
        from symnet.runtime.train import DeferredInterrupts

        self.real, self.after, self.took = train_command.train, None, None
        self.training, self.lock = False, threading.Lock()
        monkeypatch.setattr(train_command, "train", self)
        enter, leave = DeferredInterrupts.__enter__, DeferredInterrupts.__exit__

        def entered(interrupts):
            enter(interrupts)
            with self.lock:
                self.training = True
            return interrupts

        def left(interrupts, *exc):
            with self.lock:
                self.training = False
                leave(interrupts, *exc)

        monkeypatch.setattr(DeferredInterrupts, "__enter__", entered)
        monkeypatch.setattr(DeferredInterrupts, "__exit__", left)

    def __call__(self, *args, **kwargs):
        ended = threading.Event()

        def interrupt():
            if self.after is not None and not ended.wait(self.after):
                with self.lock:
                    if self.training:
                        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        sender = threading.Thread(target=interrupt)
        started = time.perf_counter()
        sender.start()
        try:
            return self.real(*args, **kwargs)
        finally:
            self.took = time.perf_counter() - started
            ended.set()
            sender.join()


@pytest.mark.parametrize("name", RUNS)
def test_a_run_interrupted_at_random_moments_resumes_to_the_bits_of_an_unbroken_one(
        name, tmp_path, monkeypatch, capsys):
    arguments, interrupter = RUNS[name], Interrupter(monkeypatch)
    for _ in range(2):   # the second run is timed warm, as the interrupted ones run
        assert train(arguments, tmp_path / "unbroken.npz") == 0
    unbroken, took = stored(tmp_path / "unbroken.npz"), interrupter.took
    stops, statuses = [], []
    for number, after in enumerate(np.random.default_rng(13).uniform(0, took,
                                                                     INTERRUPTS[name])):
        save, resumed = tmp_path / f"stopped{number}.npz", tmp_path / f"resumed{number}.npz"
        interrupter.after = after
        statuses.append(train(arguments, save))      # 0: the run ended before the signal
        interrupter.after = None
        stops.append(load_checkpoint(save)[2].steps)
        assert train(arguments, resumed, "--resume", str(save)) == 0
        assert stored(resumed) == unbroken, f"interrupted {after:.3f} s into a {took:.3f} s run"
    capsys.readouterr()
    assert set(statuses) <= {0, 130} and statuses.count(130) >= 2, statuses
    assert len(set(stops)) > 1, stops      # the interrupts landed at different steps


def test_a_checkpoint_in_the_middle_of_an_epoch_holds_that_epochs_losses(tmp_path):
    from symnet.runtime.checkpoint import save_checkpoint
    from symnet.runtime.optim import SGD
    from symnet.runtime.train import History

    history = History(loss=[1.5], epoch_losses=[0.75, 0.5], steps=5, epochs=1)
    save_checkpoint(tmp_path / "c.npz", {"W1": np.ones(2)}, SGD(), history, {})
    assert load_checkpoint(tmp_path / "c.npz")[2].epoch_losses == [0.75, 0.5]


def test_a_second_ctrl_c_abandons_the_run_without_a_checkpoint(tmp_path, monkeypatch):
    """The first Ctrl-C waits for the step; a second one while it waits raises at once."""
    from symnet.runtime import train as training

    real_check = training.DeferredInterrupts.check

    def twice_then_check(self):
        if not self.requested:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        real_check(self)

    monkeypatch.setattr(training.DeferredInterrupts, "check", twice_then_check)
    with pytest.raises(KeyboardInterrupt):
        train(RUNS["fused sgd"], tmp_path / "never.npz")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert list(tmp_path.iterdir()) == []


# --- --save on a full disk -------------------------------------------------------------


def full_disk(monkeypatch):
    """A file opened through os.fdopen (how symnet.files writes) takes half of what is
    written to it, then fails as a full disk does."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, stream):
            self.stream = stream

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, data):
            self.stream.write(data[:len(data) // 2])
            self.stream.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.stream, name)

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))


def test_save_on_a_full_disk_leaves_no_temporary_file_and_says_so_in_one_line(
        tmp_path, monkeypatch, capsys):
    (tmp_path / "run.npz").write_bytes(b"an older checkpoint")
    full_disk(monkeypatch)
    assert train(["--epochs", "3"], tmp_path / "run.npz") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("symnet: error: "), error
    assert "No space left on device" in error and "nothing was saved" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]
    assert (tmp_path / "run.npz").read_bytes() == b"an older checkpoint"


# --- symnet generate: the whole tree or nothing ------------------------------------------

OLD_TREE = {"__init__.py": "old root\n", "activations/__init__.py": "old kind\n",
            "activations/relu.py": "old relu\n", "losses/__init__.py": "old kind\n",
            "losses/svm.py": "old svm\n", "losses/stray.py": "kept\n"}
NEW_FILES = {"__init__.py": "old root\n", "activations/__init__.py": "new kind\n",
             "activations/relu.py": "new relu\n", "activations/tanh.py": "new tanh\n",
             "layers/__init__.py": "new kind\n", "layers/affine.py": "new affine\n",
             "losses/__init__.py": "old kind\n", "losses/svm.py": "new svm\n"}
NEW_TREE = {**OLD_TREE, **NEW_FILES}


def tree(root) -> dict | None:
    """Every file under `root` (folders too, as None: an empty one shows), or None."""
    if not root.exists():
        return None
    return {p.relative_to(root).as_posix(): p.read_text() if p.is_file() else None
            for p in root.rglob("*") if "__pycache__" not in p.parts and
            (p.is_file() or not any(p.iterdir()))}


def planted(root, files=OLD_TREE):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def writing_code(with_shutil: bool = True) -> set[str]:
    """The files of the writing code: files.py (replace_tree, which generate's write_files
    calls), and shutil (copying and removing trees)."""
    import shutil

    from symnet import files

    return {files.__file__, shutil.__file__} if with_shutil else {files.__file__}


def stopped_at(line: int, stop, files: set[str]):
    """A sys.settrace function calling `stop()` at the `line`-th line run in `files`;
    returns (tracer, count of lines seen)."""
    seen = [0]

    def local(frame, event, arg):
        if event == "line":
            seen[0] += 1
            if seen[0] == line:
                stop()
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename in files else None

    return tracer, seen


def leftovers(root) -> list[str]:
    """What a write left beside or in the tree: sibling folders and temporary files."""
    beside = [p.name for p in root.parent.iterdir() if p.name.startswith(f".{root.name}.")]
    return beside + [p.name for p in root.parent.rglob("*.tmp")]


def write_stopped(root, line: int, stop, with_shutil=True) -> tuple[bool, bool]:
    """write_files(root, NEW_FILES) with `stop()` called at its `line`-th line: (whether it
    got that far, whether it raised KeyboardInterrupt)."""
    from symnet.codegen.emit import write_files

    tracer, seen = stopped_at(line, stop, writing_code(with_shutil))
    sys.settrace(tracer)
    try:
        write_files(root, NEW_FILES)
    except KeyboardInterrupt:
        return seen[0] >= line, True
    finally:
        sys.settrace(None)
    return seen[0] >= line, False


def single_rename(monkeypatch, exchange: bool):
    """Without exchange, the tree is swapped in by two renames (other systems)."""
    if not exchange:
        monkeypatch.setattr("symnet.files._exchange", lambda first, second: False)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two renames"])
def test_a_ctrl_c_at_any_line_of_a_generate_is_raised_once_the_new_tree_is_whole(
        tmp_path, monkeypatch, exchange):
    """Before anything is written it stops there (the old tree); else it is held back."""
    single_rename(monkeypatch, exchange)
    outcomes = []
    for line in itertools.count(1):
        root = planted(tmp_path / f"run{line}" / "generated")
        reached, raised = write_stopped(root, line, lambda: signal.raise_signal(signal.SIGINT),
                                        with_shutil=False)
        found = tree(root)
        assert found in (OLD_TREE, NEW_TREE), f"Ctrl-C at line {line}: {found}"
        outcomes.append("old" if found == OLD_TREE else "new")
        assert leftovers(root) == [], f"Ctrl-C at line {line}"
        assert raised == reached, f"Ctrl-C at line {line}"
        if not reached:
            break
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    old = outcomes.count("old")   # the first lines, until a Ctrl-C is held back
    assert outcomes == ["old"] * old + ["new"] * (len(outcomes) - old), outcomes
    assert len(outcomes) > 2 * old, outcomes


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two renames"])
def test_an_exception_at_any_line_of_a_generate_leaves_the_old_tree_or_the_new_one(
        tmp_path, monkeypatch, exchange):
    """A second Ctrl-C raises at once, here between any two lines of files.py (inside
    shutil's rmtree, a KeyboardInterrupt can make it close a descriptor twice): the tree is
    still whole, and what is left beside it the next run removes."""
    from symnet.codegen.emit import write_files

    def ctrl_c():
        raise KeyboardInterrupt

    single_rename(monkeypatch, exchange)
    seen = {"old": 0, "new": 0}
    for line in itertools.count(1):
        root = planted(tmp_path / f"run{line}" / "generated")
        reached, _ = write_stopped(root, line, ctrl_c, with_shutil=False)
        found = tree(root)
        assert found in (OLD_TREE, NEW_TREE), f"stopped at line {line}: {found}"
        seen["old" if found == OLD_TREE else "new"] += 1
        write_files(root, {})   # the next run, with nothing to write
        assert tree(root) == found and leftovers(root) == [], f"stopped at line {line}"
        if not reached:
            break
    assert seen["old"] > 10 and seen["new"] >= 1, seen


def kills_at_every_line(folder, exchange: bool) -> list[dict]:
    """A generate forked and killed at its 1st, 2nd, ... line of files.py until one runs
    to the end; for each line: whether the tree was whole when killed and after the next
    run, what that run left beside it, and the killed process's exit status."""
    from symnet import files
    from symnet.codegen.emit import write_files

    if not exchange:   # a throwaway process (KILLS): no monkeypatch to undo
        files._exchange = lambda first, second: False
    whole, found = (OLD_TREE, NEW_TREE), []
    for line in itertools.count(1):
        root = planted(folder / f"run{line}" / "generated")
        child = os.fork()
        if child == 0:   # the killed generate: exit 0 if it ran to the end, 9 if stopped
            write_stopped(root, line, lambda: os._exit(9), with_shutil=False)
            os._exit(0)
        status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        killed = tree(root) in whole
        write_files(root, {})   # the next run, with nothing to write
        found.append({"line": line, "status": status, "whole when killed": killed,
                      "whole after": tree(root) in whole, "leftovers": leftovers(root)})
        if status == 0:
            return found


#: runs kills_at_every_line in a fresh interpreter: a fork of pytest's own process, which
#: has loaded torch, jax and every generated module by then, took 25-65 s per test in the
#: whole suite for the 3 s it takes from a process that loaded only symnet
KILLS = """
import json, sys
from pathlib import Path
from tests.test_trust_torn import kills_at_every_line
print(json.dumps(kills_at_every_line(Path(sys.argv[1]), sys.argv[2] == "exchange")))
"""


@pytest.mark.slow   # a fork per line: about 3 s each
@pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked process")
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two renames"])
def test_a_kill_at_any_line_of_a_generate_leaves_a_whole_tree_after_the_next_run(
        tmp_path, exchange):
    """A kill (between any two lines of files.py) runs no handler: what it leaves, the next
    generate's first act repairs."""
    done = subprocess.run([sys.executable, "-c", KILLS, str(tmp_path),
                           "exchange" if exchange else "two renames"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    for run in runs:
        if exchange:   # one rename: even before any repair, a whole tree
            assert run["whole when killed"], run
        assert run["whole after"] and run["leftovers"] == [], run
    assert [run["status"] for run in runs] == [9] * (len(runs) - 1) + [0]
    assert len(runs) > 10


def test_a_full_disk_leaves_neither_a_tree_nor_empty_folders(tmp_path, monkeypatch, capsys):
    """Generating into a new folder: the disk fills on the third file; nothing is left."""
    import builtins

    real_open, written = builtins.open, []

    def filling_open(path, mode="r", *args, **kwargs):
        if "w" in mode:
            written.append(path)
            if len(written) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", filling_open)
    assert main(["generate", "relu", "l2", "-o", str(tmp_path / "new" / "out")]) == 2
    monkeypatch.undo()
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "No space left on device; nothing was changed" in error
    assert len(written) == 3 and list(tmp_path.iterdir()) == []


def test_an_unchanged_tree_is_not_rewritten(tmp_path):
    from symnet.codegen.emit import write_files

    root = planted(tmp_path / "generated", NEW_TREE)
    before = {p: p.stat().st_ino for p in root.rglob("*")}
    assert write_files(root, NEW_FILES) == []
    assert {p: p.stat().st_ino for p in root.rglob("*")} == before


def test_generate_refuses_to_replace_the_folder_it_runs_in(tmp_path, monkeypatch, capsys):
    root = planted(tmp_path / "out")
    monkeypatch.chdir(root / "losses")
    assert main(["generate", "relu", "-o", str(root)]) == 2
    assert "the current folder is inside it" in capsys.readouterr().err
    assert tree(root) == OLD_TREE
