"""The tables cnncalc lays out itself (render.TextTable, render.Report) against rich's Table.

rich's Table measures and renders every cell through its layout engine, a quarter of a second
for ResNet-152's 523 rows; cnncalc lays its tables out itself and must print what rich would:
the same text, colour added only by rich, and rich's own Table wherever the table needs wrapping.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.text import Text

from cnncalc import analyze, compare, load_spec
from cnncalc import render
from cnncalc.conventions import apply, reconcile
from cnncalc.memory import memory

NUMBERS = render.Numbers(False)


def _reports() -> dict[str, render.Report]:
    alexnet = analyze(load_spec("alexnet"), input="3x224x224", explain=True)  # warnings, formulas
    resnet = analyze(load_spec("resnet50"))
    googlenet = apply(analyze(load_spec("googlenet")), "fvcore")  # side heads, dim rows
    naive, bottleneck = (analyze(load_spec(n)) for n in ("inception-naive", "inception-bottleneck"))
    return {
        "alexnet": render.analysis_rich(alexnet, None, NUMBERS),
        "resnet50 depth 2": render.analysis_rich(resnet, 2, render.Numbers(True)),
        "googlenet fvcore": render.analysis_rich(googlenet, None, NUMBERS),
        "list": render.list_rich([naive, bottleneck, resnet], NUMBERS),
        "compare": render.comparison_rich(compare([naive, bottleneck]), NUMBERS),
        "memory": render.memory_rich(memory(resnet), NUMBERS),
        "reconcile": render.reconcile_rich(reconcile(resnet), NUMBERS),
    }


REPORTS = _reports()


def _print(renderable, width: int = 200, colour: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=colour,
                      color_system="standard" if colour else None)
    console.print(renderable, crop=False)  # as the command line prints: nothing cut
    return out.getvalue()


def _as_rich(report: render.Report) -> list:
    """The report with each table as rich's Table: what cnncalc printed before it laid tables
    out itself."""
    return [part.rich_table() if isinstance(part, render.TextTable)
            else Text(part[0], style=part[1] or "") for part in report.parts]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in re.sub(r"\x1b\[[0-9;]*m", "", text).split("\n")]


WIDE = 400  # the memory and reconcile reports have lines longer than 200 characters


@pytest.mark.parametrize("name", REPORTS)
def test_plain_text_is_what_rich_prints(name):
    report = REPORTS[name]
    expected = "".join(_print(part, WIDE) for part in _as_rich(report))
    assert _lines(report.plain(WIDE)) == _lines(expected)


@pytest.mark.parametrize("name", REPORTS)
def test_in_colour_the_text_is_the_same(name):
    report = REPORTS[name]
    coloured = _print(report, WIDE, colour=True)
    assert "\x1b[" in coloured
    assert _lines(coloured) == _lines(report.plain(WIDE))


def test_plain_text_is_never_wrapped():
    text = REPORTS["memory"].plain()
    assert max(map(len, text.splitlines())) > 200  # the summary's lines, whole
    assert text == REPORTS["memory"].plain(None)


@pytest.mark.parametrize("width", [40, 60, 80, 120])
@pytest.mark.parametrize("name", REPORTS)
def test_a_narrow_console_fits_and_cuts_nothing(name, width):
    report = REPORTS[name]
    printed = _lines(_print(report, width=width))
    assert printed == _lines(report.plain(width))  # rich prints the fitted layout, no more
    wide = report.plain()
    for part in report.parts:
        if isinstance(part, render.TextTable):  # every label whole, at a line's start
            labels = {line.split("  ")[0].strip() for line in printed}
            for cells, _ in part.rows:
                assert cells[0] in labels or not cells[0], cells[0]
    for line in printed:
        # too wide only where one word is: a layer's label and a number, or a long word
        assert len(line) <= width or " " not in line.strip() or len(line.split("  ")) <= 2, line
    if any(line.startswith("Not shown at") for line in printed):
        return  # columns left out (tested below)
    words = set(wide.split())
    headers = {w for part in report.parts if isinstance(part, render.TextTable)
               for h in part.headers for w in h.split()}  # short headers may stand for them
    assert words - headers <= set(" ".join(printed).split())


def test_a_narrow_table_drops_the_share_bar_first_and_says_so():
    table = render.analysis_table(analyze(load_spec("resnet50")), None, NUMBERS)
    lines = table.plain_lines(80)
    assert max(map(len, lines)) <= 80
    assert "MAC share" not in lines[1]
    assert any(line.startswith("Not shown at 80 columns: MAC share") for line in lines)
    assert "MAC share" in table.plain_lines(200)[1]
    wide = render.analysis_table(analyze(load_spec("resnet50")), None, NUMBERS, wide=True)
    assert not any("Not shown" in line for line in wide.plain_lines(80))


def test_styles_reach_the_terminal():
    table = render.TextTable("t", ["a", "b"], right=[1], styles={1: "cyan"})
    table.add_row(["x", "1"], "bold")
    table.add_row(["y", "22"])
    coloured = _print(table, colour=True)
    assert "\x1b[1;36m" in coloured  # a bold row's cyan cell: both styles
    assert _lines(coloured)[:4] == ["t", "a   b", "x   1", "y  22"]


def test_cells_are_printed_as_given_and_wide_characters_align():
    table = render.TextTable(None, ["name", "n"], right=[1])
    table.add_row(["[bold]x[/bold]", "1"])
    table.add_row(["卷积层", "22"])
    report = render.Report()
    report.table(table)
    assert report.plain().splitlines() == [
        "name             n",
        "[bold]x[/bold]   1",
        "卷积层          22",
    ]
    assert _lines(_print(report))[:3] == report.plain().splitlines()


def test_tabs_become_spaces_and_a_long_title_is_a_line_of_its_own():
    report = render.Report()
    report.line("a\ttab")
    assert report.plain() == "a tab\n"
    titled = render.TextTable("a title wider than the table", ["a"])
    assert titled.plain_lines() == ["a title wider than the table", "a"]


def test_a_table_too_wide_for_the_terminal_continues_below_with_its_labels():
    table = render.TextTable("t", ["Layer", "aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"],
                             right=[1, 2, 3])
    table.add_row(["conv1", "1", "2", "3"])
    assert table.plain_lines(30) == [
        "t", "Layer  aaaaaaaaaa  bbbbbbbbbb", "conv1           1           2", "",
        "t (continued)", "Layer  cccccccccc", "conv1           3"]


def test_headers_and_prose_wrap_at_spaces():
    table = render.TextTable(None, ["Layer", "Saved for backward", "Bytes"], right=[2], wrap=[1])
    table.add_row(["bn1", "input + batch mean and inverse std", "3.06MiB"])
    assert table.plain_lines(30) == [
        "       Saved for", "Layer  backward          Bytes", "bn1    input + batch   3.06MiB",
        "       mean and", "       inverse std"]


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_narrow_terminal_wraps_text_but_never_shortens_a_number(width):
    analysis = analyze(load_spec("lenet5"))
    text = _print(render.analysis_rich(analysis, None, render.Numbers(True)), width=width)
    assert "…" not in text
    cells = " ".join(_lines(text))
    for row in analysis.at_depth(None):
        if row.params:
            assert f"{row.params:,}" in cells, row.path  # numbers stay whole on one line
        if row.macs:
            assert f"{row.macs:,}" in cells, row.path
    assert f"{analysis.totals.macs:,}" in cells


def test_csv_shape_cells_for_every_rank():
    from cnncalc.render import SHAPE_CSV_COLUMNS, shape_csv_cells

    assert SHAPE_CSV_COLUMNS[:5] == ("input_c", "input_h", "input_w", "input_d", "input_l")
    assert shape_csv_cells((1000,)) == [1000, "", "", "", ""]
    assert shape_csv_cells((128, 3981)) == [128, "", "", "", 3981]
    assert shape_csv_cells((64, 56, 28)) == [64, 56, 28, "", ""]
    assert shape_csv_cells((64, 16, 112, 56)) == [64, 112, 56, 16, ""]
