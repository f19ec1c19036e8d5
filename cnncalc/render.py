"""Rendering of analyses and comparisons: tables for the terminal (laid out here, written by rich
in colour or as plain text), JSON, CSV and Markdown. No arithmetic on the networks happens here;
only formatting of numbers the engine computed."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .engine import MAC_CONVENTION, Analysis, FloorWarning, Row

if TYPE_CHECKING:
    from fractions import Fraction

    from .compare import Comparison
    from .layers import Shape

FORMATS = ("table", "json", "csv", "markdown")

# --------------------------------------------------------------------------------------------
# Numbers


def _scaled(n: int, units: Iterable[tuple[str, int]], plain: str) -> str:
    for unit, scale in units:
        if abs(n) >= scale:
            # exact integer division first: n may be past float range (10**400)
            whole = abs(n) // scale
            text = f"{n / scale:.3g}" if whole < 10**300 else f"{whole:.3g}"
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
        "jump_hw": list(row.jump), "rf_start_hw": [_json_number(v) for v in row.rf_start],
        "activation_bytes": row.activation_bytes, "formula": list(row.formula),
    }


def _json_number(value: Fraction) -> int | float:
    """An exact half-integer or integer as a JSON number."""
    return value.numerator if value.denominator == 1 else float(value)


def start_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def explain_lines(analysis: Analysis) -> list[str]:
    """``--explain``: every layer's formulas (``analyze(..., explain=True)``), the first line after
    the layer's path, the rest indented under it."""
    lines = []
    for row in analysis.rows:
        if row.leaf and row.formula:
            lines.append(f"{row.path}: {row.formula[0]}")
            lines += [f"  {text}" for text in row.formula[1:]]
    return lines


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
        "depth": depth, "output": list(analysis.output),
        "convention": convention_text(analysis), "convention_name": analysis.convention,
        "layers": [row_dict(r) for r in analysis.at_depth(depth)],
        "totals": asdict(analysis.totals),
        "warnings": [*(warning_dict(w) for w in analysis.warnings),
                     *(graph_warning_dict(w) for w in analysis.graph_warnings)],
        **({"outputs": [{"name": name, "shape": list(shape)} for name, shape
                        in zip(analysis.graph.output_names, analysis.outputs)]}
           if analysis.graph is not None and analysis.graph.output_names else {}),
    }


def graph_warning_dict(warning: Any) -> dict[str, Any]:
    """A graph warning (a layer whose output is never used) in the shape of a floor warning."""
    return {"path": warning.path, "severity": warning.severity, "message": warning.message,
            "floors": []}


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
             "output": list(a.output), "params": a.totals.params, "macs": a.totals.macs,
             "convention": a.convention}
            for a in analyses]


def iter_json(obj: Any) -> Iterator[str]:
    """JSON text in pieces: the top-level object's keys, and the items of its lists of objects,
    one per line, indented by two; each item (a row, a total, a warning) on one line, written by the C encoder with
    ``", "`` and ``": "`` (``indent=`` would force Python's pure-Python encoder: 4–6× slower at
    100,000 rows). The layout is docs/json.md's; any JSON reader reads it the same."""
    import json

    compact = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "),
                               check_circular=False).encode

    def block(value: Any, pad: str) -> Iterator[str]:
        if isinstance(value, dict) and value:
            yield "{"
            last = len(value) - 1
            for index, (key, item) in enumerate(value.items()):
                yield f"\n{pad}  {compact(str(key))}: "
                yield from block(item, pad + "  ") if pad == "" else (compact(item),)
                if index != last:
                    yield ","
            yield f"\n{pad}}}"
        elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            yield "["
            last = len(value) - 1
            for index, item in enumerate(value):
                yield f"\n{pad}  {compact(item)}{',' if index != last else ''}"
            yield f"\n{pad}]"
        else:
            yield compact(value)

    yield from block(obj, "")
    yield "\n"


