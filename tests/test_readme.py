"""The README runs as written: every ```console block of README.md is run from the root of a
scratch copy of the repository and its output compared with the block.

The conventions README.md follows (this test holds it to them):

* A console block is a series of `$ COMMAND` lines, each followed by what it prints: stdout
  and stderr merged, as a terminal shows them. A `\\` at the end of a command line continues
  the command on the next line. A `# comment` after a command is the shell's comment.
* Exit status: a command exits 0 unless the command after it is `$ echo $?`, whose output is
  the status the command before it exited with. A command that exits with another status
  and no `$ echo $?` after it fails this test, so the README shows every non-zero status.
* Blank lines at the end of an output are not compared (the README may set commands apart).
* A line `...` (at any indentation) in the output stands for any number of lines; `...`
  within a line (`"nodes": [...]`) for any text.
* Before comparing, both sides are masked: numbers (integers, floats, e-notation; digits
  inside a name such as L31, W2 or float64 are kept), so durations, random counterexample
  points and accuracies may change; absolute paths (the scratch copy's, or a placeholder
  such as /path/to/symnet in the README); progress bars `[##....]`. Runs of spaces count as
  one space, trailing spaces none.
* A block that cannot run in a test (a benchmark of minutes, a `--help` page being
  rewritten, a pip install) is preceded in the README by an HTML comment
  `<!-- readme-test: skip (why) -->` and listed in SKIPPED below by its first command, so a
  newly skipped block fails `test_the_skipped_blocks_are_the_listed_ones` until it is listed.

Each block runs in its own scratch copy of the repository (its tracked files, as they are in
the working tree), from the copy's root; the commands of one block run in order in the same
copy, so a later one may read what an earlier one wrote. `python` runs as this interpreter
with PYTHONPATH the copy, so it runs the copy's code. A `symnet` command with no shell syntax
(no pipe, redirection, variable or glob outside quotes) runs as a fork of one warm
interpreter that has imported symnet from the pristine copy (tests/command_server.py): a
process of its own, in the block's copy, with the block's environment, as `python -m symnet`
runs it but without a second or two of importing sympy each time; any other command runs in
bash, `symnet` as `python -m symnet`. HOME and SYMNET_CACHE are folders of the test's own, so
nothing of the user's is read or written.

SYMNET_CACHE is one folder for the whole test session (conftest's session_cache_home, which
tests of whole-catalog commands share too), so each derivation the blocks' `check` and
`generate` need is computed once per run, not once per block: the cache is keyed by
content (symnet.cache: the copy's code by relative path and bytes, a user's file by its
bytes), so an entry serves only the exact input that made it, and a command prints the same
whether it computed or read its results. A block that is about the cache itself (it names
SYMNET_CACHE, SYMNET_NO_CACHE or ~/.cache) gets a cache folder of its own, empty.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.command_server import CommandServer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.+)\)\s*-->")

#: the blocks marked in the README as not run here, by their first command, with the reason
SKIPPED = {
    "python benchmarks/train_step.py          # 7 repeats, contenders interleaved, ~8 minutes":
        "a benchmark of about 8 minutes",
    "python benchmarks/digits.py":
        "a benchmark whose met line depends on the machine's load",
    "python benchmarks/train_step.py --quick --optimizers sgd,momentum,adam --depth 2 --impl "
    "symnet_fused,symnet_layers,torch,torch_fused_adam,jax_jit":
        "a benchmark of about 3 minutes whose numbers depend on the load",
    "python benchmarks/train_step.py --symbolic":
        "a benchmark whose met lines depend on the machine's load",
    "python benchmarks/layers.py --quick":
        "a benchmark whose figures depend on the machine's load",
    "python benchmarks/bridges.py --quick":
        "a benchmark of minutes whose met lines depend on the machine's load",
}


@dataclass(frozen=True)
class Command:
    """One `$ ...` line of a block (joined with its continuation lines) and the output the
    README shows after it."""

    text: str
    expected: tuple[str, ...]


@dataclass(frozen=True)
class Block:
    line: int  # README's line of the opening fence
    commands: tuple[Command, ...]
    skip: str | None  # the reason given in the README's skip marker, if any

    @property
    def first(self) -> str:
        return self.commands[0].text if self.commands else ""


def console_blocks(text: str) -> list[Block]:
    """Every ```console block of the README, in order, with the skip marker before it."""
    lines = text.split("\n")
    blocks, at = [], 0
    while at < len(lines):
        if lines[at].strip() == "```console":
            end = next(n for n in range(at + 1, len(lines)) if lines[n].strip() == "```")
            body = [line[len(lines[at]) - len(lines[at].lstrip()):] for line in lines[at + 1:end]]
            blocks.append(Block(at + 1, parse_commands(body), skip_reason(lines, at)))
            at = end
        at += 1
    return blocks


