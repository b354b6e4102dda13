"""Where the jinja2 templates are, in a source checkout and in an installed wheel, and
where a checkout's generated/ folder is; and the one rule by which the templates place text
into a generated module's docstrings and comments (filters `docstring` and `comment`).

The templates live at the top of the repository (`templates/`); a wheel ships them as
the package data `symnet/templates/` (see `[tool.setuptools]` in pyproject.toml).
"""

from __future__ import annotations

import re
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


# --- text into generated Python ------------------------------------------------------------
# A docstring or comment may hold text a user wrote (an expression given to `symnet graph`, a
# declaration's doc, a symbol's name). It must come out as that text and never end the
# string or comment it sits in: code after a closing triple quote would run on import.

#: a run of three or more of one quote: in a docstring, it could close the string
_QUOTE_RUN = re.compile(r'"{3,}|\'{3,}')
#: where Python's tokenizer ends a line (and with it a comment)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _readable(char: str) -> bool:
    """Whether `char` may stand in a generated file as itself; the others (NUL, \\r, tab,
    other controls, bidi overrides, lone surrogates) are written as escapes."""
    return char == "\n" or char.isprintable()


def _escaped(char: str) -> str:
    """`char` as the escape sequence a Python string reads back as it (\\x00, \\\\)."""
    return char.encode("unicode_escape").decode("ascii")


def _quote_run(match: re.Match) -> str:
    return "".join("\\" + quote for quote in match.group())


def docstring(text, indent: str = "") -> str:
    """`text` (a string, or lines: the first follows the opening quotes, the others get
    `indent`) as a docstring literal, quotes included, closed on a line of its own.

    The literal reads back as exactly that text. It is a raw string where the text has a
    backslash (LaTeX) and a raw string holds it as it stands; otherwise a plain one, with
    every backslash, quote run and unreadable character escaped (plain text needs none)."""
    lines = text.removesuffix("\n").split("\n") if isinstance(text, str) else list(text)
    value = "\n".join([lines[0], *(indent + line for line in lines[1:])]) + "\n" + indent
    if "\\" in value and '"""' not in value and all(map(_readable, value)):
        return f'r"""{value}"""'
    escaped = "".join(c if _readable(c) and c != "\\" else _escaped(c) for c in value)
    return '"""' + _QUOTE_RUN.sub(_quote_run, escaped) + '"""'


def comment(text, prefix: str = "# ") -> str:
    """`text` as `#` comment lines, one per line of the text (a line break inside a line
    would end the comment and start code), unreadable characters escaped."""
    shown = ("".join(c if _readable(c) else _escaped(c) for c in line)
             for line in _LINE_BREAK.split(text))
    return "\n".join((prefix + line).rstrip() for line in shown)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The one jinja2 environment: strict about undefined names, no autoescaping (the
    output is Python, not HTML: the filters `docstring` and `comment` place text), and no
    trailing-newline surprises."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(docstring=docstring, comment=comment)
    return env
