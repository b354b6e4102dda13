"""Issue 13, section 2: the cache never serves what a fresh run would not. Its key holds the
library versions and a user's file with its local modules."""

from __future__ import annotations

import os
import sys

import pytest

from symnet import cache
from symnet.cli import main

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
        cache.kept_or_computed([CATALOG["relu"]], cache.kept_verdicts, cache.keep_verdicts,
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



def test_a_users_file_runs_as_its_own_module(workspace):
    """It runs from the bytes the key holds, as Python would import it: none of symnet's
    own `from __future__` imports leak into it (annotations are evaluated)."""
    from symnet.loader import load_file

    (workspace / "mine.py").write_text(BENT + "size: int = 1\nassert __annotations__['size'] "
                                              "is int, __annotations__\n")
    assert list(load_file(str(workspace / "mine.py"))) == ["bent"]