def write_json(obj: Any, stream: Any) -> None:
    """Write ``obj`` as JSON to ``stream`` in bounded pieces (no 50 MB string at 100k rows)."""
    pieces: list[str] = []
    size = 0
    for piece in iter_json(obj):
        pieces.append(piece)
        size += len(piece)
        if size > 1 << 20:
            stream.write("".join(pieces))
            pieces, size = [], 0
    stream.write("".join(pieces))


def to_json(obj: Any) -> str:
    return "".join(iter_json(obj))


# --------------------------------------------------------------------------------------------
# Row tables shared by the rich, Markdown and CSV renderers

TABLE_COLUMNS = ("Layer", "Kind", "Output", "Settings", "Params", "MACs", "RF", "Act. mem")


def convention_text(analysis: Analysis) -> str:
    """The sentence saying how ``analysis``'s MACs column was counted (``--convention``)."""
    if analysis.convention == "macs":
        return MAC_CONVENTION
    from .conventions import get

    return "Counted as " + get(analysis.convention).description


def macs_label(analysis: Analysis) -> str:
    """The MACs column's heading: 'MACs', or the convention's unit ('FLOPs', 'flops (fvcore)')."""
    if analysis.convention == "macs":
        return "MACs"
    from .conventions import get

    return get(analysis.convention).unit


def table_columns(analysis: Analysis) -> tuple[str, ...]:
    return tuple(macs_label(analysis) if c == "MACs" else c for c in TABLE_COLUMNS)


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
    lines.append(convention_text(analysis) + "; RF: receptive field in input pixels")
    warnings = [w for w in analysis.warnings if w.severity == "warning"]
    notes = [w for w in analysis.warnings if w.severity == "note"]
    lines += [f"warning: {w.message}" for w in warnings]
    lines += [f"warning: {w.message}" for w in analysis.graph_warnings]
    if analysis.graph is not None and analysis.graph.output_names:
        lines.append("outputs: " + ", ".join(
            f"{name} {shape_text(shape)}"
            for name, shape in zip(analysis.graph.output_names, analysis.outputs)))
    if notes:
        lines.append(f"note: {len(notes)} layer(s) floor a division but leave only padding unread: "
                     + ", ".join(w.path for w in notes))
    return lines


def analysis_markdown(analysis: Analysis, depth: int | None, numbers: Numbers) -> str:
    rows = [_row_cells(r, numbers) for r in analysis.at_depth(depth)]
    rows.append([f"**{c}**" if c else "" for c in _total_cells(analysis, numbers)])
    text = _markdown_table(table_columns(analysis), rows, right=range(4, 8))
    formulas = explain_lines(analysis)
    if formulas:
        text += "\n```\n" + "\n".join(formulas) + "\n```\n"
    return text + "\n" + "\n".join(f"- {line}" for line in footer_lines(analysis, numbers)) + "\n"


def _markdown_table(header: Iterable[str], rows: list[list[str]], right: Iterable[int]) -> str:
    header = list(header)
    right = set(right)
    escape: Callable[[str], str] = lambda s: s.replace("|", "\\|")
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+1``, ``@x``:
    a layer name is user text) gets a leading ``'``, which spreadsheets show as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _SafeCsvWriter:
    def __init__(self, writer: Any):
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def _csv_writer() -> tuple[Any, Any]:
    """A CSV writer with Unix line ends into a string buffer: (buffer, writer); text cells that
    would be spreadsheet formulas are neutralised (:func:`csv_cell`)."""
    import csv
    import io

    out = io.StringIO()
    return out, _SafeCsvWriter(csv.writer(out, lineterminator="\n"))


CSV_COLUMNS = ("path", "kind", "depth", "leaf", "head", "output", "settings", "params",
               "trainable_params", "buffers", "macs", "rf", "jump", "activation_bytes",
               "rf_start", "formula")


