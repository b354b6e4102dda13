"""Issue 13, section 2: the cache never serves what a fresh run would not. Its key holds the
library versions and a user's file with its local modules; an entry that is damaged,
altered or of the wrong shape is absent; `symnet train` never imports a module file it did
not just compare with the text it generated; a shared cache folder is refused."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from symnet import cache
from symnet.cli import main, replay
from symnet.cli.parallel import kept_or_computed

SOFTPLUS = """\
import sympy as sp
from symnet import Activation, Gradient
from symnet.symbols import x


class f(sp.Function):
    def fdiff(self, argindex=1):
        return {fdiff}

    def _eval_evalf(self, prec):
        return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)

    def _numpycode(self, printer):
        return f"np.logaddexp(0, {{printer._print(self.args[0])}})"


soft = Activation("soft", f(x), inputs=x,
                  hand=[Gradient(1 / (1 + sp.exp(-x)), label="my derivative")])
"""
RIGHT = "1 / (1 + sp.exp(-self.args[0]))"
WRONG = "2 / (1 + sp.exp(-self.args[0]))"          # the same length: the same file size

BENT = """\
import sympy as sp
from symnet import Activation, Gradient, Loss
from symnet.symbols import x

bent = Activation("bent", x + sp.sqrt(x**2 + 1), inputs=x,
                  hand=[Gradient(1 + x/sp.sqrt(x**2 + 1), label="my derivative")])
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMNET_NO_CACHE")
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    return tmp_path


def entries(workspace) -> list:
    return sorted(p for p in (workspace / "cache" / "results").rglob("*.json"))


def checked(reference: str, capsys) -> tuple[int, str]:
    status = main(["check", reference])
    return status, capsys.readouterr().out


# --- the key ---------------------------------------------------------------------------------


def test_another_library_version_is_another_key(workspace, monkeypatch):
    from symnet.catalog import CATALOG

    calls = []

    def verdicts(decl):
        calls.append(decl)
        return []

    def run():
        kept_or_computed([CATALOG["relu"]], cache.kept_verdicts, cache.keep_verdicts,
                               verdicts)

    run()
    run()
    assert len(calls) == 1                           # kept
    before = cache.key("verdicts", CATALOG["relu"])
    monkeypatch.setattr(cache, "library_versions", lambda: "python 3.11; sympy 1.99",
                        raising=False)
    assert cache.key("verdicts", CATALOG["relu"]) != before
    run()
    assert len(calls) == 2                           # not served across library versions


