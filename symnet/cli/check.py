"""`symnet check [NAME ...]`: the verdict on each hand derivation (exit 1 if one is refuted);
also the verdicts `symnet list` shows, checked once and kept in symnet's cache."""

from __future__ import annotations

import json

from symnet import cache
from symnet.catalog import CATALOG
from symnet.cli.parallel import kept_or_computed
from symnet.loader import resolve_all
from symnet.verify import REFUTED, check, check_primitives
from symnet.verify.matrix import as_layer_verdicts


def summary(verdicts) -> str:
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
    return kept_or_computed(decls, cache.kept_verdicts, cache.keep_verdicts, all_verdicts,
                            first=_cost_rank)


def _cost_rank(decl) -> int:
    kind = getattr(decl, "kind", "primitives")
    return SLOWEST_FIRST.index(kind) if kind in SLOWEST_FIRST else len(SLOWEST_FIRST)


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
            print(f"{name} ({kind}): {summary(verdicts)}")
            for verdict in verdicts:
                print(f"  {verdict}")
        print(f"\n{'REFUTED: ' + str(refuted) if refuted else 'no claim refuted'}")
    return 1 if refuted else 0


def add_command(commands) -> None:
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