def analysis_csv(analysis: Analysis, depth: int | None) -> str:
    """One CSV line per row at the depth; exact integers; shapes as C×H×W with 'x'."""
    out, writer = _csv_writer()
    writer.writerow(CSV_COLUMNS)
    for r in analysis.at_depth(depth):
        writer.writerow([r.path, r.kind, r.depth, int(r.leaf), int(r.head),
                         "x".join(map(str, r.output)), r.settings, r.params, r.trainable_params,
                         r.buffers, r.macs, "x".join(map(str, r.rf)), "x".join(map(str, r.jump)),
                         r.activation_bytes, "x".join(map(start_text, r.rf_start)),
                         "; ".join(r.formula)])
    return out.getvalue()


_EIGHTHS = " ▏▎▍▌▋▊▉"


def share_bar(part: int, whole: int, width: int = 10) -> str:
    """``part``'s share of ``whole`` as a bar of block characters, ``width`` cells for 100%,
    drawn to an eighth of a cell: 50% of 10 cells is '█████'. Empty for a zero share."""
    if whole <= 0 or part <= 0:
        return ""
    eighths = min(round(8 * width * part / whole), 8 * width) or 1  # a visible sliver when tiny
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


# --------------------------------------------------------------------------------------------
# Tables and reports laid out here

# Where stdout is not a terminal, the console is at least this wide, so that tables piped to a
# file or a pager are not cut to 80 columns.
MIN_PIPE_WIDTH = 200


def console() -> Any:
    """The rich console the commands print to."""
    from rich.console import Console

    con = Console()
    if not con.is_terminal:
        con = Console(width=max(con.width, MIN_PIPE_WIDTH))
    return con


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


