"""Where the jinja2 templates are, in a source checkout and in an installed wheel, and
where a checkout's generated/ folder is.

The templates live at the top of the repository (`templates/`); a wheel ships them as
the package data `symnet/templates/` (see `[tool.setuptools]` in pyproject.toml).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

_PACKAGE = Path(__file__).resolve().parent


def templates_dir() -> Path:
    for candidate in (_PACKAGE.parent / "templates", _PACKAGE / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("symnet's templates/ folder is missing from this installation")


def checkout_generated() -> Path | None:
    """The generated/ folder of the source checkout symnet runs from; None in an installed
    wheel, where `symnet generate` needs -o DIR."""
    checkout = _PACKAGE.parent
    generated = checkout / "generated"
    return generated if (checkout / "pyproject.toml").is_file() and generated.is_dir() else None


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one jinja2 environment: strict about undefined names, no autoescaping (the
    output is Python, not HTML), and no trailing-newline surprises."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