def test_editing_a_user_functions_fdiff_changes_the_verdict(workspace, capsys, monkeypatch):
    """srepr names the class `f` but holds neither its fdiff nor its printer: the key holds
    the file's bytes. The edit keeps the file's size and time, so neither the cache nor a
    bytecode file beside it (written here: Python writes them by default) can tell the two
    versions apart by those."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = workspace / "soft.py"
    path.write_text(SOFTPLUS.format(fdiff=RIGHT))
    reference = f"{path}:soft"
    status, out = checked(reference, capsys)
    assert status == 0 and "proved   my derivative" in out
    assert checked(reference, capsys)[0] == 0        # served from the cache: the same
    when = path.stat().st_mtime_ns
    path.write_text(SOFTPLUS.format(fdiff=WRONG))
    os.utime(path, ns=(when, when))
    status, out = checked(reference, capsys)
    assert status == 1 and "refuted  my derivative" in out


def test_editing_a_local_module_the_file_imports_changes_the_verdict(workspace, capsys,
                                                                       monkeypatch):
    """The class lives in a helper module next to the file: its bytes are in the key too."""
    monkeypatch.syspath_prepend(str(workspace))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    helper = workspace / "softhelper.py"
    helper.write_text(SOFTPLUS.format(fdiff=RIGHT).split("\n\nsoft = ")[0] + "\n")
    path = workspace / "uses_helper.py"
    path.write_text(SOFTPLUS.split("\n\nclass f")[0] + "\nfrom softhelper import f\n\n"
                    "soft = " + SOFTPLUS.split("\n\nsoft = ")[1])
    reference = f"{path}:soft"
    assert checked(reference, capsys)[0] == 0
    helper.write_text(SOFTPLUS.format(fdiff=WRONG).split("\n\nsoft = ")[0] + "\n")
    monkeypatch.delitem(sys.modules, "softhelper")  # as a new process would import it
    status, out = checked(reference, capsys)
    assert status == 1 and "refuted  my derivative" in out


# --- entries ---------------------------------------------------------------------------------


def generate(workspace, reference: str) -> str:
    assert main(["generate", reference, "-o", str(workspace / "out")]) == 0
    return (workspace / "out" / "activations" / "bent.py").read_text()


def test_a_module_entry_of_the_wrong_shape_is_absent(workspace, capsys):
    """{"unexpected": true} crashed every later generate until the cache was deleted."""
    (workspace / "mine.py").write_text(BENT)
    reference = f"{workspace / 'mine.py'}:bent"
    fresh = generate(workspace, reference)
    [entry] = entries(workspace)
    for planted in ('{"unexpected": true}', {"unexpected": True},
                    ["../../escaped.py", "print('hi')\n"], ["activations/bent.py"]):
        entry.write_text(planted if isinstance(planted, str)     # sealed: the wrong shape
                         else cache.sealed(entry.stem, planted))
        (workspace / "out" / "activations" / "bent.py").unlink()
        assert generate(workspace, reference) == fresh, planted
        assert not (workspace / "escaped.py").exists()
    assert cache.unsealed(entry.read_text(), entry.stem)[1] == fresh   # computed, kept again


def test_an_altered_verdict_is_not_served(workspace, capsys):
    (workspace / "mine.py").write_text(BENT.replace("1 + x/sp", "1 - x/sp"))   # refuted
    reference = f"{workspace / 'mine.py'}:bent"
    assert checked(reference, capsys)[0] == 1
    [entry] = entries(workspace)
    kept = entry.read_text()
    entry.write_text(kept.replace('"refuted"', '"proved"'))   # altered, its hash kept
    assert checked(reference, capsys)[0] == 1
    sealed = json.loads(kept)
    sealed["payload"] = [dict(v, status="proved") for v in sealed["payload"]]
    sealed["sha256"] = cache._seal_hash(entry.stem, sealed["payload"])
    entry.write_text(json.dumps(dict(sealed, key="0" * 64)))   # another entry's seal
    assert checked(reference, capsys)[0] == 1
    for planted in ([{"claim": "x"}], [{"claim": 1, "status": "proved", "detail": "",
                                        "counterexample": None}], {"a": 1}):
        entry.write_text(cache.sealed(entry.stem, planted))
        assert checked(reference, capsys)[0] == 1, planted


def test_an_altered_replay_record_is_not_replayed(workspace, monkeypatch, capsys):
    calls = []

    def command(argv):
        calls.append(argv)
        print("1 refuted")
        return 1

    monkeypatch.setattr("symnet.cli.main", command)
    replay.main(["list"])
    [record] = (workspace / "cache" / "results" / "commands").glob("*.json")
    kept = record.read_text()
    for altered in (kept.replace("1 refuted", "all proved").replace(": 1", ": 0"),
                    json.dumps({"stdout": "all proved\n", "stderr": "", "status": 0}),
                    {"stdout": 1, "status": 0}, {"stdout": "", "stderr": "", "status": 7}):
        record.write_text(altered if isinstance(altered, str)    # sealed: the wrong shape
                          else cache.sealed(record.stem, altered))
        assert replay.main(["list"]) == 1, altered
    assert len(calls) == 5 and "all proved" not in capsys.readouterr().out


# --- modules symnet train imports ----------------------------------------------------------


def user_loss(workspace) -> str:
    return f"{Path(__file__).parents[1] / 'examples' / 'my_declarations.py'}:smoothed_ce"


@pytest.mark.parametrize("damage", [
    lambda text: 'raise RuntimeError("planted module ran")\n',
    lambda text: text[: len(text) // 2],               # a torn write
    lambda text: text.replace("def loss", "def loss_renamed"),
])
def test_train_rewrites_a_damaged_module_instead_of_importing_it(workspace, damage):
    from symnet.cli.train import resolve_module

    reference = user_loss(workspace)
    _, module = resolve_module("losses", reference)
    [target] = (workspace / "cache" / "modules").rglob("*.py")
    text = target.read_text()
    target.write_text(damage(text))
    _, again = resolve_module("losses", reference)
    assert target.read_text() == text and hasattr(again, "loss")


# --- the folder's permissions --------------------------------------------------------------


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_cache_folder_is_created_private(workspace, capsys):
    (workspace / "mine.py").write_text(BENT)
    assert checked(f"{workspace / 'mine.py'}:bent", capsys)[0] == 0
    folders = [workspace / "cache", workspace / "cache" / "results",
               entries(workspace)[0].parent]
    assert [mode(f) for f in folders] == [0o700] * 3


def refused(status: int, err: str) -> str:
    assert status == 2 and err.startswith("symnet: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("loosen", ["group", "others"])
def test_a_cache_folder_others_may_write_is_refused(workspace, capsys, loosen):
    (workspace / "cache").mkdir()
    os.chmod(workspace / "cache", 0o770 if loosen == "group" else 0o703)
    (workspace / "mine.py").write_text(BENT)
    status = main(["check", f"{workspace / 'mine.py'}:bent"])
    assert "writable by group or others" in refused(status, capsys.readouterr().err)
    assert replay.main(["check"]) == 2                 # the whole catalog, before replaying
    assert "writable by group or others" in refused(2, capsys.readouterr().err)


def test_a_cache_folder_of_another_user_is_refused(workspace, capsys, monkeypatch):
    (workspace / "cache" / "results").mkdir(parents=True)
    monkeypatch.setattr("symnet.cache.os.geteuid", lambda: os.stat(workspace).st_uid + 1)
    assert replay.main(["list"]) == 2
    assert "belongs to another user" in refused(2, capsys.readouterr().err)


def test_a_cache_that_is_a_file_is_refused(workspace, capsys):
    (workspace / "cache").write_text("not a folder\n")
    assert replay.main(["list"]) == 2
    assert "not a folder" in refused(2, capsys.readouterr().err)


def test_train_runs_no_module_planted_in_a_shared_cache(workspace, capsys):
    """A .py planted in a shared SYMNET_CACHE was executed by `symnet train`."""
    from symnet.cli.train import resolve_module

    reference = user_loss(workspace)
    resolve_module("losses", reference)
    [target] = (workspace / "cache" / "modules").rglob("*.py")
    target.write_text(f"open({str(workspace / 'ran')!r}, 'w')\n")
    os.chmod(workspace / "cache" / "modules", 0o777)
    status = main(["train", "--loss", reference, "--epochs", "1", "--json"])
    assert "writable by group or others" in refused(status, capsys.readouterr().err)
    assert not (workspace / "ran").exists()


def test_a_users_file_runs_as_its_own_module(workspace):
    """It runs from the bytes the key holds, as Python would import it: none of symnet's
    own `from __future__` imports leak into it (annotations are evaluated)."""
    from symnet.loader import load_file

    (workspace / "mine.py").write_text(BENT + "size: int = 1\nassert __annotations__['size'] "
                                              "is int, __annotations__\n")
    assert list(load_file(str(workspace / "mine.py"))) == ["bent"]
