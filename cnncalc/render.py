"""Rendering of analyses and comparisons: rich tables, JSON, CSV and Markdown. No arithmetic on
the networks happens here; only formatting of numbers the engine computed."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from fractions import Fraction
from typing import Any, Callable, Iterable

from .compare import Comparison
from .engine import MAC_CONVENTION, Analysis, FloorWarning, Row
from .layers import Shape

FORMATS = ("table", "json", "csv", "markdown")

# --------------------------------------------------------------------------------------------
# Numbers


def _scaled(n: int, units: Iterable[tuple[str, int]], plain: str) -> str:
    for unit, scale in units:
        if abs(n) >= scale:
            text = f"{n / scale:.3g}"
            if float(text) < 1000:
                return f"{text}{unit}"
    return plain


_COUNT_UNITS = (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3))
_BYTE_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def human_count(n: int) -> str:
    """Decimal units, three significant digits: 62378344 → '62.4M'."""
    return _scaled(n, _COUNT_UNITS, str(n))


def human_bytes(n: int) -> str:
    """Binary units, three significant digits: 3 MiB → '3MiB'."""
    return _scaled(n, _BYTE_UNITS, f"{n}B")


def exact_count(n: int) -> str:
    return f"{n:,}"


def shape_text(shape: Shape) -> str:
    return "×".join(map(str, shape))


def pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"


def ratio_text(ratio: Fraction | None) -> str:
    """×1.5 for more, ÷9.68 for fewer, — when undefined."""
    if ratio is None:
        return "—"
    if ratio == 1:
        return "="
    if ratio > 1:
        return f"×{float(ratio):.3g}"
    return "÷∞" if ratio == 0 else f"÷{float(1 / ratio):.3g}"


class Numbers:
    """How counts and bytes are written: human units, or exact integers with separators."""

    def __init__(self, exact: bool):
        self.exact = exact

    def count(self, n: int, blank_zero: bool = False) -> str:
        if blank_zero and n == 0:
            return "—"
        return exact_count(n) if self.exact else human_count(n)

    def bytes(self, n: int) -> str:
        return f"{n:,} B" if self.exact else human_bytes(n)


# --------------------------------------------------------------------------------------------
# JSON: the documented contract (docs/json.md)


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "path": row.path, "name": row.name, "kind": row.kind, "depth": row.depth,
        "leaf": row.leaf, "head": row.head, "input": list(row.input), "output": list(row.output),
        "settings": row.settings, "params": row.params, "trainable_params": row.trainable_params,
        "buffers": row.buffers, "macs": row.macs, "rf": max(row.rf), "rf_hw": list(row.rf),
        "jump_hw": list(row.jump), "activation_bytes": row.activation_bytes,
    }


def warning_dict(warning: FloorWarning) -> dict[str, Any]:
    return {
        "path": warning.path, "severity": warning.severity, "message": warning.message,
        "floors": [{
            "axis": f.axis, "size": f.size, "padding": list(f.padding), "extent": f.extent,
            "stride": f.stride, "quotient": str(f.quotient), "output": f.output,
            "ignored_input": f.ignored_input, "ignored_padding": f.ignored_padding,
        } for f in warning.floors],
    }


def analysis_dict(analysis: Analysis, depth: int | None = None) -> dict[str, Any]:
    """The ``table --format json`` object."""
    return {
        "spec": analysis.spec.name, "title": analysis.spec.title,
        "input": list(analysis.input), "batch": analysis.batch, "dtype": analysis.dtype,
        "depth": depth, "output": list(analysis.output), "convention": MAC_CONVENTION,
        "layers": [row_dict(r) for r in analysis.at_depth(depth)],
        "totals": asdict(analysis.totals),
        "warnings": [warning_dict(w) for w in analysis.warnings],
    }


def comparison_dict(comparison: Comparison, depth: int | None = None) -> dict[str, Any]:
    """The ``compare --format json`` object: ``{"specs": [table object, …], "rows": […]}``."""
    names = [a.spec.name for a in comparison.analyses]
    return {
        "specs": [analysis_dict(a, depth) for a in comparison.analyses],
        "rows": [{"path": m.path,
                  "by_spec": {n: (row_dict(r) if r else None) for n, r in zip(names, m.rows)}}
                 for m in comparison.rows],
    }


def list_dict(analyses: list[Analysis]) -> list[dict[str, Any]]:
    return [{"name": a.spec.name, "title": a.spec.title, "input": list(a.input),
             "output": list(a.output), "params": a.totals.params, "macs": a.totals.macs}
            for a in analyses]


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# Row tables shared by the rich, Markdown and CSV renderers

TABLE_COLUMNS = ("Layer", "Kind", "Output", "Settings", "Params", "MACs", "RF", "Act. mem")


def _row_cells(row: Row, numbers: Numbers) -> list[str]:
    kind = f"{row.kind} (head)" if row.head else row.kind
    return [row.path, kind, shape_text(row.output), row.settings,
            numbers.count(row.params, blank_zero=True), numbers.count(row.macs, blank_zero=True),
            pair_text(row.rf), numbers.bytes(row.activation_bytes)]


def _total_cells(analysis: Analysis, numbers: Numbers) -> list[str]:
    t = analysis.totals
    return ["Total", "", shape_text(analysis.output), "", numbers.count(t.params),
            numbers.count(t.macs), "", numbers.bytes(t.activation_bytes)]


def footer_lines(analysis: Analysis, numbers: Numbers) -> list[str]:
    """What the table's footer says: input, counts in words, the MAC convention, warnings."""
    t = analysis.totals
    lines = [
        f"{analysis.spec.title} — input {shape_text(analysis.input)}, batch {analysis.batch}, "
        f"{analysis.dtype}",
        f"params {exact_count(t.params)} ({exact_count(t.trainable_params)} trainable, "
        f"{numbers.bytes(t.param_bytes)}); buffers {exact_count(t.buffers)}; "
        f"MACs {exact_count(t.macs)}; activations {numbers.bytes(t.activation_bytes)}",
    ]
    if t.head_params or t.head_macs:
        lines.append(f"side heads: params {exact_count(t.head_params)} (in the params total), "
                     f"MACs {exact_count(t.head_macs)} and activations "
                     f"{numbers.bytes(t.head_activation_bytes)} (not in the totals)")
    lines.append(MAC_CONVENTION + "; RF: receptive field in input pixels")
    warnings = [w for w in analysis.warnings if w.severity == "warning"]
    notes = [w for w in analysis.warnings if w.severity == "note"]
    lines += [f"warning: {w.message}" for w in warnings]
    if notes:
        lines.append(f"note: {len(notes)} layer(s) floor a division but leave only padding unread: "
                     + ", ".join(w.path for w in notes))
    return lines


