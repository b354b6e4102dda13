"""The `symnet` command: parses arguments, calls the stages, prints.

Exit status: 0 when all is well, 1 when a hand derivation is refuted, 2 for bad input
(an unknown name, a malformed declaration, a file that cannot be loaded).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys

from symnet import __version__, cache, display
from symnet.catalog import CATALOG
from symnet.derive import derive
from symnet.errors import SymnetError
from symnet.files import check_output, write_atomically
from symnet.loader import declared_at, resolve, resolve_all
from symnet.matrix.check import as_layer_verdicts
from symnet.report import markdown_report, with_cases
from symnet.verify import REFUTED, check, check_primitives


def _summary(verdicts) -> str:
    counts = {}
    for verdict in verdicts:
        counts[verdict.status] = counts.get(verdict.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no claims"


PRIMITIVES = "stable primitives"
#: kinds of declaration by how long their checks take (networks prove entry by entry)
SLOWEST_FIRST = ("network", "layer", "loss", "regularizer", "activation", "primitives")


def all_verdicts(decl) -> list:
    """Every verdict of a declaration (or of the stable primitives); an activation is also
    checked as a layer, applied entry by entry to a matrix."""
    if decl == PRIMITIVES:
        return check_primitives()
    return check(decl) + as_layer_verdicts(decl)


def verdicts_of(decls: list) -> list[list]:
    """Each declaration's verdicts, in order: those checked before from symnet's cache, the
    others computed on one process per core and kept."""
    return cache.kept_or_computed(decls, cache.kept_verdicts, cache.keep_verdicts,
                                  all_verdicts, first=_cost_rank)


def _cost_rank(decl) -> int:
    kind = getattr(decl, "kind", "primitives")
    return SLOWEST_FIRST.index(kind) if kind in SLOWEST_FIRST else len(SLOWEST_FIRST)


def cmd_list(args) -> int:
    rows = []
    for (name, decl), verdicts in zip(CATALOG.items(), verdicts_of(list(CATALOG.values())),
                                      strict=True):
        rows.append({"name": name, "kind": decl.kind, "doc": decl.doc,
                     "verdicts": _summary(verdicts)})
    if args.json:
        print(json.dumps({"entries": rows}))
        return 0
    width = max(len(row["name"]) for row in rows)  # network names run longer
    for row in rows:
        print(f"{row['name']:{width}s} {row['kind']:12s} {row['verdicts']:22s} {row['doc']}")
    return 0


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


def cmd_check(args) -> int:
    decls = [d for name in args.names for d in resolve_all(name)] if args.names \
        else list(CATALOG.values())
    checked = decls if args.names else [PRIMITIVES, *decls]
    results = [("primitives", PRIMITIVES, verdicts) if decl == PRIMITIVES
               else (decl.name, decl.kind, verdicts)
               for decl, verdicts in zip(checked, verdicts_of(checked), strict=True)]
    refuted = sum(v.status == REFUTED for _, _, verdicts in results for v in verdicts)
    if args.json:
        print(json.dumps({
            "entries": [{"name": name, "kind": kind, "verdicts": [v.as_dict() for v in vs]}
                        for name, kind, vs in results],
            "refuted": refuted,
        }, default=str))
    else:
        for name, kind, verdicts in results:
            print(f"{name} ({kind}): {_summary(verdicts)}")
            for verdict in verdicts:
                print(f"  {verdict}")
        print(f"\n{'REFUTED: ' + str(refuted) if refuted else 'no claim refuted'}")
    return 1 if refuted else 0


class Parser(argparse.ArgumentParser):
    """argparse with its errors in the contract's form: one line `symnet: error: ...` and exit
    status 2 (argparse's own prints the usage first; `--help` still shows it)."""

    def error(self, message: str):
        command = self.prog.removeprefix("symnet").strip()
        hint = f"symnet {command} --help" if command else "symnet --help"
        self.exit(2, f"symnet: error: {message} (see `{hint}`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="symnet",
        description="Declare losses and layers in sympy; derive, prove and emit their "
                    "gradients. NAME is a catalog entry (see `symnet list`) or "
                    "path/to/file.py:name for a declaration of your own.")
    parser.add_argument("--version", action="version", version=f"symnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser(
        "list", help="the catalog, each entry with its verdicts",
        description="List the catalog: each activation, loss, regulariser, layer and network "
                    "with its kind, the verdicts on its hand derivations and what it is.")
    listing.add_argument("--json", action="store_true", help="one JSON object")
    listing.set_defaults(run=cmd_list)

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

    checking = commands.add_parser(
        "check", help="verdicts on the hand derivations (exit 1 if one is refuted)",
        description="Prove or refute each hand derivation against the derived gradient "
                    "(proved, refuted with a counterexample, or probed at random points); "
                    "exit status 1 if any is refuted.")
    checking.add_argument("names", metavar="NAME", nargs="*",
                          help="catalog names, FILE.py:NAME, or FILE.py for all of a file's "
                               "declarations (default: the whole catalog)")
    checking.add_argument("--json", action="store_true", help="one JSON object")
    checking.set_defaults(run=cmd_check)

    from symnet.graph.cli import add_graph_command  # the graph stage's own subcommand
    add_graph_command(commands)
    from symnet.codegen.cli import add_generate_command  # code generation's subcommand
    add_generate_command(commands)
    from symnet.train_cli import add_train_command  # the runtime's subcommand
    add_train_command(commands)
    from symnet.demo_cli import add_demo_command  # the whole flow, once
    add_demo_command(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SymnetError as exc:
        print(f"symnet: error: {exc}{declared_at(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in WRITE_ERRORS:
            raise
        print(f"symnet: error: cannot write {exc.filename or 'a file'}: {exc.strerror}; "
              f"nothing was written there", file=sys.stderr)
        return 2


#: what the file system answers when a file cannot be written (a full disk, a quota, a
#: read-only or forbidden folder): the user's to fix, so one line, not a traceback
WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG}


if __name__ == "__main__":
    sys.exit(main())
