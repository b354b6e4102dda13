"""A one-line progress bar with the loss and accuracy (no dependency beyond the stdlib)."""

from __future__ import annotations

import sys


class ProgressBar:
    def __init__(self, total: int, stream=None, width: int = 24):
        self.total, self.width = max(1, total), width
        self.stream = stream if stream is not None else sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.shown = -1

    def update(self, history) -> None:
        done = history.epochs
        tenth = done * 10 // self.total
        if not self.live and tenth == self.shown and done != self.total:
            return          # into a file or pipe: a line every tenth of the run
        self.shown = tenth
        filled = self.width * done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        line = (f"epoch {done:>{len(str(self.total))}}/{self.total} [{bar}] "
                f"loss {history.loss[-1]:.4f}  train acc {history.train_accuracy[-1]:.3f}")
        if history.test_accuracy:
            line += f"  test acc {history.test_accuracy[-1]:.3f}"
        self.stream.write(("\r" + line) if self.live else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
