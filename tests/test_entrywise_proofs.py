"""Entry-by-entry proofs: the cheap normal forms that prove sigmoid layers (exponentials as
atoms, each reparametrised so a sigmoid is one symbol) and must not prove a wrong entry."""

from __future__ import annotations

import sympy as sp

from symnet.verify import PROVED, REFUTED
from symnet.verify.entrywise import Atoms, check_entries, prove_entries

u, v = sp.Symbol("u", real=True), sp.Symbol("v", real=True)


def _sigmoid(x):
    return 1 / (1 + sp.exp(-x))


def test_the_sigmoid_derivative_is_its_output_times_one_minus_it_by_expansion():
    derived = sp.diff(_sigmoid(u), u)           # e^-u / (1 + e^-u)^2
    reusing = _sigmoid(u) * (1 - _sigmoid(u))
    atoms = Atoms()
    assert sp.expand_mul(atoms(derived - reusing)) != 0    # plain expansion cannot tell
    assert sp.expand_mul(atoms.logistic(derived - reusing)) == 0


def test_a_matrix_of_sigmoid_derivatives_is_proved_and_a_wrong_one_refuted():
    derived = sp.Matrix([[sp.diff(_sigmoid(u), u), v * sp.diff(_sigmoid(u + v), v)]])
    reusing = sp.Matrix([[_sigmoid(u) * (1 - _sigmoid(u)),
                          v * _sigmoid(u + v) * (1 - _sigmoid(u + v))]])
    assert prove_entries(derived, reusing)
    assert check_entries("sigmoid'", derived, reusing, {}).status == PROVED
    wrong = sp.Matrix([[_sigmoid(u) * (1 + _sigmoid(u)), reusing[1]]])
    assert not prove_entries(derived, wrong)
    assert check_entries("sigmoid'", derived, wrong, {}).status == REFUTED


def test_the_shared_normal_form_is_the_normal_form_of_each_entry():
    from symnet.verify.entrywise import SharedNormalForm, _steps_only, _with_kinks_as_steps

    step = sp.Heaviside(u - v, 1)
    entries = [u * step ** 2 + sp.Piecewise((u, u > 0), (0, True)),
               sp.Max(0, u) * step + sp.Abs(v), sp.exp(u) * (1 - step)]
    for kinks, normal in ((False, _steps_only), (True, _with_kinks_as_steps)):
        shared = SharedNormalForm(kinks)
        for entry in entries:
            assert sp.expand(shared(entry) - normal(entry)) == 0
            assert not shared(entry).has(sp.Piecewise)
