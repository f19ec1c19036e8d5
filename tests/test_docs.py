"""The docs stay true to the code: every layer kind and field is documented."""

from pathlib import Path

import pytest

from cnncalc.layers import REGISTRY

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_and_field_is_in_the_spec_format_reference(kind: str):
    text = (DOCS / "spec-format.md").read_text()
    assert f"`{kind}`" in text
    for field in REGISTRY[kind].fields:
        assert f"`{field}`" in text, f"{kind}.{field} is not documented"


def test_readme_test_command_is_what_ci_runs():
    root = DOCS.parent
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"
    assert command in readme
    assert command in ci


def _error_rows() -> list[tuple[str, str]]:
    import re

    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    return re.findall(r"^\|[^|]*\| `([\w.-]+\.yaml)` \| `(.*)` \|$", text, re.M)


@pytest.mark.parametrize("name, message", _error_rows())
def test_errors_md_shows_the_messages_the_tool_prints(name, message, monkeypatch):
    """Each row of errors.md's table is the one line `cnncalc table FILE` prints (… elides)."""
    import re

    from typer.testing import CliRunner

    from cnncalc.cli import app

    monkeypatch.chdir(DOCS.parent / "tests" / "bad_specs")
    result = CliRunner().invoke(app, ["table", name])
    line = result.stderr.strip()
    pattern = ".*?".join(map(re.escape, f"cnncalc: error: {name}:{message}".split("…")))
    assert re.fullmatch(pattern, line), f"errors.md says {message!r}; the tool: {line!r}"


def test_errors_md_has_its_rows():
    assert len(_error_rows()) >= 30
