"""`symnet derive NAME`: the forward and its derived gradients, as a person writes them."""

from __future__ import annotations

from symnet import display
from symnet.derive import derive
from symnet.files import check_output, write_atomically
from symnet.loader import resolve
from symnet.show.report import markdown_report
from symnet.show.scalar import with_cases


def cmd_derive(args) -> int:
    if args.report:
        check_output("--report", args.report)
    decl = resolve(args.name)
    print(f"{decl.name} ({decl.kind})" + (f": {decl.doc}" if decl.doc else ""))
    derivation = derive(decl)
    rows = with_cases(display.describe(derivation), derivation)   # Huber's gradient as cases
    for line in display.render_text(rows, as_latex=args.latex):
        print(line)
    if args.report:
        write_atomically(args.report, markdown_report(decl, args.name))
        print(f"report written to {args.report}")
    return 0


def add_command(commands) -> None:
    deriving = commands.add_parser(
        "derive", help="the forward and its derived gradients",
        description="Derive a declaration's gradients and print them as a person writes "
                    "them: the forward, the derivatives (VJPs for layers and networks), the "
                    "Jacobian where there is one, the kink convention.")
    deriving.add_argument("name", metavar="NAME",
                          help="a catalog name (see `symnet list`) or FILE.py:NAME")
    deriving.add_argument("--latex", action="store_true", help="formulas as LaTeX")
    deriving.add_argument("--report", metavar="FILE.md",
                          help="also write a Markdown report (LaTeX that GitHub renders): "
                               "declaration, derivation, verdicts, kink convention")
    deriving.set_defaults(run=cmd_derive)
