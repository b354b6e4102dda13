"""symnet's cache of symbolic results (symnet.cache): an unchanged declaration is served
from disk, a changed one is derived, checked and generated again, never stale."""

from __future__ import annotations

import pytest

from symnet import cache
from symnet.cli import main
from symnet.cli.parallel import kept_or_computed

MINE = """\
import sympy as sp
from symnet import Activation, Gradient
from symnet.symbols import x

bent = Activation("bent", {forward}, inputs=x,
                  hand=[Gradient({gradient}, label="my derivative")])
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMNET_NO_CACHE")
    monkeypatch.setenv("SYMNET_CACHE", str(tmp_path / "cache"))
    return tmp_path


def declare(folder, forward="x + sp.sqrt(x**2 + 1)", gradient="1 + x/sp.sqrt(x**2 + 1)"):
    path = folder / "mine.py"
    path.write_text(MINE.format(forward=forward, gradient=gradient))
    return f"{path}:bent"


def generated(folder, reference, capsys) -> str:
    assert main(["generate", reference, "-o", str(folder / "out")]) == 0
    capsys.readouterr()
    return (folder / "out" / "activations" / "bent.py").read_text()


def test_an_unchanged_declaration_comes_from_the_cache(workspace, capsys, monkeypatch):
    reference = declare(workspace)
    first = generated(workspace, reference, capsys)
    assert main(["check", reference]) == 0
    assert len(list((workspace / "cache" / "results").rglob("*.json"))) == 2

    def no_derivation(*args):
        raise AssertionError("derived again although nothing changed")

    monkeypatch.setattr("symnet.codegen.emit.module_file", no_derivation)
    monkeypatch.setattr("symnet.cli.check.check", no_derivation)
    (workspace / "out" / "activations" / "bent.py").unlink()
    assert generated(workspace, reference, capsys) == first
    assert main(["check", reference]) == 0


def test_a_changed_declaration_is_derived_and_generated_again(workspace, capsys):
    reference = declare(workspace)
    before = generated(workspace, reference, capsys)
    assert main(["check", reference]) == 0
    reference = declare(workspace, forward="x - sp.sqrt(x**2 + 1)")   # the gradient now wrong
    after = generated(workspace, reference, capsys)
    assert after != before and "x - np.sqrt(x**2 + 1)" in after
    assert main(["check", reference]) == 1                  # refuted, not the cached verdict
    assert "refuted" in capsys.readouterr().out


def test_the_key_is_the_declarations_content_and_symnets_code():
    from symnet.catalog import CATALOG

    relu, tanh = CATALOG["relu"], CATALOG["tanh"]
    assert cache.key("verdicts", relu) != cache.key("verdicts", tanh)
    assert cache.key("verdicts", relu) != cache.key("module", relu)
    assert cache.key("module", relu, "mean") != cache.key("module", relu, "sum")
    assert len(cache.code_fingerprint()) == 64
    assert cache.content(relu.forward) != cache.content(tanh.forward)


def test_off_computes_every_time(workspace, monkeypatch):
    monkeypatch.setenv("SYMNET_NO_CACHE", "1")
    calls = []
    for _ in range(2):
        kept_or_computed(["stable primitives"], cache.kept_verdicts, cache.keep_verdicts,
                               lambda item: calls.append(item) or [])
    assert len(calls) == 2 and cache.root() is None
