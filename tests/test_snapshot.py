"""Every spec valid before the graph format gives the same rows, numbers and warnings after it:
today's JSON for the whole zoo and the docs' examples must contain the snapshot taken before the
change (tests/snapshots/before-graph.json; fields may be added, none lost or changed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.snapshots.make_snapshot import snapshot

BEFORE = Path(__file__).parent / "snapshots" / "before-graph.json"


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` loses or changes something of ``old`` (extra dict keys in ``new`` are fine)."""
    if isinstance(old, dict):
        if not isinstance(new, dict):
            return [f"{where}: was an object"]
        found = []
        for key, value in old.items():
            if key not in new:
                found.append(f"{where}.{key}: missing")
            else:
                found.extend(differences(value, new[key], f"{where}.{key}"))
        return found
    if isinstance(old, list):
        if not isinstance(new, list) or len(new) != len(old):
            return [f"{where}: list of {len(old)} became {type(new).__name__} "
                    f"of {len(new) if isinstance(new, list) else '-'}"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if old == new and type(old) is type(new) else [f"{where}: {old!r} became {new!r}"]


def test_differences_sees_a_change_and_allows_a_new_field():
    assert differences({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2, "c": 3}], "d": 4}) == []
    assert differences({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == [".a[1].b: 2 became 3"]
    assert differences({"a": 1}, {}) == [".a: missing"]
    assert differences({"a": [1]}, {"a": [1, 2]})


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return snapshot(tmp_path_factory.mktemp("docs"), {key.split()[1] for key in BEFORE_DATA})


BEFORE_DATA = json.loads(BEFORE.read_text())


@pytest.mark.parametrize("command", sorted(BEFORE_DATA))
def test_same_as_before_the_graph_format(now: dict[str, Any], command: str) -> None:
    assert command in now, f"{command} no longer runs"
    found = differences(BEFORE_DATA[command], now[command])
    assert not found, "\n".join(found[:20])
