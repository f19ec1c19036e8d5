"""Write the pre-graph snapshot: what every zoo spec and every YAML example in docs/ gives under
each analysis, as JSON. Run once, before a change to the engine, to freeze today's numbers:

    python tests/snapshots/make_snapshot.py > tests/snapshots/before-graph.json

tests/test_snapshot.py compares today's output with it (JSON may gain fields, never lose or
change one). The snapshot is our own earlier output: it guards against drift, it is not a source
of truth (the exact figures from torchvision and the papers are asserted in tests/test_zoo.py).
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cnncalc.cli import app  # noqa: E402
from cnncalc.zoo import zoo_names as names  # noqa: E402

COMMANDS = [
    ["table", "{spec}", "--format", "json"],
    ["table", "{spec}", "--format", "json", "--batch", "3", "--dtype", "fp16"],
    ["memory", "{spec}", "--format", "json", "--batch", "2"],
    ["memory", "{spec}", "--format", "json", "--optimizer", "adam"],
    ["check", "{spec}", "--format", "json"],
    ["reconcile", "{spec}", "--format", "json"],
]


def doc_examples() -> dict[str, str]:
    """Every ```yaml block in README.md and docs/: whole specs as they are, a list of layers
    wrapped into a spec on a 64×56×56 input (the fragments that then fail are left out)."""
    found = {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)
        for n, block in enumerate(textwrap.dedent(b) for b in blocks):
            if not re.search(r"^input:", block, re.M) and block.lstrip().startswith("- "):
                block = "input: 64x56x56\nlayers:\n" + textwrap.indent(block, "  ")
            found[f"{doc.stem}-{n}"] = block
    return found


def run(args: list[str]) -> object:
    result = CliRunner().invoke(app, args)
    if result.exit_code not in (0, 1):
        return {"exit": result.exit_code, "output": result.output}
    return json.loads(result.stdout)


def snapshot(tmp: Path, labels: set[str] | None = None) -> dict[str, object]:
    """Every command's JSON per spec label (``labels``: only those, as the snapshot has them)."""
    specs = {name: name for name in names()}
    for key, text in doc_examples().items():
        path = tmp / f"{key}.yaml"
        path.write_text(text)
        specs[f"docs:{key}"] = str(path)
    out: dict[str, object] = {}
    for label, spec in specs.items():
        if labels is not None and label not in labels:
            continue
        if label.startswith("docs:") and CliRunner().invoke(app, ["table", spec]).exit_code:
            continue
        for command in COMMANDS:
            args = [a.format(spec=spec) for a in command]
            out[" ".join([label if a == spec else a for a in args])] = run(args)
    return out


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        json.dump(snapshot(Path(tmp)), sys.stdout, indent=1, sort_keys=True)