class TextTable:
    """A table that looks like rich's ``Table(box=None, pad_edge=False)`` (columns two spaces
    apart, an italic title, a bold header) but is laid out here: each column's width is measured
    once and each line written as one run of text per style. rich's Table measures and renders
    every cell through its layout engine, about half a millisecond a row (a quarter of a second
    for ResNet-152's 523 rows); this takes microseconds a row.

    It is a rich renderable, so that rich writes it in colour to a terminal; :class:`Report`
    writes it as plain text elsewhere. When it is wider than the space it has, or a cell holds a
    line break or a tab, or the title is wider than the table, it hands over to a rich ``Table``
    of the same cells, which wraps text columns and never shortens a number. Cells are printed as given,
    never read as rich markup.
    """

    def __init__(self, title: str | None, headers: Iterable[str], right: Iterable[int] = (),
                 styles: dict[int, str] | None = None):
        self.title = title
        self.headers = list(headers)
        self.right = frozenset(right)  # right-justified columns; the others are left-justified
        self.styles = styles or {}  # column → rich style of its cells (not of its header)
        self.rows: list[tuple[list[str], str | None]] = []

    def add_row(self, cells: list[str], style: str | None = None) -> None:
        self.rows.append((cells, style))

    def _widths(self, max_width: int) -> tuple[list[int], bool] | None:
        """Each column's width, and whether every cell is as wide as it is long (so that str's
        own padding is right); None where the rich Table must lay the table out instead."""
        columns = list(zip(self.headers, *(cells for cells, _ in self.rows)))
        text = "".join("".join(column) for column in columns)
        # every character one cell wide (none wide, as CJK and emoji, nor of zero width)
        narrow = all(_cell_width(c) == 1 for c in set(text))
        widths = [max(map(len if narrow else _cell_width, column)) for column in columns]
        width = sum(widths) + 2 * (len(widths) - 1)
        if (width > max_width or "\n" in text or "\t" in text
                or (self.title and _cell_width(self.title) > width)):
            return None
        return widths, narrow

    def _pad(self, cells: list[str], widths: list[int], narrow: bool) -> list[str]:
        if narrow:
            return [c.rjust(w) if i in self.right else c.ljust(w)
                    for i, (c, w) in enumerate(zip(cells, widths))]
        pads = [" " * (w - _cell_width(c)) for c, w in zip(cells, widths)]
        return [p + c if i in self.right else c + p for i, (c, p) in enumerate(zip(cells, pads))]

    def plain_lines(self, max_width: int) -> list[str] | None:
        """The table as lines of plain text (no trailing spaces), or None where it needs rich."""
        layout = self._widths(max_width)
        if layout is None:
            return None
        widths, narrow = layout
        lines = [self.title] if self.title else []
        lines.append("  ".join(self._pad(self.headers, widths, narrow)).rstrip())
        if narrow:  # one format string for every row: str.format pads in C
            line = "  ".join(f"{{:{'>' if i in self.right else '<'}{w}}}"
                             for i, w in enumerate(widths)).format
            lines += [line(*cells).rstrip() for cells, _ in self.rows]
        else:
            lines += ["  ".join(self._pad(cells, widths, narrow)).rstrip()
                      for cells, _ in self.rows]
        return lines

    def rich_table(self) -> Any:
        """The same cells as a rich ``Table``."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, title_justify="left", header_style="bold", box=None,
                      pad_edge=False)
        for i, header in enumerate(self.headers):
            if i in self.right:  # numbers: never shortened to "2.4…", whatever the width
                longest = max((_cell_width(cells[i]) for cells, _ in self.rows), default=0)
                table.add_column(Text(header), justify="right", no_wrap=True,
                                 min_width=longest, style=self.styles.get(i))
            else:  # text: wrapped (at spaces where it has them, else folded), never cut
                table.add_column(Text(header), justify="left", overflow="fold",
                                 style=self.styles.get(i))
        for cells, style in self.rows:
            table.add_row(*map(Text, cells), style=style)
        return table

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        layout = self._widths(options.max_width)
        if layout is None:
            return Measurement.get(console, options, self.rich_table())
        width = sum(layout[0]) + 2 * (len(layout[0]) - 1)
        return Measurement(width, width)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment
        from rich.text import Text

        layout = self._widths(options.max_width)
        if layout is None:
            yield self.rich_table()
            return
        widths, narrow = layout
        if self.title:
            yield Text(self.title, style="table.title")
        styles: dict[str, Any] = {}

        def line(cells: list[str], row_style: str | None, column_styles: dict[int, str]) -> Any:
            runs: list[list[str]] = []  # [style, text]: one segment per run of equal style
            for i, text in enumerate(self._pad(cells, widths, narrow)):
                style = " ".join(filter(None, (column_styles.get(i), row_style)))
                if runs and runs[-1][0] == style:
                    runs[-1][1] += "  " + text
                else:
                    if runs:
                        runs[-1][1] += "  "
                    runs.append([style, text])
            while runs and not runs[-1][1].strip():  # no trailing spaces
                runs.pop()
            if runs:
                runs[-1][1] = runs[-1][1].rstrip()
            for style, text in runs:
                if style not in styles:
                    styles[style] = console.get_style(style) if style else None
                yield Segment(text, styles[style])
            yield Segment.line()

        yield from line(self.headers, "bold", {})
        for cells, style in self.rows:
            yield from line(cells, style, self.styles)


class Report:
    """What a command prints: tables and lines of text, each line with a rich style. rich writes
    it where colour may be wanted (a terminal, FORCE_COLOR); elsewhere :meth:`plain` gives the
    same text without rich, unless something in it needs rich's wrapping."""

    def __init__(self) -> None:
        self.parts: list[TextTable | tuple[str, str | None]] = []

    def table(self, table: TextTable) -> TextTable:
        self.parts.append(table)
        return table

    def line(self, text: str = "", style: str | None = None) -> None:
        self.parts.append((text, style))

    def plain(self, max_width: int = MIN_PIPE_WIDTH) -> str | None:
        """The report as plain text, or None where a line is too wide or holds a tab or line
        break (rich wraps those)."""
        lines: list[str] = []
        for part in self.parts:
            if isinstance(part, TextTable):
                table = part.plain_lines(max_width)
                if table is None:
                    return None
                lines += table
            else:
                text = part[0]
                if "\n" in text or "\t" in text or _cell_width(text) > max_width:
                    return None
                lines.append(text)
        return "".join(f"{line}\n" for line in lines)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        for part in self.parts:
            yield part if isinstance(part, TextTable) else Text(part[0], style=part[1] or "")


