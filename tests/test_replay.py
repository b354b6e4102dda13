"""The `symnet` entry point (symnet.cli.replay): a whole-catalog command already run with the
same code, libraries and files is replayed from disk; anything else runs again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from symnet import cache
from symnet.cli import replay
from tests.helpers import ROOT


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Each call of the real command, recorded; the command prints its arguments and
    exits with 1 (a refuted claim) so that the status is replayed too."""
    monkeypatch.delenv("SYMNET_NO_CACHE")
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    calls = []

    def command(argv):
        calls.append(list(argv))
        print("ran", *argv)
        return 1

    monkeypatch.setattr("symnet.cli.main", command)
    return calls


@pytest.mark.parametrize("argv, expected", [
    (["check"], {"": "check"}),
    (["check", "--json"], {"": "check", "--json": True}),
    (["generate", "--check", "--reduction", "sum"],
     {"": "generate", "--check": True, "--reduction": "sum"}),
    (["generate", "-o=out"], {"": "generate", "-o": "out"}),
    (["check", "relu"], None),                 # a name: its file may import anything
    (["check", "--help"], None),
    (["derive", "relu"], None),
    (["generate", "--reduction"], None),       # the value is missing: argparse explains
    ([], None),
])
def test_which_command_lines_are_replayable(argv, expected):
    assert replay.options(argv) == expected


def test_a_command_runs_once_then_is_replayed_with_its_status(runs, capsys):
    assert replay.main(["check", "--json"]) == 1
    first = capsys.readouterr()
    assert replay.main(["check", "--json"]) == 1
    assert capsys.readouterr() == first and first.out == "ran check --json\n"
    assert runs == [["check", "--json"]]
    replay.main(["check"])                          # another command line: another record
    assert len(runs) == 2


def test_changed_code_runs_the_command_again(runs, monkeypatch):
    replay.main(["list"])
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "a declaration changed")
    replay.main(["list"])
    assert len(runs) == 2


def test_generate_watches_the_files_of_its_folder(runs, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "relu.py").write_text("one\n")
    replay.main(["generate", "--check", "-o", str(folder)])
    replay.main(["generate", "--check", "-o", str(folder)])
    assert len(runs) == 1
    (folder / "relu.py").write_text("edited by hand\n")
    replay.main(["generate", "--check", "-o", str(folder)])
    assert len(runs) == 2


def test_a_run_that_changes_its_folder_is_not_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SYMNET_NO_CACHE")
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    folder, calls = tmp_path / "out", []

    def writes_a_file(argv):
        calls.append(argv)
        folder.mkdir(exist_ok=True)
        (folder / f"module{len(calls)}.py").write_text("new\n")
        return 0

    monkeypatch.setattr("symnet.cli.main", writes_a_file)
    for _ in range(2):
        replay.main(["generate", "-o", str(folder)])
    assert len(calls) == 2


def test_names_and_a_cache_turned_off_always_run(runs, monkeypatch):
    replay.main(["check", "relu"])
    replay.main(["check", "relu"])
    monkeypatch.setenv("SYMNET_NO_CACHE", "1")
    replay.main(["check"])
    replay.main(["check"])
    assert len(runs) == 4


def test_a_damaged_record_is_ignored(runs, tmp_path):
    replay.main(["check"])
    for record in (tmp_path / "cache" / "results" / "commands").glob("*.json"):
        record.write_text("{not json")
    replay.main(["check"])
    assert len(runs) == 2


def test_a_reader_that_goes_away_ends_the_command_quietly(monkeypatch):
    """`symnet list | head`: the pipe closes, the command exits 141 without a traceback."""
    def reader_gone(argv):
        raise BrokenPipeError

    redirected = []
    monkeypatch.setattr("symnet.cli.main", reader_gone)
    monkeypatch.setattr("symnet.cli.replay.os.dup2", lambda *args: redirected.append(args))
    monkeypatch.setattr("sys.stdout", type("Stdout", (), {"fileno": lambda self: 1})())
    assert replay.main(["derive", "relu"]) == 141 and len(redirected) == 1


#: a fresh interpreter: a record of `symnet list` is written, then the console script's entry
#: point replays it; what it imported meanwhile is printed
REPLAY_IN_A_FRESH_PROCESS = """
import sys
from symnet.cli import replay
found = replay.options(["list"])
digest = replay.record_key(found, None, replay.folder_state(None))
record = {"stdout": "replayed\\n", "stderr": "", "status": 0}
replay.cache.write_entry(replay.record_path(digest), digest, record)
status = replay.main(["list"])
print(status, *sorted(m for m in ("sympy", "symnet.catalog", "symnet.derive") if m in sys.modules))
"""


def test_a_replayed_command_imports_no_sympy(tmp_path):
    """symnet.cli is a package whose commands import sympy: the entry point inside it
    (symnet.cli.replay, and symnet/cli/__init__.py on the way) must not import them."""
    env = {**os.environ, "SYMNET_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    env.pop("SYMNET_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", REPLAY_IN_A_FRESH_PROCESS], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["replayed", "0"]
