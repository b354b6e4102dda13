"""What a row of the table of stable primitives holds (`symnet.primitives.TABLE`), and how
a row's spelling becomes source text.

A row is one primitive, in the spirit of autograd's ``defvjp`` lines: its naive formula,
the stable form that computes the same value without overflow (the identity naive ==
stable is what `symnet check` proves), its spelling in each target's source, and the
comment that generated code computing it carries. Everything that knows a primitive reads
its row: the declaration's sympy class (its naive formula), the verifier (the identity),
code generation (the spelling and the comment), the graph's gates (the formula).

A spelling is a template of the primitive's arguments: ``{0}`` is the first argument's
text, ``{0:neg}`` the text of its negation as the printer writes it (``-x``, ``b - a``).
It is keyed by target name (``"numpy"``), so another target is another entry of the same
row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

#: the sides of zero a form with max, |u| or cases is proved on: there it is smooth
SIDES = (("{} > 0", 1, sp.Interval.open(0, sp.oo)), ("{} < 0", -1, sp.Interval.open(-sp.oo, 0)))


@dataclass(frozen=True)
class StableRow:
    """One stable primitive: naive(*arguments) == stable(*arguments) on `domain`."""

    name: str
    #: the symbols `naive` and `stable` are written in, for the identity
    arguments: tuple
    #: the textbook formula, which may overflow
    naive: Callable[..., sp.Expr]
    #: the same value written so that nothing overflows (exp of -|u| only, a max shifted out)
    stable: Callable[..., sp.Expr]
    #: the identity naive == stable, as `symnet check` states it
    claim: str
    #: target name -> the source of the stable form (a template of the arguments)
    spelling: dict[str, str]
    #: the comment above generated code that computes it; None: it explains itself
    why: str | None
    #: the sympy class a declaration writes for it, whose identity `symnet check` proves
    #: (None: a form that only lowering writes, or a plain function of other rows)
    function: type | None = None
    #: the stable form has a max, |u| or cases: proved on each side of u = 0, where smooth
    by_sides: bool = False
    #: where the (first) argument ranges
    domain: sp.Set = field(default=sp.Reals)

    def sides(self) -> list[tuple[str, int]]:
        """(what the side is, the sign of u there) for each side of 0 within the domain."""
        return [(side.format(self.arguments[0]), sign) for side, sign, where in SIDES
                if self.domain.is_superset(where)]

    def spell(self, target: str, operands: list) -> str:
        """The source of the stable form in `target` of the printed `operands`."""
        return self.spelling[target].format(*operands)


class Operand:
    """An argument as a spelling takes it: ``{0}`` its text, ``{0:neg}`` its negation's,
    printed only if the spelling asks for it."""

    def __init__(self, text: str, negated: Callable[[], str]):
        self.text, self.negated = text, negated

    def __format__(self, spec: str) -> str:
        if spec == "neg":
            return self.negated()
        if spec:
            raise ValueError(f"a spelling's argument takes no format {spec!r} but neg")
        return self.text


def printed_operands(printer, args) -> list[Operand]:
    """The arguments of a primitive as `printer` prints them (and their negations)."""
    return [Operand(printer._print(a), lambda a=a: printer._print(-a)) for a in args]


def named_operands(names) -> list[Operand]:
    """Arguments that are plain names (a helper's parameter x): -x is their negation."""
    return [Operand(name, lambda name=name: f"-{name}") for name in names]


def lambdified(row: StableRow, printer, args) -> str:
    """The numpy spelling for sympy's lambdify, each ``np.f`` as the printer names numpy's f
    (lambdify imports numpy under its own name)."""
    text = row.spell("numpy", printed_operands(printer, args))
    return re.sub(r"\bnp\.(\w+)", lambda m: printer._module_format(f"numpy.{m[1]}"), text)