def plain_text(renderable: Any) -> str | None:
    """What to write to stdout without rich: a :class:`Report`'s plain text where stdout is not
    a terminal and no colour is forced (rich's own tests: TTY_COMPATIBLE, FORCE_COLOR, isatty);
    None where rich should write it."""
    import os
    import sys

    if not isinstance(renderable, Report):
        return None
    tty = os.environ.get("TTY_COMPATIBLE", "")
    if tty == "1" or (tty != "0" and os.environ.get("FORCE_COLOR")):
        return None
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        if tty != "0" and isatty is not None and isatty():
            return None
    except ValueError:
        pass
    return renderable.plain()


def analysis_rich(analysis: Analysis, depth: int | None, numbers: Numbers) -> Report:
    """The layer table with a totals row, then the footer."""
    label = macs_label(analysis)  # the bar is the share of whatever the MACs column counts
    headers = [*table_columns(analysis), "MAC share" if label == "MACs" else f"{label} share"]
    report = Report()
    table = report.table(TextTable(f"{analysis.spec.name}: {analysis.spec.title}", headers,
                                   right=range(4, 8), styles={8: "cyan"}))
    whole = analysis.totals.macs
    for row in analysis.at_depth(depth):
        style = "dim" if row.head else ("bold" if not row.leaf else None)
        table.add_row([*_row_cells(row, numbers), share_bar(row.macs, whole)], style)
    table.add_row([*_total_cells(analysis, numbers), ""], "bold")
    report.line()
    formulas = explain_lines(analysis)
    if formulas:
        report.line("Formulas", "bold")
        for line in formulas:
            report.line(line)
        report.line()
    for line in footer_lines(analysis, numbers):
        report.line(line, "yellow" if line.startswith("warning") else "dim")
    return report


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
        cells += [ratio_text(comparison.row_ratio(matched, "macs", i))
                  for i in range(1, len(matched.rows))]
        rows.append(cells)
    return header, rows


def comparison_markdown(comparison: Comparison, numbers: Numbers) -> str:
    header, rows = _comparison_totals(comparison, numbers)
    text = _markdown_table(header, rows, right=range(1, len(header)))
    header, rows = _comparison_rows(comparison, numbers)
    return text + "\n" + _markdown_table(header, rows, right=range(1, len(header))) + \
        f"\n- {convention_text(comparison.analyses[0])}\n"


def comparison_csv(comparison: Comparison) -> str:
    names = [a.spec.name for a in comparison.analyses]
    out, writer = _csv_writer()
    writer.writerow(["path", *(f"{n}_{m}" for m in ("macs", "params") for n in names)])
    writer.writerow(["total", *(a.totals.macs for a in comparison.analyses),
                     *(a.totals.params for a in comparison.analyses)])
    for matched in comparison.rows:
        writer.writerow([matched.path, *(r.macs if r else "" for r in matched.rows),
                         *(r.params if r else "" for r in matched.rows)])
    return out.getvalue()


def comparison_rich(comparison: Comparison, numbers: Numbers) -> Report:
    report = Report()
    for title, (header, rows) in (("Totals", _comparison_totals(comparison, numbers)),
                                  ("Matching rows", _comparison_rows(comparison, numbers))):
        table = report.table(TextTable(title, header, right=range(1, len(header))))
        for row in rows:
            table.add_row(row)
        report.line()
    report.line(convention_text(comparison.analyses[0]), "dim")
    return report


