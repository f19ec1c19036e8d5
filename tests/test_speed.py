"""Speed, without timing anything: what makes cnncalc fast is checked structurally here (what it
imports, and that its work grows linearly), and measured by benchmarks/bench.py, never asserted
against a clock (CI machines vary). `tests/test_cli.py` checks in a subprocess that `table`,
`list` and `compare` never import torch, fvcore or sympy.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cnncalc import analyze
from cnncalc.spec import parse_spec


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {m.split(".")[0] for m in proc.stdout.split()}


def test_the_python_api_needs_neither_typer_nor_rich():
    loaded = _modules_after("""
        from cnncalc import analyze, load_spec
        analyze(load_spec("resnet152"))
    """)
    assert not loaded & {"typer", "click", "rich", "torch", "fvcore", "sympy", "numpy"}


# --------------------------------------------------------------------------------------------
# Linear work: counted in Python function calls, not seconds


def _calls(text: str) -> int:
    """Python and C function calls (generator resumptions included) to parse and analyse."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += 1

    sys.setprofile(profile)
    try:
        analyze(parse_spec(text, "n.yaml", "n"))
    finally:
        sys.setprofile(None)
    return count


def _flat(layers: int) -> str:
    return "input: 8x16x16\nlayers:\n" + "".join(
        "  - conv: {out: 8, kernel: 3, padding: 1}\n  - relu\n" for _ in range(layers // 2))


def _chain(depth: int) -> str:
    """Blocks nested `depth` deep, each a conv and four relus, then the next block."""
    layers = "{conv: {out: 8, kernel: 3, padding: 1}}, relu, relu, relu, relu"
    blocks = "".join(f"  b{i}: {{layers: [{layers}, b{i - 1}]}}\n" for i in range(1, depth))
    return (f"input: 8x16x16\nblocks:\n  b0: {{layers: [relu]}}\n{blocks}"
            f"layers:\n  - b{depth - 1}\n")


@pytest.mark.parametrize("make, small", [(_flat, 400), (_chain, 60)])
def test_work_grows_linearly(make, small):
    """Twice the layers, (about) twice the calls: an O(n²) step anywhere (a list insert per
    group, a group summing its whole subtree) would make it four times."""
    one, two = _calls(make(small)), _calls(make(2 * small))
    assert two / one < 2.3, (one, two)


# --------------------------------------------------------------------------------------------
# Start-up: each command imports what it needs (benchmarks/bench.py times it)


def _cli_modules(*args: str) -> set[str]:
    script = textwrap.dedent(f"""
        import sys
        sys.argv = ["cnncalc", *{list(args)!r}]
        from cnncalc.cli import main
        try:
            main()
        except SystemExit:
            pass
        sys.stderr.write(" ".join(sorted(sys.modules)))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    return set(proc.stderr.split())


def test_version_imports_none_of_the_engine():
    loaded = _cli_modules("--version")
    assert not {m for m in loaded if m.startswith("cnncalc.")} - {
        "cnncalc.cli", "cnncalc.errors", "cnncalc.compare"}


def test_a_table_imports_only_what_it_prints_with():
    """Not the other commands' modules (nor, piped, rich's console where typer does not load
    it anyway: the table is written as plain text)."""
    loaded = _cli_modules("table", "alexnet")
    assert "cnncalc.engine" in loaded
    unneeded = {"cnncalc.conventions", "cnncalc.symbolic", "cnncalc.check", "cnncalc.memory",
                "cnncalc.plot", "cnncalc.schema", "cnncalc.backend", "cnncalc.view"}
    assert not loaded & unneeded
    if "rich.console" not in _cli_modules("table", "alexnet", "--format", "csv"):
        assert "rich.console" not in loaded
