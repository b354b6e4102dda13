"""`symnet ARGS` in a fork of one warm interpreter: a command as a user runs it, without paying
for Python and sympy to start each time.

A test of a command's output, exit status or files needs a process of its own (an exit, a
traceback, what a crash leaves behind), but not a fresh interpreter: most of the second or
two a `python -m symnet` takes is importing sympy and the catalog. The server here imports
them once, then forks one child per command; the child takes the command's folder,
environment and argv, points its stdout and stderr at files, runs symnet's entry point (the
console script's, symnet.cli.replay.main) and exits with its status, as `python -m symnet`
would. The server never runs a command itself, so each child starts from the same state.

What a fork cannot give stays a real subprocess (tests/helpers.symnet decides): another
PYTHONPATH, PYTHONHASHSEED or other interpreter setting, and tests about what an interpreter
imports at startup.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

#: what the server imports before it forks: the libraries and symnet's stages a command
#: loads (the slow part of a start), never the user's files
WARM = ("numpy", "sympy", "jinja2", "mpmath", "symnet.catalog", "symnet.derive",
        "symnet.verify", "symnet.codegen.emit", "symnet.graph.circuit", "symnet.cli",
        "symnet.cli.replay")

#: the server: one request per line on stdin, one reply (the exit status) per line on stdout,
#: written and flushed before the next fork, so a child inherits no buffered reply
SERVER = r"""
import importlib, json, os, sys, traceback
sys.path[0] = os.getcwd()              # as `python -m` puts the folder it starts in
for name in sys.argv[1:]:
    importlib.import_module(name)
import symnet.cli
symnet.cli.build_parser()             # imports every command's module
from symnet.cli.replay import main

def run(request):
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]
    os.environ.clear()
    os.environ.update(request["env"])
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = out if request["stderr"] == request["stdout"] else \
        os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    if os.environ.get("PYTHONUNBUFFERED"):     # as the interpreter would have set it up
        sys.stdout.reconfigure(write_through=True)
        sys.stderr.reconfigure(write_through=True)
    sys.argv = ["symnet", *request["argv"]]
    try:
        status = main(request["argv"])
    except SystemExit as stop:
        status = stop.code
    except BaseException:
        traceback.print_exc()
        status = 1
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return status

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = run(request)
        finally:
            os._exit(status)
    _, waited = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps(os.waitstatus_to_exitcode(waited)) + "\n")
    sys.stdout.flush()
"""


class CommandServer:
    """One warm interpreter (code from `pythonpath`, or as installed) that forks per command."""

    def __init__(self, cwd: Path, env: dict):
        self.env = dict(env)
        self.cwd = Path(cwd)
        self.process: subprocess.Popen | None = None
        self.folder: Path | None = None     # the children's output files

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER, *WARM], cwd=self.cwd, env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.folder = Path(tempfile.mkdtemp(prefix="symnet-commands-"))

    def serves(self, env: dict) -> bool:
        """Whether a command in `env` may run here: the interpreter's own settings (PYTHON*
        variables, read at start) are those the server started with."""
        def startup(variables: dict) -> dict:
            return {k: v for k, v in variables.items() if k.startswith("PYTHON")
                    and k != "PYTHONUNBUFFERED"}
        return startup(env) == startup(self.env)

    def run(self, argv: list[str], cwd: Path, env: dict, timeout: float,
            merged: bool = False) -> subprocess.CompletedProcess:
        """`symnet ARGV` in `cwd` with `env`: its status and output (stderr into stdout when
        `merged`), as subprocess.run gives them."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        out, err = self.folder / "stdout", self.folder / "stderr"
        request = {"argv": list(argv), "cwd": str(cwd), "env": dict(env), "stdout": str(out),
                   "stderr": str(out if merged else err)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise subprocess.TimeoutExpired(["symnet", *argv], timeout)
        reply = self.process.stdout.readline()
        if not reply:       # the server died (its traceback went to this process's stderr)
            self.stop()
            raise RuntimeError(f"the command server ended before `symnet {' '.join(argv)}`")
        status = json.loads(reply)
        stdout = out.read_text()
        stderr = "" if merged else err.read_text()
        out.unlink()
        if not merged:
            err.unlink()
        return subprocess.CompletedProcess(["symnet", *argv], status, stdout, stderr)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.process = self.folder = None