def list_rich(analyses: list[Analysis], numbers: Numbers) -> Report:
    report = Report()
    label = macs_label(analyses[0]) if analyses else "MACs"
    table = report.table(TextTable("The zoo", ("Name", "Title", "Input", "Params", label),
                                   right=(3, 4)))
    for a in analyses:
        table.add_row([a.spec.name, a.spec.title, shape_text(a.input),
                       numbers.count(a.totals.params), numbers.count(a.totals.macs)])
    return report


def list_markdown(analyses: list[Analysis], numbers: Numbers) -> str:
    rows = [[a.spec.name, a.spec.title, shape_text(a.input), numbers.count(a.totals.params),
             numbers.count(a.totals.macs)] for a in analyses]
    label = macs_label(analyses[0]) if analyses else "MACs"
    return _markdown_table(("Name", "Title", "Input", "Params", label), rows, right=(3, 4))


def list_csv(analyses: list[Analysis]) -> str:
    out, writer = _csv_writer()
    writer.writerow(["name", "title", "input", "params", "macs"])
    for a in analyses:
        writer.writerow([a.spec.name, a.spec.title, "x".join(map(str, a.input)),
                         a.totals.params, a.totals.macs])
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Reconciliation of counting conventions (cnncalc reconcile) and the memory model (cnncalc memory)


def _head_line(analysis: Analysis) -> str:
    return (f"{analysis.spec.name}: {analysis.spec.title} — input {shape_text(analysis.input)}, "
            f"batch {analysis.batch}")


def reconcile_dict(rec: Any) -> dict[str, Any]:
    """The ``reconcile --format json`` object (docs/json.md)."""
    a = rec.analysis
    base = rec.baseline_total
    return {
        "spec": a.spec.name, "title": a.spec.title, "input": list(a.input), "batch": a.batch,
        "baseline": rec.baseline, "operators": list(rec.operators),
        "conventions": [{
            "name": r.convention.name, "unit": r.convention.unit, "tool": r.convention.tool,
            "call": r.convention.call, "summary": r.convention.summary, "total": r.count.total,
            "difference": r.count.total - base, "head_total": r.count.head_total,
            "by_operator": dict(r.count.by_operator),
            "differences": [{"operator": d.operator, "count": d.count, "baseline": d.baseline,
                             "delta": d.delta, "why": d.why} for d in r.differences],
        } for r in rec.rows],
    }


def _reconcile_totals(rec: Any, numbers: Numbers) -> tuple[list[str], list[list[str]]]:
    base = rec.baseline_total
    header = ["Convention", "Tool", "Total", f"vs {rec.baseline}", "Where it differs"]
    rows = []
    for r in rec.rows:
        delta = r.count.total - base
        rows.append([r.convention.name, r.convention.tool or "—", numbers.count(r.count.total),
                     "=" if not delta else f"{'+' if delta > 0 else '−'}{numbers.count(abs(delta))}",
                     r.summary])
    return header, rows


def _reconcile_operators(rec: Any, numbers: Numbers) -> tuple[list[str], list[list[str]]]:
    header = ["Operator", *(r.convention.name for r in rec.rows)]
    rows = [[op, *(numbers.count(r.count.by_operator.get(op, 0), blank_zero=True)
                   for r in rec.rows)] for op in rec.operators]
    rows.append(["Total", *(numbers.count(r.count.total) for r in rec.rows)])
    return header, rows


def reconcile_why_lines(rec: Any) -> list[str]:
    """Per convention, how it counts each operator where it differs from the baseline."""
    lines = []
    for r in rec.rows:
        if not r.differences:
            continue
        lines.append(f"{r.convention.name}: {r.convention.summary}"
                     + (f" [{r.convention.tool}: {r.convention.call}]" if r.convention.tool else ""))
        for d in r.differences:
            lines.append(f"  {d.operator}: {d.count:,} vs {d.baseline:,} — {d.why}")
    return lines


