"""Errors that speak the user's language: the declaration, the symbol, the problem.

Every error symnet raises on purpose is a `SymnetError`; the command line turns it
into one readable message and exit status 2, never a sympy traceback.
"""


class SymnetError(Exception):
    """Base class: a problem with what the user asked for, not a bug in symnet."""


class DeclarationError(SymnetError):
    """A declaration (activation, loss, regulariser, hand derivation) is malformed."""

    def __init__(self, declaration: str, problem: str):
        self.declaration = declaration
        self.problem = problem
        super().__init__(f"declaration {declaration!r}: {problem}")


class DerivationError(DeclarationError):
    """sympy could not differentiate a declaration into a closed form."""


class LoadError(SymnetError):
    """A FILE:NAME reference, or a catalog name, could not be resolved."""


class DataError(SymnetError):
    """Training data that cannot be used: wrong shapes, NaN or inf, unknown labels."""


class OutputError(SymnetError):
    """A path to write to (--save, --plot, --report, -o) that cannot be written."""


def install_hint(extra: str) -> str:
    """How to install one of symnet's extras (pyproject.toml), spelled one way in every
    message: from PyPI, or from a clone of the repository."""
    return f'pip install "symnet[{extra}]" (in a clone: pip install -e ".[{extra}]")'
