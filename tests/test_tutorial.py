"""Every `cnncalc …` command shown in README.md and docs/*.md prints exactly the output shown under it.

The convention (docs/tutorial.md says it too): a fenced block whose info string is ``console``
and whose first line starts with ``$ cnncalc`` is tested (fence it with four backticks when the
output itself holds a three-backtick fence). Each ``$ cnncalc …`` line is a command;
the lines after it, up to the next ``$`` line or the end of the block, are its output (stdout and
stderr as a terminal shows them), compared exactly except for trailing spaces at line ends. A
command expected to fail ends in a comment ``# exit N``. Other blocks (``sh``, ``yaml``, plain)
are not run.

After a deliberate change of output, rewrite the shown outputs with

    python -m tests.test_tutorial --update

and read the diff: the prose around the blocks quotes the numbers too.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(`{3,})console[ \t]*\n(\$ cnncalc.*?)^\1[ \t]*$", re.M | re.S)
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass(frozen=True)
class Example:
    file: str
    line: int  # of the command, 1-based
    command: str  # as shown, without "$ "
    args: tuple[str, ...]
    exit_code: int
    output: str  # as shown
    span: tuple[int, int]  # of the output in the file's text


def examples(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    found = []
    for block in _FENCE.finditer(text):
        start = block.start(2)
        body = block.group(2)
        # split into (command line, output) pairs at lines starting with "$ "
        pieces = list(re.finditer(r"^\$ (.*)\n", body, re.M))
        for i, piece in enumerate(pieces):
            end = pieces[i + 1].start() if i + 1 < len(pieces) else len(body)
            command = piece.group(1)
            status = _EXIT.search(command)
            words = shlex.split(command, comments=True)
            assert words[0] == "cnncalc", f"{path.name}: only cnncalc commands are run: {command}"
            found.append(Example(
                file=path.name, line=text.count("\n", 0, start + piece.start()) + 1,
                command=command, args=tuple(words[1:]),
                exit_code=int(status.group(1)) if status else 0,
                output=body[piece.end():end], span=(start + piece.end(), start + end)))
    return found


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n")).strip("\n")


def run(example: Example) -> tuple[int, str]:
    # rich reads the terminal's size and colour settings from these; the docs show neither
    env = {"COLUMNS": None, "LINES": None, "FORCE_COLOR": None, "NO_COLOR": None, "TERM": "dumb"}
    result = CliRunner().invoke(app, list(example.args), env=env)
    return result.exit_code, result.output


PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
ALL = [e for doc in PAGES for e in examples(doc)]


def test_the_docs_have_tested_examples():
    assert sum(e.file == "tutorial.md" for e in ALL) >= 12


def test_the_tutorials_numbers_are_ones_the_tool_prints():
    """Every figure with a thousands separator in the tutorial's prose appears in an output."""
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    shown = "".join(e.output for e in examples(DOCS / "tutorial.md"))
    prose = _FENCE.sub("", text)
    figures = set(re.findall(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,])", prose))
    assert figures, "no figures found"
    missing = sorted(f for f in figures if not re.search(rf"(?<![\d,]){f}(?![\d,])", shown))
    assert missing == [], f"figures in the prose that no output shows: {missing}"


@pytest.mark.parametrize("example", ALL, ids=[f"{e.file}:{e.line}" for e in ALL])
def test_command_prints_what_the_docs_show(example: Example, monkeypatch):
    if example.file == "import.md":  # cnncalc import and verify --against run a torch model
        pytest.importorskip("torch")
        pytest.importorskip("fvcore")
    monkeypatch.chdir(ROOT)
    code, output = run(example)
    assert code == example.exit_code, f"{example.command}\n{output}"
    assert _normalise(output) == _normalise(example.output), (
        f"{example.file}:{example.line}: `{example.command}` no longer prints what the docs "
        "show; if the change is meant, run python -m tests.test_tutorial --update")


def update() -> None:
    """Rewrite every shown output with what the tool prints now."""
    import os

    os.chdir(ROOT)
    for doc in PAGES:
        text = doc.read_text(encoding="utf-8")
        changed = 0
        for example in reversed(examples(doc)):  # from the end, so spans stay valid
            code, output = run(example)
            if code != example.exit_code:  # never write an error into the docs as if it were meant
                print(f"{doc.name}:{example.line}: `{example.command}` exited {code}, not "
                      f"{example.exit_code}; left as it was:\n{output}")
                continue
            shown = "\n".join(line.rstrip() for line in output.rstrip("\n").split("\n")) + "\n"
            if shown != example.output:
                a, b = example.span
                text = text[:a] + shown + text[b:]
                changed += 1
        if changed:
            doc.write_text(text, encoding="utf-8")
            print(f"{doc.relative_to(ROOT)}: {changed} output(s) rewritten")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.test_tutorial --update")
    update()


# --------------------------------------------------------------------------------------------
# docs/completion.md: typer's completion is exposed and completes what the page says


@pytest.mark.parametrize("words, cword, expected", [
    ("cnncalc ta", 1, {"table"}),
    ("cnncalc pl", 1, {"plot"}),
    ("cnncalc table alexnet --fo", 3, {"--format"}),
    ("cnncalc table alexnet --format ", 4, {"table", "json", "csv", "markdown"}),
    ("cnncalc table res", 2, {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                              "resnet-basic-block", "resnet-bottleneck-block",
                              "resnet-projection-block"}),
    ("cnncalc compare inception-naive inception-b", 3, {"inception-bottleneck"}),
    ("cnncalc plot vgg1", 2, {"vgg11", "vgg13", "vgg16", "vgg19"}),
])
def test_bash_completion(words, cword, expected):
    env = {"_CNNCALC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = CliRunner().invoke(app, [], env=env, prog_name="cnncalc")
    assert result.exit_code == 0
    assert set(result.stdout.split()) == expected


def test_completion_options_are_exposed():
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"}).stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


# --------------------------------------------------------------------------------------------
# The README's list of commands (shown without output): each one runs as its comment says


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## What it does\n\n```\n(.*?)```", text, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("cnncalc ")]


# a file the reader writes first; a GPU; pictures and pages written to disk (tests/test_plot.py,
# tests/test_view.py)
_NOT_RUN = ("my_net.yaml", "--device cuda", "cnncalc plot", "cnncalc view")


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_commands_run(command, tmp_path, monkeypatch):
    if any(word in command for word in _NOT_RUN):
        pytest.skip("needs what the reader provides")
    if "verify" in command:
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    words = shlex.split(command.split(" > ")[0])[1:]
    result = CliRunner().invoke(app, words, env={"COLUMNS": None, "TERM": "dumb"})
    expected = 1 if command.startswith("cnncalc check alexnet --input 3x224x224") else 0  # floors
    assert result.exit_code == expected, f"{command}\n{result.output}"