def analysis_markdown(analysis: Analysis, depth: int | None, numbers: Numbers) -> str:
    rows = [_row_cells(r, numbers) for r in analysis.at_depth(depth)]
    rows.append([f"**{c}**" if c else "" for c in _total_cells(analysis, numbers)])
    text = _markdown_table(TABLE_COLUMNS, rows, right=range(4, 8))
    return text + "\n" + "\n".join(f"- {line}" for line in footer_lines(analysis, numbers)) + "\n"


def _markdown_table(header: Iterable[str], rows: list[list[str]], right: Iterable[int]) -> str:
    header = list(header)
    right = set(right)
    escape: Callable[[str], str] = lambda s: s.replace("|", "\\|")
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = ("path", "kind", "depth", "leaf", "head", "output", "settings", "params",
               "trainable_params", "buffers", "macs", "rf", "jump", "activation_bytes")


def analysis_csv(analysis: Analysis, depth: int | None) -> str:
    """One CSV line per row at the depth; exact integers; shapes as C×H×W with 'x'."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in analysis.at_depth(depth):
        writer.writerow([r.path, r.kind, r.depth, int(r.leaf), int(r.head),
                         "x".join(map(str, r.output)), r.settings, r.params, r.trainable_params,
                         r.buffers, r.macs, "x".join(map(str, r.rf)), "x".join(map(str, r.jump)),
                         r.activation_bytes])
    return out.getvalue()


def analysis_rich(analysis: Analysis, depth: int | None, numbers: Numbers) -> Any:
    """A rich renderable: the layer table with a totals row, then the footer."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{analysis.spec.name}: {analysis.spec.title}", title_justify="left",
                  show_footer=False, header_style="bold", box=None, pad_edge=False)
    for i, column in enumerate(TABLE_COLUMNS):
        table.add_column(column, justify="right" if i >= 4 else "left", no_wrap=True)
    for row in analysis.at_depth(depth):
        style = "dim" if row.head else ("bold" if not row.leaf else None)
        table.add_row(*_row_cells(row, numbers), style=style)
    table.add_section()
    table.add_row(*_total_cells(analysis, numbers), style="bold")
    footer = []
    for line in footer_lines(analysis, numbers):
        style = "yellow" if line.startswith("warning") else "dim"
        footer.append(Text(line, style=style))
    return Group(table, Text(""), *footer)


# --------------------------------------------------------------------------------------------
# Comparisons

_TOTAL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("params", "Params", "count"), ("trainable_params", "Trainable", "count"),
    ("macs", "MACs", "count"), ("activation_bytes", "Activations", "bytes"),
    ("param_bytes", "Param mem", "bytes"),
)