def skip_reason(lines: list[str], fence: int) -> str | None:
    """The reason of a skip marker on the last non-blank line before the fence."""
    before = [line for line in lines[:fence] if line.strip()]
    found = SKIP_MARK.search(before[-1]) if before else None
    return found.group(1) if found else None


def parse_commands(body: list[str]) -> tuple[Command, ...]:
    """The block's commands with their outputs; output before any `$ ` line (a Python
    session belongs in a ```pycon block) comes as a command "" that
    test_every_console_block_starts_with_a_command reports."""
    commands, at = [], 0
    while at < len(body):
        text = ""
        if body[at].startswith("$ "):
            text = body[at][2:]
            while text.endswith("\\") and at + 1 < len(body):
                at += 1
                text = text[:-1] + body[at]
            at += 1
        output_end = next((n for n in range(at, len(body)) if body[n].startswith("$ ")), len(body))
        output = body[at:output_end]
        while output and not output[-1].strip():   # a blank line before the next command
            output.pop()
        commands.append(Command(text, tuple(output)))
        at = output_end
    return tuple(commands)


BLOCKS = console_blocks(README.read_text())
RUN = [block for block in BLOCKS if block.skip is None]


# --- masking and comparing -----------------------------------------------------------------

PROGRESS_BAR = re.compile(r"\[[#.]{4,}\]")
# an absolute path: a / after a space, a quote, a bracket or the line's start, then folders
ABSOLUTE_PATH = re.compile(r"(?<![^\s'\"(\[=])/(?:[\w.+-]+/)*[\w.+-]*")
# a number that is not part of a name (L31, W2, float64 keep their digits)
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")


def masked(line: str) -> str:
    line = PROGRESS_BAR.sub("[BAR]", line)
    line = ABSOLUTE_PATH.sub("PATH", line)
    line = NUMBER.sub("NUM", line)
    return " ".join(line.split())


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether the actual lines match the expected ones, a `...` line matching any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[n:]) for n in range(len(actual) + 1))
    return (bool(actual) and line_matches(expected[0], actual[0])
            and matches(expected[1:], actual[1:]))


def line_matches(expected: str, actual: str) -> bool:
    """Equal lines, or a line with `...` in it (`"nodes": [...]`) of which `...` is any text."""
    if "..." not in expected:
        return expected == actual
    return re.fullmatch(".*".join(map(re.escape, expected.split("..."))), actual) is not None


# --- running -------------------------------------------------------------------------------


#: what a copy leaves out when the repository is not a git checkout
NOT_SHIPPED = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", ".pytest_cache",
                                     ".ruff_cache", "build", "dist", ".venv")


def tracked_files() -> list[str] | None:
    """The repository's files as a clean clone has them (tracked, or new and not ignored),
    read from the working tree; None outside a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return [name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One copy of the repository, copied again for each block."""
    copy = tmp_path_factory.mktemp("readme") / "symnet"
    names = tracked_files()
    if names is None:
        shutil.copytree(ROOT, copy, ignore=NOT_SHIPPED)
        return copy
    for name in names:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def command_server(pristine):
    """The warm interpreter the blocks' `symnet` commands fork from, on the pristine copy's
    code (no block writes into its copy's generated/ without -o, so the code's checkout and
    each block's copy hold the same files)."""
    server = CommandServer(pristine, {**os.environ, "PYTHONPATH": str(pristine)})
    yield server
    server.stop()


def about_the_cache(block: Block) -> bool:
    """Whether a block looks at symnet's cache itself, so it must start from an empty one."""
    return any(word in command.text for command in block.commands
               for word in ("SYMNET_CACHE", "SYMNET_NO_CACHE", ".cache"))


