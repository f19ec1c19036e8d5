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
    larger = None
    for unit, scale in units:
        if abs(n) >= scale:
            # exact integer division first: n may be past float range (10**400)
            whole = abs(n) // scale
            text = f"{n / scale:.3g}" if whole < 10**300 else f"{whole:.3g}"
            if float(text) < 1000:
                return f"{text}{unit}"
            if larger is not None:  # 1,026,432 B is 1002 KiB: written 0.979MiB, not 1e+03KiB
                return f"{n / larger[1]:.3g}{larger[0]}"
        larger = (unit, scale)
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


def pair_text(pair: tuple[int, ...]) -> str:
    """One value when every axis agrees (2-D: ``7``), else ``7×3`` (any number of axes)."""
    return str(pair[0]) if all(v == pair[0] for v in pair) else "×".join(map(str, pair))


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
        "buffers": row.buffers, "macs": row.macs, "rf": _json_number(max(row.rf)),
        "rf_hw": _json_numbers(row.rf), "jump_hw": _json_numbers(row.jump),
        "rf_start_hw": _json_numbers(row.rf_start),
        "activation_bytes": row.activation_bytes, "formula": list(row.formula),
    }


def _json_number(value: Fraction) -> int | float:
    """An exact half-integer or integer as a JSON number."""
    if type(value) is int:
        return value
    return value.numerator if value.denominator == 1 else float(value)


def _json_numbers(values: tuple[Fraction, ...]) -> list[int | float]:
    return [v if type(v) is int else _json_number(v) for v in values]


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


def footer_lines(analysis: Analysis, numbers: Numbers, warnings: bool = True) -> list[str]:
    """What the table's footer says: input, counts in words, the MAC convention, and (unless
    ``warnings`` is false) the warnings and notes."""
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
    placeholders = placeholder_line(analysis)
    if placeholders:
        lines.append(placeholders)
    return lines + (warning_lines(analysis) if warnings else [])


def placeholder_line(analysis: Analysis) -> str:
    """'2 placeholder layers count nothing: torch.matmul, torch.topk' (the distinct ops, in
    order), or '' when the spec has none (cnncalc import --allow-unknown writes them)."""
    ops = [r.settings for r in analysis.rows if r.leaf and r.kind == "placeholder"]
    if not ops:
        return ""
    distinct = ", ".join(dict.fromkeys(ops))
    layers = "layer counts" if len(ops) == 1 else "layers count"
    return f"{len(ops)} placeholder {layers} nothing: {distinct}"


def warning_lines(analysis: Analysis) -> list[str]:
    """The floor warnings, one line each, and one line naming the layers with notes."""
    lines = []
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


def analysis_markdown(analysis: Analysis, depth: int | None, numbers: Numbers,
                      columns: str | Iterable[str] | None = None, wide: bool = False,
                      warnings: bool = True) -> str:
    keys = table_column_keys(columns, wide, markdown=True)
    headers, rows = _analysis_cells(analysis, keys, numbers, depth)
    cells = [c for c, _ in rows]
    cells[-1] = [f"**{c}**" if c else "" for c in cells[-1]]
    text = _markdown_table(headers, cells, right=[i for i, k in enumerate(keys) if COLUMNS[k][2]])
    formulas = explain_lines(analysis)
    if formulas:
        text += "\n```\n" + "\n".join(formulas) + "\n```\n"
    return text + "\n" + "\n".join(f"- {line}" for line in
                                   footer_lines(analysis, numbers, warnings=warnings)) + "\n"


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


SHAPE_CSV_COLUMNS = tuple(f"{side}_{axis}" for side in ("input", "output")
                          for axis in ("c", "h", "w", "d", "l"))


def _csv_writer() -> tuple[Any, Any]:
    """A CSV writer with Unix line ends into a string buffer: (buffer, writer); text cells that
    would be spreadsheet formulas are neutralised (:func:`csv_cell`)."""
    import csv
    import io

    out = io.StringIO()
    return out, _SafeCsvWriter(csv.writer(out, lineterminator="\n"))


CSV_COLUMNS = ("path", "kind", "depth", "leaf", "head", "output", "settings", "params",
               "trainable_params", "buffers", "macs", "rf", "jump", "activation_bytes",
               "rf_start", "formula",
               # added after the first release (docs/json.md): rows of several runs can be
               # concatenated, and shapes read back without splitting text
               "spec", "batch", "dtype", *SHAPE_CSV_COLUMNS)


def shape_csv_cells(shape: Iterable[Any]) -> list[Any]:
    """A shape as its C, H, W, D and L cells: a map's C×H×W, a volume's D too, a sequence's
    C and L; a vector's length in C; the axes it lacks empty."""
    dims = list(shape)
    c, *spatial = dims
    if len(spatial) == 1:
        return [c, "", "", "", spatial[0]]
    if len(spatial) == 3:
        return [c, spatial[1], spatial[2], spatial[0], ""]
    return [c, *spatial, *[""] * (2 - len(spatial)), "", ""]