def _comparison_totals(comparison: Comparison, numbers: Numbers) -> tuple[list[str], list[list[str]]]:
    names = [a.spec.name for a in comparison.analyses]
    header = ["", *names] + [f"{n} vs {names[0]}" for n in names[1:]]
    rows = [["Input", *(shape_text(a.input) for a in comparison.analyses)] + [""] * (len(names) - 1),
            ["Output", *(shape_text(a.output) for a in comparison.analyses)] + [""] * (len(names) - 1)]
    for metric, label, unit in _TOTAL_METRICS:
        fmt = numbers.count if unit == "count" else numbers.bytes
        values = [fmt(getattr(a.totals, metric)) for a in comparison.analyses]
        ratios = [ratio_text(r) for r in comparison.ratios(metric)[1:]]
        rows.append([label, *values, *ratios])
    return header, rows


def _comparison_rows(comparison: Comparison, numbers: Numbers) -> tuple[list[str], list[list[str]]]:
    names = [a.spec.name for a in comparison.analyses]
    header = ["Layer"] + [f"{n} MACs" for n in names] + [f"{n} params" for n in names]
    header += [f"MACs {n} vs {names[0]}" for n in names[1:]]
    rows = []
    for matched in comparison.rows:
        cells = [matched.path]
        cells += [numbers.count(r.macs) if r else "—" for r in matched.rows]
        cells += [numbers.count(r.params) if r else "—" for r in matched.rows]
        cells += [ratio_text(Comparison.row_ratio(matched, "macs", i))
                  for i in range(1, len(matched.rows))]
        rows.append(cells)
    return header, rows


def comparison_markdown(comparison: Comparison, numbers: Numbers) -> str:
    header, rows = _comparison_totals(comparison, numbers)
    text = _markdown_table(header, rows, right=range(1, len(header)))
    header, rows = _comparison_rows(comparison, numbers)
    return text + "\n" + _markdown_table(header, rows, right=range(1, len(header))) + \
        f"\n- {MAC_CONVENTION}\n"


def comparison_csv(comparison: Comparison) -> str:
    names = [a.spec.name for a in comparison.analyses]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", *(f"{n}_{m}" for m in ("macs", "params") for n in names)])
    writer.writerow(["total", *(a.totals.macs for a in comparison.analyses),
                     *(a.totals.params for a in comparison.analyses)])
    for matched in comparison.rows:
        writer.writerow([matched.path, *(r.macs if r else "" for r in matched.rows),
                         *(r.params if r else "" for r in matched.rows)])
    return out.getvalue()


def comparison_rich(comparison: Comparison, numbers: Numbers) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for title, (header, rows) in (("Totals", _comparison_totals(comparison, numbers)),
                                  ("Matching rows", _comparison_rows(comparison, numbers))):
        table = Table(title=title, title_justify="left", header_style="bold", box=None,
                      pad_edge=False)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        parts += [table, Text("")]
    parts.append(Text(MAC_CONVENTION, style="dim"))
    return Group(*parts)


def list_rich(analyses: list[Analysis], numbers: Numbers) -> Any:
    from rich.table import Table

    table = Table(title="The zoo", title_justify="left", header_style="bold", box=None,
                  pad_edge=False)
    for i, column in enumerate(("Name", "Title", "Input", "Params", "MACs")):
        table.add_column(column, justify="right" if i >= 3 else "left", no_wrap=i != 1)
    for a in analyses:
        table.add_row(a.spec.name, a.spec.title, shape_text(a.input),
                      numbers.count(a.totals.params), numbers.count(a.totals.macs))
    return table


def list_markdown(analyses: list[Analysis], numbers: Numbers) -> str:
    rows = [[a.spec.name, a.spec.title, shape_text(a.input), numbers.count(a.totals.params),
             numbers.count(a.totals.macs)] for a in analyses]
    return _markdown_table(("Name", "Title", "Input", "Params", "MACs"), rows, right=(3, 4))


def list_csv(analyses: list[Analysis]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "title", "input", "params", "macs"])
    for a in analyses:
        writer.writerow([a.spec.name, a.spec.title, "x".join(map(str, a.input)),
                         a.totals.params, a.totals.macs])
    return out.getvalue()


__all__ = [
    "FORMATS", "Numbers", "analysis_csv", "analysis_dict", "analysis_markdown",
    "analysis_rich", "comparison_csv", "comparison_dict", "comparison_markdown", "comparison_rich",
    "human_bytes", "human_count", "list_csv", "list_dict", "list_markdown", "list_rich", "to_json",
]