def environment(copy: Path, home: Path, cache: Path | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYMNET_")}
    env.update(PYTHONPATH=str(copy), HOME=str(home), SYMNET_CACHE=str(cache or home / "cache"),
               # unbuffered, so that stdout and stderr interleave as on a terminal
               PYTHONUNBUFFERED="1", COLUMNS="100")
    return env


def shell_command(text: str) -> str:
    """The README's command with a leading `symnet` or `python` run as this interpreter."""
    python = shlex.quote(sys.executable)
    text = re.sub(r"^symnet\b", f"{python} -m symnet", text)
    return re.sub(r"^python\b", python, text)


#: what makes bash more than a list of words: operators, expansions, globs, escapes
SHELL_SYNTAX = re.compile(r"[|;&<>()$`*?\[~\\{}!#]")
QUOTED = re.compile(r"\"[^\"$`\\]*\"|'[^']*'")


def symnet_argv(text: str) -> list[str] | None:
    """The arguments of a `symnet ...` command with no shell syntax outside quotes (bash
    would pass them on as they are), else None."""
    if not text.startswith("symnet ") or SHELL_SYNTAX.search(QUOTED.sub("", text)):
        return None
    return shlex.split(text)[1:]


def run(text: str, copy: Path, env: dict, server: CommandServer) -> tuple[list[str], int]:
    argv = symnet_argv(text)
    if argv is not None:
        done = server.run(argv, copy, env, timeout=600, merged=True)
    else:
        done = subprocess.run(["bash", "-c", shell_command(text)], cwd=copy, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)
    return done.stdout.rstrip("\n").split("\n") if done.stdout else [], done.returncode


def run_block(block: Block, copy: Path, env: dict,
              server: CommandServer) -> list[tuple[Command, list[str]]]:
    """Each command with the lines it printed; `echo $?` prints the status before it."""
    ran, status = [], 0
    for number, command in enumerate(block.commands):
        if command.text.strip() == "echo $?":
            output = [str(status)]
        else:
            output, status = run(command.text, copy, env, server)
            following = block.commands[number + 1:number + 2]
            if status != 0 and not (following and following[0].text.strip() == "echo $?"):
                output.append(f"(exit status {status}, and no `$ echo $?` after it in README)")
        ran.append((command, output))
    return ran


def block_id(block: Block) -> str:
    return f"line{block.line}-" + "-".join(block.first.split()[:2])


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN, ids=block_id)
def test_a_console_block_prints_what_the_readme_shows(block, pristine, tmp_path,
                                                    session_cache_home, command_server):
    copy = tmp_path / "symnet"
    shutil.copytree(pristine, copy, symlinks=True)
    home = tmp_path / "home"
    home.mkdir()
    cache = None if about_the_cache(block) else session_cache_home
    for command, output in run_block(block, copy, environment(copy, home, cache),
                                     command_server):
        # an exit status is compared as it is; everything else masked
        mask = str.strip if command.text.strip() == "echo $?" else masked
        expected = [mask(line) for line in command.expected]
        actual = [mask(line) for line in output]
        assert matches(expected, actual), (
            f"README.md line {block.line}: `$ {command.text}` printed\n" + "\n".join(output))


def test_the_skipped_blocks_are_the_listed_ones():
    skipped = {block.first: block.skip for block in BLOCKS if block.skip is not None}
    assert skipped == SKIPPED


def test_the_readme_shows_no_path_of_a_machine():
    """An absolute path in the README is a placeholder, never the developer's folders."""
    found = {path for path in ABSOLUTE_PATH.findall(README.read_text()) if len(path) > 1}
    assert {path for path in found if not path.startswith("/path/to/")} == set()


def test_every_console_block_starts_with_a_command():
    """Output with no `$ ` command before it would be compared with nothing."""
    assert [block.line for block in BLOCKS if not block.commands or not block.first] == []


def test_a_block_about_the_cache_gets_a_cache_of_its_own():
    looks = Block(1, (Command("ls ~/.cache/symnet/results", ()),), None)
    turns_off = Block(2, (Command("SYMNET_NO_CACHE=1 symnet check", ()),), None)
    plain = Block(3, (Command("symnet check", ()),), None)
    assert about_the_cache(looks) and about_the_cache(turns_off)
    assert not about_the_cache(plain)


def test_ci_runs_the_readmes_test_command_verbatim():
    """.ci/run runs, from a clean clone, the test command the quick start shows (with
    pytest-xdist's -n 2 since the suite outgrew one process): the two must not drift."""
    quick_start = next(line for line in README.read_text().splitlines()
                       if line.startswith('pip install -e ".[test]" && '))
    command = quick_start.split("#")[0].strip()
    assert " pytest " in f"{command} "
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci


def test_only_a_symnet_command_without_shell_syntax_runs_as_a_fork():
    """bash would pass these words on as they are; anything it would expand or redirect runs
    in bash."""
    assert symnet_argv('symnet graph "(x+y)*z" --at x=-2,y=5') == \
        ["graph", "(x+y)*z", "--at", "x=-2,y=5"]
    assert symnet_argv("symnet check") == ["check"]
    for shell in ("symnet list | head -3", "symnet check > out.txt", "symnet check $NAME",
                  "symnet check *.py", "symnet check; echo done", "SYMNET_NO_CACHE=1 symnet check",
                  'symnet graph "$HOME"', "python -m symnet check", "symnet check # why"):
        assert symnet_argv(shell) is None, shell
