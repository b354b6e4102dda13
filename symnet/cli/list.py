"""`symnet list`: the catalog, each entry with its kind, its verdicts and what it is."""

from __future__ import annotations

import json

from symnet.catalog import CATALOG
from symnet.cli.check import summary, verdicts_of


def cmd_list(args) -> int:
    rows = []
    for (name, decl), verdicts in zip(CATALOG.items(), verdicts_of(list(CATALOG.values())),
                                      strict=True):
        rows.append({"name": name, "kind": decl.kind, "doc": decl.doc,
                     "verdicts": summary(verdicts)})
    if args.json:
        print(json.dumps({"entries": rows}))
        return 0
    width = max(len(row["name"]) for row in rows)  # network names run longer
    for row in rows:
        print(f"{row['name']:{width}s} {row['kind']:12s} {row['verdicts']:22s} {row['doc']}")
    return 0


def add_command(commands) -> None:
    listing = commands.add_parser(
        "list", help="the catalog, each entry with its verdicts",
        description="List the catalog: each activation, loss, regulariser, layer and network "
                    "with its kind, the verdicts on its hand derivations and what it is.")
    listing.add_argument("--json", action="store_true", help="one JSON object")
    listing.set_defaults(run=cmd_list)