def analysis_csv(analysis: Analysis, depth: int | None) -> str:
    """One CSV line per row at the depth; exact integers; shapes as C×H×W with 'x', and again
    as one integer column per axis."""
    out, writer = _csv_writer()
    writer.writerow(CSV_COLUMNS)
    run = [analysis.spec.name, analysis.batch, analysis.dtype]
    for r in analysis.at_depth(depth):
        writer.writerow([r.path, r.kind, r.depth, int(r.leaf), int(r.head),
                         "x".join(map(str, r.output)), r.settings, r.params, r.trainable_params,
                         r.buffers, r.macs, "x".join(map(str, r.rf)), "x".join(map(str, r.jump)),
                         r.activation_bytes, "x".join(map(start_text, r.rf_start)),
                         "; ".join(r.formula), *run, *shape_csv_cells(r.input),
                         *shape_csv_cells(r.output)])
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
#
# A table printed to a terminal fits the terminal's width without ever cutting a cell: first
# headers get shorter (a short form where the table gives one, else wrapped at their spaces),
# then prose columns wrap at spaces, then the columns a table marks as optional go (and a line
# under it says which), and what is still too wide is printed as several tables side by side in
# turn, each starting with the label column. Piped output is laid out at its natural width and
# never wrapped.

# The width a console that is not a terminal lays out at: in effect, no limit.
PIPE_WIDTH = 1_000_000
MIN_PIPE_WIDTH = PIPE_WIDTH  # the old name


