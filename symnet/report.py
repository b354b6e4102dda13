"""A Markdown report of one declaration, with LaTeX that GitHub renders:
the declaration, each derived gradient, the verdicts, the kink convention and,
when given, the generated code."""

from __future__ import annotations

from symnet import display
from symnet.derive import derive
from symnet.verify import check

_STATUS = {"proved": "proved", "refuted": "**REFUTED**", "probed": "probed"}


def _verdict_lines(verdicts) -> list[str]:
    lines = ["| verdict | claim | how |", "|---|---|---|"]
    for v in verdicts:
        claim = v.claim.replace("|", r"\|")
        lines.append(f"| {_STATUS[v.status]} | {claim} | {v.detail} |")
    for v in verdicts:
        if v.counterexample:
            point = ", ".join(f"{k} = {value}" for k, value in v.counterexample["point"].items())
            lines += ["", f"Counterexample to *{v.claim}* at {point}: derived "
                          f"`{v.counterexample['lhs']}`, claimed `{v.counterexample['rhs']}`."]
    return lines


def _kink_lines(decl) -> list[str]:
    if decl.kind != "activation":
        return ["At a kink (a margin exactly 0, a tie in a max) the derivative takes the "
                "branch that holds there: a step `[u > 0]` is 0 at u = 0, `[u >= 0]` is 1."]
    if not decl.kinks:
        return ["The forward is smooth: no kink."]
    lines = []
    for kink in decl.kinks:
        where = ", ".join(f"{k} = {v}" for k, v in kink.at.items())
        values = ", ".join(f"d/d{k} = {display.text(v)}" for k, v in kink.derivative.items())
        lines.append(f"- at {where}: {values}")
    return lines


def markdown_report(decl, generated_code: str | None = None) -> str:
    """The whole report as Markdown text."""
    derivation = derive(decl)
    verdicts = check(decl)
    parts = [f"# `{decl.name}` ({decl.kind})", ""]
    if decl.doc:
        parts += [decl.doc, ""]
    parts += ["## Declaration", "", display.declaration_latex(decl), ""]
    rows = display.describe(derivation)
    parts += ["## Derivation", "", f"$${display.render_latex_block(rows)}$$",
              "", "As text:", "", "```"]
    parts += [line.rstrip() for line in display.render_text(rows)]
    parts += ["```", "", "## Verdicts", ""] + _verdict_lines(verdicts)
    parts += ["", "## Kink convention", ""] + _kink_lines(decl)
    if generated_code is not None:
        parts += ["", "## Generated code", "", "```python", generated_code.rstrip(), "```"]
    return "\n".join(parts) + "\n"
