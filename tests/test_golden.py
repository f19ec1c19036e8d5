"""Golden outputs: what the commands print on a terminal 80, 120 and 200 columns wide, compared
exactly with the files in tests/golden/ (one per command and width).

On a terminal the tables fit the width without cutting a path, a kind, a shape or a number
(render.TextTable); these files are what a user sees there, colour aside. After a deliberate
change of layout, regenerate them with

    PYTHONPATH=. python -m tests.test_golden --update

and read the diff (git diff tests/golden/) before committing it.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
WIDTHS = (80, 120, 200)
COMMANDS = {
    "table-resnet50": "table resnet50",
    "table-alexnet-224": "table alexnet --input 3x224x224",
    "table-googlenet-depth2": "table googlenet --depth 2",
    "table-alexnet-symbolic": "table alexnet --input 3xHxW --depth 1",
    "compare-inception": "compare inception-naive inception-bottleneck",
    "compare-resnets": "compare resnet18 resnet34 resnet50 resnet101 resnet152 --depth 1",
    "memory-resnet18": "memory resnet18",
    "reconcile-resnet18": "reconcile resnet18",
    "check-alexnet": "check alexnet --input 3x224x224 --range 200:260",
    "verify-lenet5": "verify lenet5",
}


def _needs(name: str) -> None:
    if name.startswith("table-alexnet-symbolic"):
        pytest.importorskip("sympy")
    if name.startswith("verify"):
        pytest.importorskip("torch")
        pytest.importorskip("fvcore")


def run(command: str, width: int) -> str:
    """The command's stdout and stderr as a terminal ``width`` columns wide shows them (rich's
    TTY_COMPATIBLE; TERM=dumb: no colour)."""
    env = {"COLUMNS": str(width), "LINES": "50", "TTY_COMPATIBLE": "1", "TERM": "dumb",
           "FORCE_COLOR": None, "NO_COLOR": None}
    result = CliRunner().invoke(app, shlex.split(command), env=env)
    return result.output


def _path(name: str, width: int) -> Path:
    return GOLDEN / f"{name}-{width}.txt"


CASES = [(name, width) for name in COMMANDS for width in WIDTHS]


@pytest.mark.parametrize("name, width", CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_terminal_output_is_the_golden_one(name, width, monkeypatch):
    _needs(name)
    monkeypatch.chdir(ROOT)
    output = run(COMMANDS[name], width)
    assert output == _path(name, width).read_text(encoding="utf-8"), (
        f"`cnncalc {COMMANDS[name]}` at {width} columns changed; if meant, run "
        "PYTHONPATH=. python -m tests.test_golden --update")


@pytest.mark.parametrize("name, width", CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_golden_output_fits_and_cuts_nothing(name, width):
    text = _path(name, width).read_text(encoding="utf-8")
    for line in text.splitlines():
        # wider than the terminal only where nothing can break: one unspaced word
        assert len(line) <= width or " " not in line.strip(), line
    wide = _path(name, 200).read_text(encoding="utf-8")
    # every path and number of the wide output is printed whole at this width too, unless a
    # narrow table left its column out and says so
    if "Not shown at" in text:
        return
    numbers = set(re.findall(r"(?<![\w.,])[\d][\d,.]*[KMGT]?(?:i?B)?(?![\w])", wide))
    shown = set(re.findall(r"(?<![\w.,])[\d][\d,.]*[KMGT]?(?:i?B)?(?![\w])", text))
    assert numbers <= shown | {n.rstrip(",.") for n in shown}


def update() -> None:
    import os

    os.chdir(ROOT)
    GOLDEN.mkdir(exist_ok=True)
    for name, command in COMMANDS.items():
        for width in WIDTHS:
            _path(name, width).write_text(run(command, width), encoding="utf-8")
    print(f"rewrote {len(COMMANDS) * len(WIDTHS)} files in {GOLDEN.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: PYTHONPATH=. python -m tests.test_golden --update")
    update()


# --------------------------------------------------------------------------------------------
# Every command the docs show, on an 80-column terminal: nothing cut


def _documented_commands() -> list[str]:
    """The commands of the docs' tested examples (as tables where the docs show Markdown) and of
    the README's list, but those that need a GPU, a file of the reader's or write pictures."""
    from tests.test_tutorial import ALL, _NOT_RUN, _readme_commands

    seen: dict[str, None] = {}
    for args in [list(e.args) for e in ALL] + [shlex.split(c.split(" > ")[0])[1:]
                                               for c in _readme_commands()]:
        if any(word in shlex.join(["cnncalc", *args]) for word in (*_NOT_RUN, "verify")):
            continue
        if "--format" in args:
            i = args.index("--format")
            del args[i:i + 2]
        if args and args[0] not in ("schema", "--version"):
            seen.setdefault(shlex.join(args), None)
    return list(seen)


_TOKEN = re.compile(r"[^\s]+")


@pytest.mark.parametrize("command", _documented_commands())
def test_documented_commands_print_everything_whole_at_80_columns(command, monkeypatch):
    monkeypatch.chdir(ROOT)
    narrow = run(command, 80)
    env = {"COLUMNS": None, "TERM": "dumb", "TTY_COMPATIBLE": None}
    wide = CliRunner().invoke(app, shlex.split(command), env=env).output
    # show and import print a spec file (YAML, whose lines are not wrapped)
    for line in narrow.splitlines() if not command.startswith(("show ", "import ")) else []:
        assert len(line) <= 80 or " " not in line.strip(), line
    if "Not shown at 80 columns" in narrow:
        return  # a narrow table left out columns, and said which
    tokens = lambda text: {t.strip(",;:()") for t in _TOKEN.findall(text)}  # noqa: E731
    missing = tokens(wide) - tokens(narrow)
    # what a wrapped header or a continued table changes: no cell of the wide output is missing
    assert not {t for t in missing if any(c.isdigit() for c in t) or "." in t}, command