def reconcile_rich(rec: Any, numbers: Numbers) -> Report:
    report = Report()
    report.line(_head_line(rec.analysis), "bold")
    report.line()
    header, rows = _reconcile_totals(rec, numbers)
    tables = [TextTable("Totals", header, right=(2, 3))]
    header, rows2 = _reconcile_operators(rec, numbers)
    tables.append(TextTable("By operator", header, right=range(1, len(header))))
    for table, cells in zip(tables, (rows, rows2)):
        report.table(table)
        for row in cells:
            table.add_row(row)
        report.line()
    for line in reconcile_why_lines(rec):
        report.line(line, "dim")
    return report


def reconcile_markdown(rec: Any, numbers: Numbers) -> str:
    header, rows = _reconcile_totals(rec, numbers)
    text = f"**{_head_line(rec.analysis)}**\n\n" + _markdown_table(header, rows, right=(2, 3))
    header, rows = _reconcile_operators(rec, numbers)
    text += "\n" + _markdown_table(header, rows, right=range(1, len(header)))
    return text + "\n" + "".join(f"- {line.strip()}\n" if not line.startswith("  ")
                                 else f"  - {line.strip()}\n" for line in reconcile_why_lines(rec))


def reconcile_csv(rec: Any) -> str:
    """One line per operator, one column per convention (exact integers), then the totals."""
    out, writer = _csv_writer()
    writer.writerow(["operator", *(r.convention.name for r in rec.rows)])
    for op in rec.operators:
        writer.writerow([op, *(r.count.by_operator.get(op, 0) for r in rec.rows)])
    writer.writerow(["total", *(r.count.total for r in rec.rows)])
    return out.getvalue()


def memory_dict(report: Any, layers: bool = True) -> dict[str, Any]:
    """The ``memory --format json`` object (docs/json.md); bytes and MACs for the batch."""
    a = report.analysis
    return {
        "spec": a.spec.name, "title": a.spec.title, "input": list(a.input), "batch": a.batch,
        "dtype": a.dtype, "optimizer": report.optimizer,
        "inference": {
            "param_bytes": report.param_bytes, "buffer_bytes": report.buffer_bytes,
            "input_bytes": report.input_bytes,
            "activation_peak_bytes": report.activation_peak_bytes,
            "activation_peak_at": report.activation_peak_at,
            "activation_sum_bytes": report.activation_sum_bytes,
            "total_bytes": report.inference_bytes,
        },
        "training": {
            "param_bytes": report.param_bytes, "buffer_bytes": report.buffer_bytes,
            "gradient_bytes": report.gradient_bytes, "optimizer_bytes": report.optimizer_bytes,
            "saved_bytes": report.saved_bytes, "forward_peak_bytes": report.forward_peak_bytes,
            "backward_peak_bytes": report.backward_peak_bytes,
            "total_bytes": report.training_bytes,
            "forward_macs": report.forward_macs, "backward_macs": report.backward_macs,
            "macs": report.training_macs,
        },
        "assumptions": list(report.assumptions),
        "layers": [{
            "path": m.path, "kind": m.kind, "output_bytes": m.output_bytes,
            "live_bytes": m.live_bytes, "saved": m.saved, "saved_bytes": m.saved_bytes,
            "forward_macs": m.forward_macs, "backward_macs": m.backward_macs,
        } for m in report.layers] if layers else [],
    }


MEMORY_COLUMNS = ("Layer", "Kind", "Output", "Live (inference)", "Saved for backward",
                  "Saved", "Fwd MACs", "Bwd MACs")


def _memory_cells(m: Any, numbers: Numbers) -> list[str]:
    kind = m.kind if m.kind not in ("add", "concat") else f"({m.kind})"
    return [m.path, kind, numbers.bytes(m.output_bytes) if m.output_bytes else "—",
            numbers.bytes(m.live_bytes) if m.live_bytes else "—", m.saved or "—",
            numbers.bytes(m.saved_bytes) if m.saved_bytes else "—",
            numbers.count(m.forward_macs, blank_zero=True),
            numbers.count(m.backward_macs, blank_zero=True)]


