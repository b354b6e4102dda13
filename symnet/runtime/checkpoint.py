"""Saving a training run to one .npz file and resuming it exactly."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from symnet.errors import DataError
from symnet.files import write_bytes_atomically
from symnet.runtime.train import History

#: epoch_losses: the losses of the steps done in the epoch in progress (a Ctrl-C stops after
#: any step), so that a resumed run skips them and averages the epoch as an unbroken one
_HISTORY_FIELDS = ("loss", "epoch_losses", "train_accuracy", "test_accuracy", "steps",
                   "epochs", "seconds")


def save_checkpoint(path: str | Path, params: dict, optimizer, history: History,
                    settings: dict) -> Path:
    """Parameters, optimiser state, history and the run's settings; written atomically: a
    failure (a full disk) leaves no temporary file and `path` as it was."""
    path = Path(path)
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"optimizer/{k}": v for k, v in optimizer.state().items()})
    meta = {"history": {k: getattr(history, k) for k in _HISTORY_FIELDS}, "settings": settings}
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        write_bytes_atomically(path, buffer.getvalue())
    except OSError as exc:
        raise DataError(f"cannot write the checkpoint {path}: {exc.strerror or exc}; nothing "
                        f"was saved") from None
    return path


def load_checkpoint(path: str | Path):
    """(params, optimizer state, history, settings) from a checkpoint file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as stored:
            params = {k.split("/", 1)[1]: stored[k] for k in stored.files
                      if k.startswith("param/")}
            state = {k.split("/", 1)[1]: stored[k] for k in stored.files
                     if k.startswith("optimizer/")}
            meta = json.loads(str(stored["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a symnet checkpoint ({exc or type(exc).__name__})") \
            from None
    try:
        return params, state, History(**meta["history"]), dict(meta["settings"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a symnet checkpoint (its meta record: "
                        f"{type(exc).__name__}: {exc})") from None


def check_compatible(path, params: dict, saved: dict) -> None:
    """The network being resumed must have the saved parameters' names and shapes."""
    extra = sorted(set(saved) - set(params))
    if extra:
        raise DataError(f"{path}: has parameter(s) {', '.join(extra)}, which this network "
                        f"does not; it was saved from another network")
    for name, value in params.items():
        if name not in saved:
            raise DataError(f"{path}: has no parameter {name}; it was saved from another "
                            f"network")
        if saved[name].shape != value.shape:
            raise DataError(f"{path}: parameter {name} has shape {saved[name].shape} but this "
                            f"network's is {value.shape}")