def console() -> Any:
    """The rich console the commands print to: the terminal's width on a terminal, else no limit
    (so that forced colour into a pipe or a file is never wrapped either)."""
    from rich.console import Console

    import os

    con = Console()
    if not con.is_terminal:
        con = Console(width=PIPE_WIDTH)
    elif con.is_dumb_terminal and os.environ.get("COLUMNS", "").isdigit():
        # rich takes a dumb terminal as 80 wide unless given both sizes
        con = Console(width=int(os.environ["COLUMNS"]), height=con.height)
    return con


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def wrap_words(text: str, width: int, measure: Callable[[str], int] = len,
               indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` cells, broken only at single spaces (a word longer
    than the width has a line of its own, whole); lines after the first start with ``indent``."""
    stripped = text.lstrip(" ")
    words = stripped.split(" ")
    line = text[:len(text) - len(stripped)] + words[0]
    lines: list[str] = []
    for word in words[1:]:
        if line.strip() and measure(line) + 1 + measure(word) > width:
            lines.append(line)
            line = indent + word
        else:
            line += " " + word
    lines.append(line)
    return lines


def _words_width(text: str, measure: Callable[[str], int]) -> int:
    return max((measure(w) for line in text.split("\n") for w in line.split(" ")), default=0)


class _Layout:
    """Where a table's columns go at one width: blocks of column indices (the first column
    starts each), each column's width, its header's lines, the columns left out."""

    def __init__(self, blocks: list[list[int]], widths: list[int], headers: list[list[str]],
                 dropped: list[int], short: bool):
        self.blocks = blocks
        self.widths = widths
        self.headers = headers
        self.dropped = dropped
        self.short = short  # short headers in use (the legend explains them)


class TextTable:
    """A table that looks like rich's ``Table(box=None, pad_edge=False)`` (columns two spaces
    apart, an italic title, a bold header) but is laid out here: each column's width is measured
    once and each line written as one run of text per style (rich's Table takes half a
    millisecond a row, a quarter of a second for ResNet-152).

    It is a rich renderable, so that rich writes it in colour to a terminal, fitted to the
    terminal's width (see above); :class:`Report` writes it as plain text elsewhere. Cells are
    printed as given, never read as rich markup, and never cut: numbers (right-justified
    columns) and the first column are never even wrapped.

    ``short``: column → a shorter header for narrow terminals, explained by ``legend`` (a line
    printed under the title whenever a short header is used). ``wrap``: columns of prose, which
    may wrap at spaces. ``drop``: the columns that may be left out, first to go first; ``note``
    says which went (it gets their headers and the width).
    """

    def __init__(self, title: str | None, headers: Iterable[str], right: Iterable[int] = (),
                 styles: dict[int, str] | None = None, *, short: dict[int, str] | None = None,
                 legend: str | None = None, wrap: Iterable[int] = (), drop: Iterable[int] = (),
                 note: Callable[[list[str], int], str] | None = None):
        self.title = title
        self.headers = list(headers)
        self.right = frozenset(right)  # right-justified columns; the others are left-justified
        self.styles = styles or {}  # column → rich style of its cells (not of its header)
        self.short = short or {}
        self.legend = legend
        self.wrap = frozenset(wrap) - self.right - {0}
        self.drop = [c for c in drop if c != 0]
        self.note = note or _hidden_note
        self.rows: list[tuple[list[str], str | None]] = []
        self._measured: Any = None

    def add_row(self, cells: list[str], style: str | None = None) -> None:
        self.rows.append(([c.replace("\t", " ") for c in cells], style))
        self._measured = None

    # -- measuring and fitting

    def _measure(self) -> tuple[Callable[[str], int], list[int], list[int]]:
        """The width function, each column's widest cell line and each column's longest word."""
        if self._measured is None:
            columns = list(zip(*(cells for cells, _ in self.rows))) or [()] * len(self.headers)
            text = "".join(self.headers) + "".join("".join(column) for column in columns)
            # every character one cell wide (none wide, as CJK and emoji, nor of zero width)
            narrow = all(_cell_width(c) == 1 for c in set(text) - {"\n"})
            measure = len if narrow else _cell_width
            content = [max((measure(line) for cell in column for line in cell.split("\n")),
                           default=0) for column in columns]
            words = [_words_width("\n".join(column), measure) if i in self.wrap else content[i]
                     for i, column in enumerate(columns)]
            self._measured = measure, content, words
        return self._measured

    def layout(self, max_width: int | None = None) -> _Layout:
        """Where everything goes within ``max_width`` cells (None: at the natural width)."""
        measure, content, words = self._measure()
        n = len(self.headers)
        full = [max(content[i], max(map(measure, self.headers[i].split("\n")))) for i in range(n)]
        span = lambda cols, ws: sum(ws[c] for c in cols) + 2 * (len(cols) - 1)  # noqa: E731
        cols = list(range(n))
        if max_width is None or span(cols, full) <= max_width:
            return _Layout([cols], full, [h.split("\n") for h in self.headers], [], False)
        # 1. shorter headers
        headers = list(self.headers)
        widths = list(full)
        short = False

        def compact(i: int) -> tuple[str, int]:
            header = self.short.get(i, self.headers[i])
            return header, max(content[i], _words_width(header, measure))

        for i in range(n):  # all at once, so that like columns look alike
            header, width = compact(i)
            if width < widths[i] or i in self.short:
                headers[i], widths[i] = header, width
                short = short or i in self.short
        # 2. prose wraps at spaces, to a comfortable width; 3. the optional columns go;
        # 4. prose wraps down to its longest word
        def wrap(comfortable: int) -> None:
            for i in sorted(self.wrap):
                excess = span(cols, widths) - max_width
                if excess <= 0:
                    break
                floor = max(words[i], _words_width(headers[i], measure),
                            min(comfortable, widths[i]))
                widths[i] = max(floor, widths[i] - excess)

        wrap(24)
        dropped = []
        for i in self.drop:
            if span(cols, widths) <= max_width:
                break
            cols.remove(i)
            dropped.append(i)
        wrap(0)
        # 5. what is still too wide: tables in turn, each starting with the first column
        blocks = [[cols[0]]]
        for i in cols[1:]:
            if len(blocks[-1]) > 1 and span(blocks[-1] + [i], widths) > max_width:
                blocks.append([cols[0]])
            blocks[-1].append(i)
        lines = [wrap_words(h, widths[i], measure) if "\n" not in h else h.split("\n")
                 for i, h in enumerate(headers)]
        return _Layout(blocks, widths, lines, dropped, short)

    # -- writing

    def _cell_lines(self, cells: list[str], layout: _Layout, cols: list[int]) -> list[list[str]]:
        measure = self._measure()[0]
        out = []
        for i in cols:
            text = cells[i]
            if i in self.wrap and measure(text) > layout.widths[i]:
                out.append(wrap_words(text, layout.widths[i], measure))
            else:
                out.append(text.split("\n"))
        return out

    def _lines(self, cell_lines: list[list[str]], cols: list[int], layout: _Layout,
               style: str | None, column_styles: dict[int, str],
               top: bool = False) -> list[list[tuple[str, str | None]]]:
        """Lines of (text, style) runs, padded to the columns' widths, no trailing spaces."""
        measure = self._measure()[0]
        height = max(map(len, cell_lines))
        lines = []
        for k in range(height):
            runs: list[list[Any]] = []
            for i, parts in zip(cols, cell_lines):
                offset = height - len(parts) if top else 0  # headers sit on the rule below them
                text = parts[k - offset] if 0 <= k - offset < len(parts) else ""
                pad = " " * (layout.widths[i] - measure(text))
                text = pad + text if i in self.right else text + pad
                run_style = " ".join(filter(None, (column_styles.get(i), style))) or None
                if runs and runs[-1][0] == run_style:
                    runs[-1][1] += "  " + text
                else:
                    if runs:
                        runs[-1][1] += "  "
                    runs.append([run_style, text])
            while runs and not runs[-1][1].strip():
                runs.pop()
            if runs:
                runs[-1][1] = runs[-1][1].rstrip()
            lines.append([(text, run_style) for run_style, text in runs])
        return lines

    def styled_lines(self, max_width: int | None = None) -> list[list[tuple[str, str | None]]]:
        """The table, fitted to ``max_width`` (None: natural width), as lines of styled runs."""
        layout = self.layout(max_width)
        out: list[list[tuple[str, str | None]]] = []
        for b, cols in enumerate(layout.blocks):
            if b:
                out.append([])
            if self.title:
                title = self.title if not b else f"{self.title} (continued)"
                out += [[(line, "table.title")] for line in
                        (wrap_words(title, max_width) if max_width else [title])]
            if layout.short and self.legend and not b:
                out += [[(line, "dim")] for line in
                        (wrap_words(self.legend, max_width) if max_width else [self.legend])]
            out += self._lines([layout.headers[i] for i in cols], cols, layout, "bold", {},
                               top=True)
            for cells, style in self.rows:
                out += self._lines(self._cell_lines(cells, layout, cols), cols, layout, style,
                                   self.styles)
        if layout.dropped:
            note = self.note([self.headers[i].replace("\n", " ") for i in layout.dropped],
                             max_width or 0)
            out += [[(line, "dim")] for line in wrap_words(note, max_width or len(note))]
        return out

    def plain_lines(self, max_width: int | None = None) -> list[str]:
        """The table as lines of plain text (no trailing spaces)."""
        if max_width is None and not self.short and self._simple():
            return self._fast_lines()
        return ["".join(text for text, _ in line) for line in self.styled_lines(max_width)]

    def _simple(self) -> bool:
        measure = self._measure()[0]
        return measure is len and "\n" not in "".join(self.headers) and not any(
            "\n" in c for cells, _ in self.rows for c in cells)

    def _fast_lines(self) -> list[str]:
        """The natural layout of a table of one-line, narrow cells: one format string for every
        row (str.format pads in C), for ResNet-152's 523 rows."""
        layout = self.layout(None)
        widths = layout.widths
        fmt = "  ".join(f"{{:{'>' if i in self.right else '<'}{w}}}"
                        for i, w in enumerate(widths)).format
        lines = [self.title] if self.title else []
        lines.append(fmt(*self.headers).rstrip())
        lines += [fmt(*cells).rstrip() for cells, _ in self.rows]
        return lines

    def rich_table(self) -> Any:
        """The same cells as a rich ``Table`` (for comparison in the tests)."""
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, title_justify="left", header_style="bold", box=None,
                      pad_edge=False)
        for i, header in enumerate(self.headers):
            if i in self.right:
                longest = max((_cell_width(cells[i]) for cells, _ in self.rows), default=0)
                table.add_column(Text(header), justify="right", no_wrap=True,
                                 min_width=longest, style=self.styles.get(i))
            else:
                table.add_column(Text(header), justify="left", overflow="fold",
                                 style=self.styles.get(i))
        for cells, style in self.rows:
            table.add_row(*map(Text, cells), style=style)
        return table

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        layout = self.layout(options.max_width)
        width = max(sum(layout.widths[i] for i in block) + 2 * (len(block) - 1)
                    for block in layout.blocks)
        return Measurement(width, width)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from _segments(console, self.styled_lines(options.max_width))


def _hidden_note(headers: list[str], width: int) -> str:
    return (f"Not shown at {width} columns: {', '.join(headers)} "
            f"(--wide shows every column; --columns chooses)")


def _segments(console: Any, lines: list[list[tuple[str, str | None]]]) -> Any:
    """Styled lines as rich segments, each style parsed once."""
    from rich.segment import Segment

    styles: dict[str, Any] = {}
    for line in lines:
        for text, style in line:
            if style and style not in styles:
                styles[style] = console.get_style(style)
            yield Segment(text, styles[style] if style else None)
        yield Segment.line()


class Report:
    """What a command prints: tables and lines of text, each line with a rich style. rich writes
    it where colour may be wanted (a terminal, FORCE_COLOR), fitted to the terminal: tables as
    :class:`TextTable` says, lines wrapped at spaces with a hanging indent. Elsewhere
    :meth:`plain` gives the same text at its natural width, without rich and never wrapped."""

    def __init__(self) -> None:
        self.parts: list[TextTable | tuple[str, str | None]] = []

    def table(self, table: TextTable) -> TextTable:
        self.parts.append(table)
        return table

    def line(self, text: str = "", style: str | None = None) -> None:
        self.parts.append((text, style))

    def styled_lines(self, max_width: int | None = None) -> list[list[tuple[str, str | None]]]:
        measure = _cell_width
        out: list[list[tuple[str, str | None]]] = []
        for part in self.parts:
            if isinstance(part, TextTable):
                out += part.styled_lines(max_width)
                continue
            text, style = part
            for line in text.replace("\t", " ").split("\n"):
                if max_width is None or measure(line) <= max_width:
                    out.append([(line, style)] if line else [])
                    continue
                indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
                out += [[(piece, style)] for piece in wrap_words(line, max_width, measure, indent)]
        return out

    def plain(self, max_width: int | None = None) -> str:
        """The report as plain text: at its natural width, or fitted to ``max_width`` cells as
        rich prints it on a terminal that wide."""
        lines: list[str] = []
        for part in self.parts:
            if isinstance(part, TextTable) and max_width is None:
                lines += part.plain_lines()
            elif isinstance(part, TextTable):
                lines += part.plain_lines(max_width)
            elif max_width is None and "\n" not in part[0] and "\t" not in part[0]:
                lines.append(part[0])
            else:
                report = Report()
                report.parts.append(part)
                lines += ["".join(t for t, _ in line) for line in report.styled_lines(max_width)]
        return "".join(f"{line}\n" for line in lines)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        width = options.max_width if options.max_width < PIPE_WIDTH else None
        yield from _segments(console, self.styled_lines(width))


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


# The layer table's columns (``--columns``): key → (header, short header, right-justified). The
# MACs headers are the convention's unit where it is not plain MACs.
COLUMNS: dict[str, tuple[str, str, bool]] = {
    "layer": ("Layer", "Layer", False),
    "kind": ("Kind", "Kind", False),
    "input": ("Input", "Input", False),
    "output": ("Output", "Output", False),
    "settings": ("Settings", "Settings", False),
    "params": ("Params", "Params", True),
    "params%": ("Params %", "P%", True),
    "trainable": ("Trainable", "Train.", True),
    "buffers": ("Buffers", "Buf.", True),
    "macs": ("MACs", "MACs", True),
    "macs%": ("MACs %", "M%", True),
    "rf": ("RF", "RF", True),
    "act": ("Act. mem", "Act.", True),
    "share": ("MAC share", "Share", False),
}
DEFAULT_COLUMNS = ("layer", "kind", "output", "settings", "params", "macs", "rf", "act", "share")
# what a narrow terminal leaves out of the default table, first to go first
DROP_ORDER = ("share", "act", "rf", "settings", "kind")


def table_column_keys(columns: str | Iterable[str] | None = None, wide: bool = False,
                      markdown: bool = False) -> list[str]:
    """The columns to show: ``columns`` (comma-separated keys of :data:`COLUMNS`, in order; the
    layer column is always first), every column for ``wide``, else the default (without the
    share bar in Markdown)."""
    if columns is None:
        keys = list(COLUMNS) if wide else [k for k in DEFAULT_COLUMNS
                                           if not (markdown and k == "share")]
        return keys
    if isinstance(columns, str):
        columns = [c.strip().lower() for c in columns.split(",") if c.strip()]
    keys = ["layer"]
    for key in columns:
        key = {"mem": "act", "activations": "act", "mac%": "macs%", "param%": "params%"}.get(
            key, key)
        if key not in COLUMNS:
            from .errors import OptionError

            raise OptionError(f"--columns: unknown column {key!r}; choose from "
                              + ", ".join(COLUMNS))
        if key not in keys:
            keys.append(key)
    return keys


def _percent(part: int, whole: int) -> str:
    if not part:
        return "—"
    if whole <= 0:
        return "—"
    share = 100 * part / whole
    return "<0.1%" if share < 0.05 else f"{share:.1f}%"


def _analysis_cells(analysis: Analysis, keys: list[str], numbers: Numbers, depth: int | None,
                    rows: list[Row] | None = None,
                    ) -> tuple[list[str], list[tuple[list[str], str | None]]]:
    """Headers and (cells, style) rows, the totals row last: of the rows at ``depth``, or of
    ``rows`` when given (``cnncalc view``: every row)."""
    label = macs_label(analysis)
    t = analysis.totals
    headers = []
    for key in keys:
        header = COLUMNS[key][0]
        if label != "MACs":
            header = header.replace("MACs", label).replace("MAC share", f"{label} share")
        headers.append(header)
    whole = t.macs

    def cell(row: Row, key: str) -> str:
        if key == "layer":
            return row.path
        if key == "kind":
            return f"{row.kind} (head)" if row.head else row.kind
        if key == "input":
            return shape_text(row.input)
        if key == "output":
            return shape_text(row.output)
        if key == "settings":
            return row.settings
        if key == "params":
            return numbers.count(row.params, blank_zero=True)
        if key == "params%":
            return _percent(row.params, t.params)
        if key == "trainable":
            return numbers.count(row.trainable_params, blank_zero=True)
        if key == "buffers":
            return numbers.count(row.buffers, blank_zero=True)
        if key == "macs":
            return numbers.count(row.macs, blank_zero=True)
        if key == "macs%":
            return _percent(row.macs, whole)
        if key == "rf":
            return pair_text(row.rf)
        if key == "act":
            return numbers.bytes(row.activation_bytes)
        return share_bar(row.macs, whole)

    totals = {"layer": "Total", "input": shape_text(analysis.input),
              "output": shape_text(analysis.output), "params": numbers.count(t.params),
              "params%": "100%" if t.params else "—",
              "trainable": numbers.count(t.trainable_params), "buffers": numbers.count(t.buffers),
              "macs": numbers.count(t.macs), "macs%": "100%" if t.macs else "—",
              "act": numbers.bytes(t.activation_bytes)}
    out: list[tuple[list[str], str | None]] = []
    for row in analysis.at_depth(depth) if rows is None else rows:
        style = "dim" if row.head else ("bold" if not row.leaf else None)
        out.append(([cell(row, key) for key in keys], style))
    out.append(([totals.get(key, "") for key in keys], "bold"))
    return headers, out


def analysis_table(analysis: Analysis, depth: int | None, numbers: Numbers,
                   columns: str | Iterable[str] | None = None, wide: bool = False) -> TextTable:
    """The layer table with its totals row. In the default columns a narrow terminal drops the
    share bar first, then the other columns of :data:`DROP_ORDER`; columns chosen (``columns``,
    ``wide``) are all kept."""
    keys = table_column_keys(columns, wide)
    headers, rows = _analysis_cells(analysis, keys, numbers, depth)
    right = [i for i, key in enumerate(keys) if COLUMNS[key][2]]
    drop = [keys.index(k) for k in DROP_ORDER if k in keys] if columns is None and not wide else []
    styles = {keys.index("share"): "cyan"} if "share" in keys else {}
    short = {i: COLUMNS[key][1] for i, key in enumerate(keys)
             if COLUMNS[key][1] != COLUMNS[key][0] and key not in ("share",)}
    table = TextTable(f"{analysis.spec.name}: {analysis.spec.title}", headers, right=right,
                      styles=styles, short=short, drop=drop)
    table.legend = _short_legend(keys, short, headers)
    for cells, style in rows:
        table.add_row(cells, style)
    return table


def _short_legend(keys: list[str], short: dict[int, str], headers: list[str]) -> str | None:
    pairs = [f"{short[i]} = {headers[i]}" for i in sorted(short)
             if short[i] not in headers[i].split(" ")[0:1]]
    return "; ".join(pairs) if pairs else None


def analysis_rich(analysis: Analysis, depth: int | None, numbers: Numbers,
                  columns: str | Iterable[str] | None = None, wide: bool = False,
                  warnings: bool = True) -> Report:
    """The layer table with a totals row, then the footer (``warnings=False``: without the
    warnings and notes, which the command line writes to stderr)."""
    report = Report()
    report.table(analysis_table(analysis, depth, numbers, columns, wide))
    report.line()
    formulas = explain_lines(analysis)
    if formulas:
        report.line("Formulas", "bold")
        for line in formulas:
            report.line(line)
        report.line()
    for line in footer_lines(analysis, numbers, warnings=warnings):
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


def _letter(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"S{i + 1}"


def _comparison_short(names: list[str], totals: bool) -> tuple[dict[int, str], str]:
    """Short headers for a narrow terminal (the specs as A, B, …) and the legend saying so."""
    n = len(names)
    letters = [_letter(i) for i in range(n)]
    if totals:
        short = {1 + i: letters[i] for i in range(n)}
        short.update({1 + n + i: f"{letters[i + 1]}/A" for i in range(n - 1)})
    else:
        short = {1 + i: f"{letters[i]} MACs" for i in range(n)}
        short.update({1 + n + i: f"{letters[i]} params" for i in range(n)})
        short.update({1 + 2 * n + i: f"MACs {letters[i + 1]}/A" for i in range(n - 1)})
    legend = "; ".join(f"{letter} = {name}" for letter, name in zip(letters, names))
    return short, legend


def comparison_rich(comparison: Comparison, numbers: Numbers) -> Report:
    report = Report()
    names = [a.spec.name for a in comparison.analyses]
    for title, (header, rows) in (("Totals", _comparison_totals(comparison, numbers)),
                                  ("Matching rows", _comparison_rows(comparison, numbers))):
        short, legend = _comparison_short(names, title == "Totals")
        table = report.table(TextTable(title, header, right=range(1, len(header)), short=short,
                                       legend=legend))
        for row in rows:
            table.add_row(row)
        report.line()
    report.line(convention_text(comparison.analyses[0]), "dim")
    return report


def list_rich(analyses: list[Analysis], numbers: Numbers) -> Report:
    report = Report()
    label = macs_label(analyses[0]) if analyses else "MACs"
    table = report.table(TextTable("The zoo", ("Name", "Title", "Input", "Params", label),
                                   right=(3, 4), wrap=(1,)))
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
    tables = [TextTable("Totals", header, right=(2, 3), wrap=(4,))]
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
            "set_to_none": report.set_to_none, "peak_at": report.training_peak_at,
            "optimizer_step_bytes": report.optimizer_step_bytes,
            "autocast_weight_bytes": report.autocast_weight_bytes,
        },
        "assumptions": list(report.assumptions),
        "layers": [{
            "path": m.path, "kind": m.kind, "output_bytes": m.output_bytes,
            "live_bytes": m.live_bytes, "saved": m.saved, "saved_bytes": m.saved_bytes,
            "forward_macs": m.forward_macs, "backward_macs": m.backward_macs,
            "live": m.why, "training_live_bytes": m.training_live_bytes,
            "backward_live_bytes": m.backward_live_bytes,
        } for m in report.layers] if layers else [],
    }


MEMORY_COLUMNS = ("Layer", "Kind", "Output", "Live (inference)", "Saved for backward",
                  "Saved", "Fwd MACs", "Bwd MACs")
# a narrow terminal: "Live" for "Live (inference)"; the kind, then the MAC columns, left out
_MEMORY_SHORT = {3: "Live"}
_MEMORY_DROP = (1, 7, 6)


def _memory_note(headers: list[str], width: int) -> str:
    return (f"Not shown at {width} columns: {', '.join(headers)}; Live: live bytes while the "
            f"layer runs (inference)")


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
        f"Training ({report.optimizer}, gradients "
        f"{'freed' if report.set_to_none else 'kept'} between steps): "
        f"{b(report.training_bytes)} at its peak ({report.training_peak_at}) = parameters "
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
                                    MEMORY_COLUMNS, right=(2, 3, 5, 6, 7), wrap=(4,),
                                    short=_MEMORY_SHORT, drop=_MEMORY_DROP,
                                    note=_memory_note))
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


# --------------------------------------------------------------------------------------------
# Notebooks: short reprs, HTML tables (_repr_html_) and pandas data frames


def analysis_repr(analysis: Analysis) -> str:
    """A one-line repr: what was analysed and its totals (the rows are in ``.rows``)."""
    t = analysis.totals
    unread = sum(w.severity == "warning" for w in analysis.warnings)
    convention = "" if analysis.convention == "macs" else f", convention={analysis.convention!r}"
    return (f"<Analysis {analysis.spec.name!r}: input {shape_text(analysis.input)}, batch "
            f"{analysis.batch}, {analysis.dtype}{convention}; {len(analysis.rows)} rows; params "
            f"{exact_count(t.params)}, {macs_label(analysis)} {exact_count(t.macs)}, activations "
            f"{human_bytes(t.activation_bytes)}"
            + (f"; {unread} warning(s)" if unread else "") + ">")


def comparison_repr(comparison: Comparison) -> str:
    names = ", ".join(repr(a.spec.name) for a in comparison.analyses)
    return f"<Comparison of {names}: {len(comparison.rows)} matching rows>"


def memory_repr(report: Any) -> str:
    return (f"<MemoryReport {report.analysis.spec.name!r}: batch {report.analysis.batch}, "
            f"{report.analysis.dtype}; inference {human_bytes(report.inference_bytes)} (activation "
            f"peak at {report.activation_peak_at}), training ({report.optimizer}) "
            f"{human_bytes(report.training_bytes)}>")


def report_html(report: Report) -> str:
    """A :class:`Report` as HTML: each table a <table> (numbers right-aligned), the lines
    between as preformatted text."""
    from html import escape

    out = ['<div class="cnncalc">']
    text: list[str] = []

    def flush() -> None:
        if any(line.strip() for line in text):
            out.append('<pre style="white-space: pre-wrap">'
                       + escape("\n".join(text).strip("\n")) + "</pre>")
        text.clear()

    for part in report.parts:
        if not isinstance(part, TextTable):
            text.append(part[0])
            continue
        flush()
        align = lambda i: ' style="text-align: right"' if i in part.right else \
            ' style="text-align: left"'  # noqa: E731
        rows = ["<tr>" + "".join(f"<th{align(i)}>{escape(h)}</th>"
                                 for i, h in enumerate(part.headers)) + "</tr>"]
        for cells, style in part.rows:
            weight = ' style="font-weight: bold"' if style == "bold" else \
                ' style="opacity: 0.6"' if style == "dim" else ""
            rows.append(f"<tr{weight}>" + "".join(f"<td{align(i)}>{escape(c)}</td>"
                                                  for i, c in enumerate(cells)) + "</tr>")
        caption = f"<caption>{escape(part.title)}</caption>" if part.title else ""
        out.append(f"<table>{caption}<thead>{rows[0]}</thead><tbody>{''.join(rows[1:])}"
                   "</tbody></table>")
    flush()
    out.append("</div>")
    return "".join(out)


def analysis_html(analysis: Analysis, depth: int | None = None) -> str:
    """The layer table and its footer (warnings included) as HTML, every column."""
    return report_html(analysis_rich(analysis, depth, Numbers(False)))


def comparison_html(comparison: Comparison) -> str:
    return report_html(comparison_rich(comparison, Numbers(False)))


def memory_html(report: Any) -> str:
    return report_html(memory_rich(report, Numbers(False)))


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        from .errors import OptionError

        raise OptionError("to_pandas() needs pandas: pip install pandas") from None
    return pandas


def analysis_dataframe(analysis: Analysis, depth: int | None = None) -> Any:
    """The rows at ``depth`` (default: every layer) as a pandas DataFrame, one column per figure:
    the CSV's columns (docs/json.md) with the receptive field and jump split per axis too, and
    shapes as nullable integers (a vector's H and W are missing)."""
    pandas = _pandas()
    rows = analysis.at_depth(depth)
    data: dict[str, list[Any]] = {
        "path": [r.path for r in rows], "name": [r.name for r in rows],
        "kind": [r.kind for r in rows], "depth": [r.depth for r in rows],
        "leaf": [r.leaf for r in rows], "head": [r.head for r in rows],
    }
    for side in ("input", "output"):
        for a, axis in enumerate("chw"):
            data[f"{side}_{axis}"] = [getattr(r, side)[a] if a < len(getattr(r, side)) else None
                                      for r in rows]
    data["settings"] = [r.settings for r in rows]
    for key in ("params", "trainable_params", "buffers", "macs", "activation_bytes"):
        data[key] = [getattr(r, key) for r in rows]
    for key in ("rf", "jump"):
        for a, axis in enumerate("hw"):
            data[f"{key}_{axis}"] = [getattr(r, key)[a] for r in rows]
    data["spec"] = [analysis.spec.name] * len(rows)
    data["batch"] = [analysis.batch] * len(rows)
    data["dtype"] = [analysis.dtype] * len(rows)
    frame = pandas.DataFrame(data)
    shapes = [f"{side}_{axis}" for side in ("input", "output") for axis in "chw"]
    return frame.astype({column: "Int64" for column in shapes})


def memory_dataframe(report: Any) -> Any:
    """The memory report's per-layer steps as a pandas DataFrame (``memory --format csv``)."""
    pandas = _pandas()
    return pandas.DataFrame([{
        "path": m.path, "kind": m.kind, "output_bytes": m.output_bytes,
        "live_bytes": m.live_bytes, "saved": m.saved, "saved_bytes": m.saved_bytes,
        "forward_macs": m.forward_macs, "backward_macs": m.backward_macs,
    } for m in report.layers])


def comparison_dataframe(comparison: Comparison) -> Any:
    """The matching rows as a pandas DataFrame: a row per path, ``SPEC_macs`` and
    ``SPEC_params`` per spec (missing where a spec has no such row)."""
    pandas = _pandas()
    names = [a.spec.name for a in comparison.analyses]
    records = []
    for matched in comparison.rows:
        record: dict[str, Any] = {"path": matched.path}
        for metric in ("macs", "params"):
            for name, row in zip(names, matched.rows):
                record[f"{name}_{metric}"] = getattr(row, metric) if row else None
        records.append(record)
    frame = pandas.DataFrame(records)
    return frame.astype({c: "Int64" for c in frame.columns if c != "path"})


__all__ = [
    "FORMATS", "Numbers", "Report", "TextTable", "analysis_csv", "analysis_dict",
    "analysis_markdown", "analysis_rich", "comparison_csv", "comparison_dict",
    "comparison_markdown", "comparison_rich", "console", "human_bytes", "human_count", "list_csv",
    "list_dict", "list_markdown", "list_rich", "memory_csv", "memory_dict", "memory_markdown",
    "memory_rich", "plain_text", "reconcile_csv", "reconcile_dict", "reconcile_markdown",
    "reconcile_rich", "share_bar", "to_json", "analysis_dataframe", "analysis_html",
    "analysis_repr", "analysis_table", "comparison_dataframe", "comparison_html",
    "comparison_repr", "memory_dataframe", "memory_html", "memory_repr", "report_html",
    "table_column_keys",
]