def memory_summary_lines(report: Any, numbers: Numbers) -> list[str]:
    a = report.analysis
    b = numbers.bytes
    lines = [
        f"{_head_line(a)}, {a.dtype}",
        f"Inference: {b(report.inference_bytes)} = parameters {b(report.param_bytes)} + buffers "
        f"{b(report.buffer_bytes)} + activation peak {b(report.activation_peak_bytes)} (while "
        f"{report.activation_peak_at} runs; the sum of all outputs would be "
        f"{b(report.activation_sum_bytes)})",
        f"Training ({report.optimizer}): {b(report.training_bytes)} = parameters "
        f"{b(report.param_bytes)} + buffers {b(report.buffer_bytes)} + gradients "
        f"{b(report.gradient_bytes)} + optimizer state {b(report.optimizer_bytes)} + activation "
        f"peak {b(report.training_activation_peak_bytes)} (saved for backward "
        f"{b(report.saved_bytes)}; forward peak {b(report.forward_peak_bytes)}, backward peak "
        f"{b(report.backward_peak_bytes)})",
        f"Training compute per step: {numbers.count(report.training_macs)} MACs = forward "
        f"{numbers.count(report.forward_macs)} + backward {numbers.count(report.backward_macs)} "
        f"(conv and linear: an input gradient and a weight gradient, each as many MACs as the "
        f"forward, ≈ 2 × forward; the first layer needs no input gradient)",
    ]
    return lines


def memory_rich(report: Any, numbers: Numbers, layers: bool = True) -> Report:
    out = Report()
    if layers:
        table = out.table(TextTable(f"{report.analysis.spec.name}: memory per layer",
                                    MEMORY_COLUMNS, right=(2, 3, 5, 6, 7)))
        for m in report.layers:
            table.add_row(_memory_cells(m, numbers),
                          "bold" if m.path == report.activation_peak_at else None)
        out.line()
    summary = memory_summary_lines(report, numbers)
    out.line(summary[0], "bold")
    for line in summary[1:]:
        out.line(line)
    out.line("Assumptions (docs/memory.md):", "dim")
    for line in report.assumptions:
        out.line(f"  - {line}", "dim")
    return out


def memory_markdown(report: Any, numbers: Numbers, layers: bool = True) -> str:
    text = ""
    if layers:
        rows = [_memory_cells(m, numbers) for m in report.layers]
        text = _markdown_table(MEMORY_COLUMNS, rows, right=(2, 3, 5, 6, 7)) + "\n"
    return text + "".join(f"- {line}\n" for line in memory_summary_lines(report, numbers))


def memory_csv(report: Any) -> str:
    out, writer = _csv_writer()
    writer.writerow(["path", "kind", "output_bytes", "live_bytes", "saved", "saved_bytes",
                     "forward_macs", "backward_macs"])
    for m in report.layers:
        writer.writerow([m.path, m.kind, m.output_bytes, m.live_bytes, m.saved, m.saved_bytes,
                         m.forward_macs, m.backward_macs])
    return out.getvalue()


__all__ = [
    "FORMATS", "Numbers", "Report", "TextTable", "analysis_csv", "analysis_dict",
    "analysis_markdown", "analysis_rich", "comparison_csv", "comparison_dict",
    "comparison_markdown", "comparison_rich", "console", "human_bytes", "human_count", "list_csv",
    "list_dict", "list_markdown", "list_rich", "memory_csv", "memory_dict", "memory_markdown",
    "memory_rich", "plain_text", "reconcile_csv", "reconcile_dict", "reconcile_markdown",
    "reconcile_rich", "share_bar", "to_json",
]
