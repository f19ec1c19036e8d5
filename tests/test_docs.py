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
