"""Every catalog entry, swept: it derives, its hand derivations hold, its kinks are explicit."""

import pytest
import sympy as sp

from symnet.catalog import REGISTRY
from symnet.declare.scalar import Activation
from symnet.derive import ActivationDerivation
from symnet.verify import PROBED, PROVED, check_primitives

from .conftest import derivation_of, verdicts_of

NAMES = list(REGISTRY)
ACTIVATIONS = [n for n, d in REGISTRY.items() if isinstance(d, Activation)]
LECTURE_CATALOG = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout",
                   "svm", "hinge", "softmax_ce", "squared_error", "l2"]


def test_catalog_holds_the_lecture_entries():
    assert set(LECTURE_CATALOG) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_entry_has_a_hand_derivation(name):
    assert REGISTRY[name].hand, f"{name} carries no hand derivation to check"


@pytest.mark.parametrize("name", NAMES)
def test_every_verdict_is_proved_or_probed(name):
    verdicts = verdicts_of(name)
    assert verdicts
    for v in verdicts:
        assert v.status in (PROVED, PROBED), str(v)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_are_closed_forms_without_half_steps(name):
    derivation = derivation_of(name)
    if isinstance(derivation, ActivationDerivation):
        exprs = list(derivation.derivatives.values())
    else:
        exprs = [derivation.gradient] + [j for _, j in derivation.jacobians]
    for expr in exprs:
        assert not expr.has(sp.Derivative, sp.Piecewise, sp.DiracDelta, sp.Max, sp.Min)
        for step in expr.atoms(sp.Heaviside):
            assert len(step.args) == 2 and step.args[1] in (0, 1), f"{name}: {step}"


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_kinks_are_declared_where_the_forward_has_one(name):
    decl = REGISTRY[name]
    has_kink = decl.forward.has(sp.Max, sp.Min, sp.Abs, sp.Piecewise)
    assert bool(decl.kinks) == has_kink


def test_stable_primitives_equal_their_naive_forms():
    verdicts = check_primitives()
    assert {v.status for v in verdicts} == {PROVED}, [str(v) for v in verdicts]
    for primitive in ("logsumexp", "softmax", "softplus", "sigmoid"):
        assert any(v.claim.startswith(primitive) for v in verdicts), primitive


# --- target kinds: one home --------------------------------------------------------------


def test_target_kinds_are_spelled_only_in_their_own_module():
    """No module but symnet/target_kinds.py writes a target kind as a string literal: the
    others import its constants. ("real" and "sign" are left out: they are also the names of a
    sympy assumption and of a numpy function.)"""
    import ast
    from pathlib import Path

    from symnet.target_kinds import CLASS_INDEX, ONE_HOT

    package = Path(__file__).resolve().parents[1] / "symnet"
    spelled = [f"{path.relative_to(package)}:{node.lineno}: {node.value!r}"
               for path in sorted(package.rglob("*.py")) if path.name != "target_kinds.py"
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, ast.Constant) and node.value in (ONE_HOT, CLASS_INDEX)]
    assert spelled == []


# --- one registry ----------------------------------------------------------------------------


def test_every_old_registry_is_a_view_of_the_one_registry():
    from symnet.catalog import CATALOG, DECLARATIONS, LAYER_REGISTRY, STEPS

    views = (REGISTRY, LAYER_REGISTRY, CATALOG, STEPS)
    declared = {id(d) for d in DECLARATIONS.declarations}
    seen = {id(d) for view in views for d in view.values()}
    assert seen == declared
    assert CATALOG == DECLARATIONS.of_kind(*{d.kind for d in CATALOG.values()})


def test_a_name_gives_its_first_declaration_and_a_view_by_kind_the_others():
    from symnet.catalog import CATALOG, DECLARATIONS, LAYER_REGISTRY

    assert DECLARATIONS["relu"] is REGISTRY["relu"] is CATALOG["relu"]
    assert LAYER_REGISTRY["relu"].kind == "layer"
    assert LAYER_REGISTRY["relu"].activation is REGISTRY["relu"]


def test_training_steps_are_registered_but_not_listed():
    from symnet.catalog import CATALOG, STEPS

    from .helpers import GENERATED

    assert {d.kind for d in STEPS.values()} == {"step"}
    assert not set(STEPS) & set(CATALOG)
    written = {p.stem for p in (GENERATED / "networks").glob("*.py")} - {"__init__", "blas"}
    assert set(STEPS) == written


def test_the_catalog_imports_no_code_generation():
    import ast
    from pathlib import Path

    catalog = Path(__file__).resolve().parents[1] / "symnet" / "catalog"
    imported = [f"{path.name}: {node.module}" for path in sorted(catalog.glob("*.py"))
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "symnet.codegen")]
    assert imported == []
