"""The `symnet` command: the parser and the dispatch to one module per command
(symnet/cli/NAME.py), which calls the stages and prints. The console script enters through
symnet.cli.replay, which replays a whole-catalog command from disk or calls main here.

Exit status: 0 when all is well, 1 when a hand derivation is refuted, 2 for bad input
(an unknown name, a malformed declaration, a file that cannot be loaded).
"""

from __future__ import annotations

import argparse
import errno
import sys
from importlib import import_module

from symnet import __version__
from symnet.errors import SymnetError

#: the commands, in the order `symnet --help` lists them: each is the module
#: symnet/cli/NAME.py, whose add_command(commands) adds its subcommand. They are imported
#: only to build the parser, so that this package stays free of sympy for the replayed
#: commands of symnet.cli.replay (the console script's entry point).
COMMANDS = ("list", "derive", "check", "graph", "generate", "train", "demo")


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

    for name in COMMANDS:   # each command's module adds its own subcommand
        import_module(f"symnet.cli.{name}").add_command(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SymnetError as exc:
        from symnet.loader import declared_at

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
