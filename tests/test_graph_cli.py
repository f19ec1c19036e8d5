"""Every command works on a graph spec (from/as/with, merges, several outputs), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnncalc.cli import app

HERE = Path(__file__).parent
SE = str(HERE / "graph_se.yaml")


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("args", [
    ("table", SE), ("table", SE, "--explain"), ("table", SE, "--depth", "1"),
    ("table", SE, "-f", "csv"), ("table", SE, "-f", "markdown"), ("compare", SE, SE),
    ("check", SE), ("memory", SE, "--optimizer", "adam"), ("reconcile", SE),
    ("table", SE, "-c", "fvcore"),
])
def test_each_command_runs_on_a_graph_spec(args: tuple[str, ...]):
    assert run(*args).strip()


def test_json_of_a_graph_spec():
    data = json.loads(run("table", SE, "-f", "json"))
    rows = {r["path"]: r for r in data["layers"]}
    assert rows["1.5"]["kind"] == "mul" and rows["3"]["output"] == [80, 8, 8]
    # 3·3·16·32 + 32, 32·8 + 8, 8·32 + 32, 32·32 + 32
    assert data["totals"]["params"] == 4640 + 264 + 288 + 1056


def test_symbolic_sizes_on_a_graph_spec():
    pytest.importorskip("sympy")
    out = run("table", SE, "--input", "16xHxW")
    assert "80×H×W" in out


def test_plot_of_a_graph_spec(tmp_path: Path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "se.png"
    run("plot", SE, "--out", str(target))
    assert target.stat().st_size > 1000
