"""Lines of generated code that fit: statements broken at the outermost operator,
docstring text wrapped at spaces. Pure functions of text."""

from __future__ import annotations

import textwrap

#: ruff's line length for the project (pyproject.toml), which generated modules meet
WIDTH = 100
OPEN, CLOSE = "([{", ")]}"
BREAKS_BEFORE = (" + ", " - ", " & ")


def _break_points(text: str) -> list[tuple[int, int]]:
    """(position, bracket depth) where a line may break: before a binary + or - and after
    a comma, never at depth 0 (a break needs an open bracket to continue the line)."""
    points, depth = [], 0
    for n, char in enumerate(text):
        if char in OPEN:
            depth += 1
        elif char in CLOSE:
            depth -= 1
        elif depth and text.startswith(BREAKS_BEFORE, n):
            points.append((n + 1, depth))
        elif depth and char == "," and n + 1 < len(text):
            points.append((n + 2, depth))
    return points


def _enclosed(value: str) -> bool:
    """Whether the whole of `value` sits inside one pair of parentheses."""
    if not value.startswith("("):
        return False
    depth = 0
    for n, char in enumerate(value):
        depth += char in OPEN
        depth -= char in CLOSE
        if depth == 0:
            return n == len(value) - 1
    return False


def _fill(line: str, indent: int) -> list[str] | None:
    """`line` broken greedily at the outermost break points that fit; None if it cannot."""
    points = _break_points(line)
    lines, start, continuation = [], 0, ""
    while indent + len(continuation) + len(line) - start > WIDTH:
        room = start + WIDTH - indent - len(continuation)
        fitting = [(pos, depth) for pos, depth in points if start < pos <= room]
        if not fitting:
            return None
        lowest = min(depth for _, depth in fitting)
        cut = max(pos for pos, depth in fitting if depth == lowest)
        lines.append(continuation + line[start:cut].rstrip())
        start, continuation = cut, " " * 4
    return lines + [continuation + line[start:]]


def statement(target: str, value: str, indent: int = 4) -> list[str]:
    """`target = value` as one line, or broken into lines of at most WIDTH characters
    (with `indent` spaces before each) at the outermost operators, inside brackets
    (added around the value where it has none)."""
    line = f"{target} = {value}"
    if indent + len(line) <= WIDTH:
        return [line]
    top_level = any(depth == 1 for _, depth in _break_points(f"({value})"))
    if top_level and not _enclosed(value):
        line = f"{target} = ({value})"
    return _fill(line, indent) or [line]


def paragraph(text: str, indent: str = "", width: int = WIDTH - 4,
              hanging: str = "    ") -> list[str]:
    """Prose or a formula wrapped at spaces; continuation lines are indented by `hanging`
    more (a long formula's continuation stands out)."""
    return textwrap.wrap(text, width=width, initial_indent=indent,
                         subsequent_indent=indent + hanging, break_long_words=False,
                         break_on_hyphens=False) or [indent]
