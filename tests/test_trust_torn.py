"""Issue 13, section 4: nothing half-written, nothing torn.

A Ctrl-C during training stops after a completed step (its checkpoint resumes to the bits
of an unbroken run); `--save` on a full disk leaves no temporary file and says so in one
line; `symnet generate` replaces its whole output tree or leaves it as it was.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time

import numpy as np
import pytest

from symnet.cli import main
from symnet.runtime.checkpoint import load_checkpoint

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
        from symnet import train_cli
        from symnet.runtime.train import DeferredInterrupts

        self.real, self.after, self.took = train_cli.train, None, None
        self.training, self.lock = False, threading.Lock()
        monkeypatch.setattr(train_cli, "train", self)
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
