"""A Markdown report of one declaration, with LaTeX that GitHub renders: the declaration,
each derived gradient, the verdicts, the kink convention and the generated code (the
module `symnet generate` writes for it).

The report is built whole before anything is written: a declaration that cannot be
derived, checked or generated gives an error and no file."""

from __future__ import annotations

import html
import re
from pathlib import Path

import sympy as sp

from symnet.derive import derive
from symnet.loader import split_reference
from symnet.notation import render_latex_block, render_text, text
from symnet.show.page import declaration_latex, describe
from symnet.show.scalar import with_cases
from symnet.timeout import within
from symnet.verify import check

_STATUS = {"proved": "proved", "refuted": "**REFUTED**", "probed": "probed"}
#: the bound on each sympy call here that may run for minutes (solve, simplify)
SYMPY_SECONDS = 5.0


# A declaration's text (its doc, a label, a symbol's name) stays text on the page: no HTML
# of its own, no line break out of a table row, no backticks that close a code block.


def _text(text: str) -> str:
    return html.escape(str(text), quote=False)


def _cell(text: str) -> str:
    """`text` in one table cell: on one line, its pipes escaped."""
    return " ".join(_text(text).split()).replace("|", r"\|")


def _fenced(code: str, language: str = "") -> list[str]:
    """`code` as a fenced block whose fence is longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall("`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, code, fence]


def _verdict_lines(verdicts) -> list[str]:
    lines = ["| verdict | claim | how |", "|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {_STATUS[v.status]} | {_cell(v.claim)} | {_cell(v.detail)} |")
    for v in verdicts:
        if v.counterexample:
            point = ", ".join(f"{k} = {value}" for k, value in v.counterexample["point"].items())
            lines += ["", f"Counterexample to *{_cell(v.claim)}* at {point}: derived "
                          f"`{v.counterexample['lhs']}`, claimed `{v.counterexample['rhs']}`."]
    return lines


def _activation_kinks(decl) -> list[str]:
    if not decl.kinks:
        return ["The forward is smooth: no kink."]
    lines = []
    for kink in decl.kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        values = ", ".join(f"d/d{k} = {text(v)}" for k, v in kink.derivative.items())
        lines.append(f"- at {where}: {values}")
    return lines


def _value_at(decl, gradient: sp.Expr, step: sp.Heaviside) -> str:
    """', where the gradient is V' for a kink on the gradient's own entry, else ''."""
    if decl.wrt not in step.args[0].free_symbols:
        return ""
    places = within(SYMPY_SECONDS, lambda: sp.solve(step.args[0], decl.wrt), [])
    if len(places) != 1:
        return ""
    at_kink = gradient.subs(decl.wrt, places[0])
    # the value unsimplified is still the value, only longer
    value = within(SYMPY_SECONDS, lambda: sp.simplify(at_kink), at_kink)
    if value.has(sp.Heaviside, sp.Sum):
        return ""
    value_name = sp.Symbol("R" if decl.kind == "regularizer" else "L")
    shown = text(sp.Derivative(value_name, decl.wrt, evaluate=False))
    return f"; at {text(decl.wrt)} = {text(places[0])}, {shown} = " \
           f"{text(value)}"


def _loss_kinks(decl, derivation) -> list[str]:
    steps = sorted(derivation.gradient.atoms(sp.Heaviside), key=sp.default_sort_key)
    if not steps:
        return ["The gradient is smooth: it holds no step."]
    lines = ["At a kink the derivative takes the branch that holds there: a step "
             "`[u > 0]` is 0 at u = 0, `[u >= 0]` is 1. The gradient's steps:", ""]
    for step in steps:
        value = 1 if step.args[1] == 1 else 0
        where = f"{text(step.args[0])} = 0"
        lines.append(f"- `{text(step)}` is {value} where {where}"
                     f"{_value_at(decl, derivation.gradient, step)}")
    return lines


def _kink_lines(decl, derivation) -> list[str]:
    if decl.kind == "activation":
        return _activation_kinks(decl)
    if decl.kind in ("loss", "regularizer"):
        return _loss_kinks(decl, derivation)
    return ["At a kink (a tie in a max, an activation's kink) the derivative takes the "
            "branch that holds there, as each activation declares."]


def generated_code(decl, reference: str) -> str | None:
    """The module `symnet generate` writes for the declaration (None for a network, which
    the runtime composes from its layers' modules). A declaration that cannot be
    generated raises its CodegenError."""
    if decl.kind == "network" and getattr(decl, "tensor", None) is None:
        return None
    from symnet.codegen.emit import Source, module_file

    path, _ = split_reference(reference)
    shown = f"{Path(path).name}:{decl.name}" if path else reference
    return module_file(Source(shown, decl))[1]


def markdown_report(decl, reference: str | None = None) -> str:
    """The whole report as Markdown text; `reference` is how the command line named the
    declaration (NAME or FILE.py:NAME)."""
    derivation = derive(decl)
    verdicts = check(decl)
    code = generated_code(decl, reference or decl.name)
    parts = [f"# `{decl.name}` ({decl.kind})", ""]
    if decl.doc:
        parts += [_text(decl.doc), ""]
    parts += ["## Declaration", "", declaration_latex(decl), ""]
    rows = with_cases(describe(derivation), derivation)
    parts += ["## Derivation", "", f"$${render_latex_block(rows)}$$",
              "", "As text:", ""]
    parts += _fenced("\n".join(line.rstrip() for line in render_text(rows)))
    parts += ["", "## Verdicts", ""] + _verdict_lines(verdicts)
    parts += ["", "## Kink convention", ""] + _kink_lines(decl, derivation)
    parts += ["", "## Generated code", ""]
    if code is None:
        parts += ["A network gets no module of its own: the runtime composes it from the "
                  "generated modules of its layers and activations."]
    else:
        parts += ["What `symnet generate` writes for it (numpy only):", ""]
        parts += _fenced(code.rstrip(), "python")
    return "\n".join(parts) + "\n"
