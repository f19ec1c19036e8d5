"""``cnncalc view``: one self-contained HTML file with the network drawn as a graph, its per-layer
table and each layer's figures and formulas.

Everything the page shows is computed here, from the same :class:`~cnncalc.engine.Analysis` that
``table --format json`` renders: the rows (``render.row_dict``, every depth), the table's cells
(``render``'s), the formatted details, the shades, the edges and their shape labels. The page's
script only lays the graph out (the vendored dagre, MIT: ``vendor/LICENSE-dagre``) and shows,
hides and sorts what it was given; it does no arithmetic on the network.

Imported only by ``cnncalc view`` (``cnncalc table`` never loads it).
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..graph import GRAPH_INPUT, Group, Op
from ..output import check_target, safe_stem, write_text
from ..errors import OptionError, quoted
from .. import render

if TYPE_CHECKING:
    from ..compare import Comparison
    from ..engine import Analysis, Row

# The most rows a page holds: about 1 KB of page each (2 MB at the limit), and a browser lays a
# flat chain of 1,000 layers out in under 2 s
MAX_ROWS = 2_000
# The most nodes the page opens with: the deepest depth whose rows fit (as `plot` chooses bars)
MAX_NODES = 80
# The columns of the page's table (render.COLUMNS keys): the terminal table's, with the MAC share
# as a percentage instead of a bar
TABLE_COLUMNS = ["layer", "kind", "output", "settings", "params", "macs", "macs%", "rf", "act"]
# what each column sorts by: a row_dict field (exact numbers; an output by its size, which its
# activation bytes are in proportion to), or (None) the cell's text
SORT_FIELDS = {"layer": None, "kind": "kind", "output": "activation_bytes", "settings": "settings",
               "params": "params", "macs": "macs", "macs%": "macs", "rf": "rf",
               "act": "activation_bytes"}
# the metrics nodes can be shaded by: (row field, its name on the switch, the shade's colour)
SHADES = (("macs", "MACs", (221, 132, 82)), ("params", "params", (76, 114, 176)),
          ("activation_bytes", "activation memory", (85, 168, 104)))


def default_output(spec_arguments: list[str]) -> Path:
    """``STEM.html`` (``A-vs-B.html`` for two), from the SPEC arguments as typed, never from a
    spec's content (as ``plot``'s default)."""
    stems = (safe_stem("stdin" if s == "-" else s, "view") for s in spec_arguments)
    return Path("-vs-".join(stems) + ".html")


def check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in (".html", ".htm"):
        raise OptionError(f"--out: {quoted(out.name)} must end in .html")
    check_target(out, overwrite=overwrite, label="--out")


# --------------------------------------------------------------------------------------------
# Page data: one VIEW object per analysis


def _shade(rgb: tuple[int, int, int], strength: float) -> str:
    """White to ``rgb``: the node's fill for a share of ``strength`` (0 to 1)."""
    r, g, b = (round(255 + (c - 255) * strength) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _shades(analysis: Analysis) -> list[dict[str, str]]:
    """Per row and metric, its fill: the row's share of the total (side heads: of the heads'
    total), relative to the largest share among the rows shown at its depth, on a square-root
    scale so that small layers still show; a group's share is its layers' together."""
    t = analysis.totals
    whole = {"macs": (t.macs, t.head_macs), "params": (t.params, t.params),
             "activation_bytes": (t.activation_bytes, t.head_activation_bytes)}

    def share(row: Row, metric: str) -> float:
        total = whole[metric][1 if row.head and metric != "params" else 0]
        return getattr(row, metric) / total if total else 0.0

    depths = sorted({r.depth for r in analysis.rows})
    largest: dict[tuple[int, str], float] = {}
    for depth in depths:
        rows = analysis.at_depth(depth)
        for metric, _, _ in SHADES:
            largest[depth, metric] = max((share(r, metric) for r in rows), default=0.0)
    out = []
    for row in analysis.rows:
        fills = {}
        for metric, _, rgb in SHADES:
            top = largest[row.depth, metric]
            strength = min(1.0, (share(row, metric) / top) ** 0.5) if top else 0.0
            fills[metric] = _shade(rgb, 0.85 * strength)
        out.append(fills)
    return out


def _details(row: Row, numbers: render.Numbers, analysis: Analysis) -> list[list[str]]:
    """The figures the page shows for a node, label and text, exact counts first."""
    t = analysis.totals
    macs_total = t.head_macs if row.head else t.macs
    label = render.macs_label(analysis)
    kind = f"{row.kind} (side head)" if row.head else row.kind

    def count(n: int, extra: str = "") -> str:
        if not n:
            return "0"
        return f"{render.exact_count(n)} ({render.human_count(n)}{extra})"

    items = [["kind", kind]]
    if row.settings:
        items.append(["settings", row.settings])
    share = render._percent(row.macs, macs_total)
    items += [
        ["input", render.shape_text(row.input)],
        ["output", render.shape_text(row.output)],
        ["params", count(row.params)],
        ["trainable", render.exact_count(row.trainable_params)],
        ["buffers", render.exact_count(row.buffers)],
        [label, count(row.macs, f"; {share} of the {'side heads' if row.head else 'main path'}")],
        ["receptive field", render.pair_text(row.rf)],
        ["jump", render.pair_text(row.jump)],
        ["RF start", ", ".join(render.start_text(v) for v in row.rf_start)],
        ["activations", f"{render.exact_count(row.activation_bytes)} B"
                        + (f" ({render.human_bytes(row.activation_bytes)})"
                           if row.activation_bytes >= 1024 else "")],
    ]
    return items


def _title(path: str) -> str:
    """A node's name: the last part of its path, with the part before it when that is a
    number (``layer1.0``, ``down4.2``: a bare ``0`` says little in a graph)."""
    parts = path.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def _severity(messages: list[str]) -> str | None:
    """How a node is marked: ``warning`` where input is never read, ``note`` where only
    padding is (as the table's warnings and notes)."""
    if any(m.startswith("warning:") for m in messages):
        return "warning"
    return "note" if messages else None


def _warnings_at(analysis: Analysis) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for w in analysis.warnings:
        found.setdefault(w.path, []).append(f"{w.severity}: {w.message}")
    for w in analysis.graph_warnings:
        found.setdefault(w.path, []).append(f"warning: {w.message}")
    return found


def view_dict(analysis: Analysis, depth: int | None = None) -> dict[str, Any]:
    """What the page draws for one analysis. ``rows`` are ``render.row_dict`` of every row
    (pre-order, every depth: ``table --depth D``'s rows are those the page shows at depth D);
    ``nodes`` parallel them with what the page shows; ``merges`` are the residual adds and
    concats that have no row; ``edges`` join units (``r<row>``, ``m<op>``, ``in``, ``out<k>``)
    and carry the tensor's shape."""
    graph = analysis.graph
    if graph is None:  # pragma: no cover - every analysis carries its graph
        raise ValueError("the analysis has no graph")
    numbers = render.Numbers(False)
    keys = list(TABLE_COLUMNS)
    headers, cells = render._analysis_cells(analysis, keys, numbers, None, rows=analysis.rows)
    warned = _warnings_at(analysis)
    shades = _shades(analysis)

    # row index of every op and group (graph.preorder is the rows' order)
    row_of_op: dict[int, int] = {}
    row_of_group: dict[int, int] = {}
    for index, item in enumerate(graph.preorder):
        (row_of_op if isinstance(item, Op) else row_of_group)[item.index] = index
    group_rows = {row_of_group[g.index]: g for g in graph.groups}

    def parent_row(group: int | None) -> int:
        return -1 if group is None else row_of_group[group]

    def unit(tensor: int) -> str:
        if tensor == GRAPH_INPUT:
            return "in"
        return f"r{row_of_op[tensor]}" if tensor in row_of_op else f"m{tensor}"

    nodes = []
    for index, (row, item) in enumerate(zip(analysis.rows, graph.preorder)):
        parent = parent_row(item.group if isinstance(item, Op) else item.parent)
        here = [m for path, ms in warned.items()
                for m in ms if path == row.path or (not row.leaf and path.startswith(row.path + "."))]
        nodes.append({
            "parent": parent,
            "side": isinstance(item, Group) and item.side,
            "title": _title(row.path),
            "severity": _severity(here),
            "subtitle": f"{row.kind} {row.settings}".strip() if row.leaf else row.kind,
            "cells": cells[index][0],
            "details": _details(row, numbers, analysis),
            "warnings": here,
            "shade": shades[index],
            # a group's input, as the unit that makes it: edges carrying it enter through the
            # group's title when it is open
            **({"input": unit(item.input)} if isinstance(item, Group) else {}),
        })
    merges = []
    for op in graph.ops:
        if op.row:
            continue
        what = "add" if op.implied == "residual" else "concat"
        merges.append({
            "id": f"m{op.index}", "parent": parent_row(op.group), "path": op.path,
            "label": "+" if what == "add" else "concat", "head": op.head,
            "title": f"{op.path}: {what} of {' and '.join(op.operands)} → "
                     f"{render.shape_text(analysis.shapes[op.index])}"})

    def shape_of(tensor: int) -> str:
        return render.shape_text(analysis.input if tensor == GRAPH_INPUT
                                 else analysis.shapes[tensor])

    edges = []
    for op in graph.ops:
        target = unit(op.index)
        for tensor in dict.fromkeys(op.inputs):
            edges.append([unit(tensor), target, shape_of(tensor)])
    names = graph.output_names or ("output",)
    outputs = []
    for k, (tensor, name) in enumerate(zip(graph.outputs, names)):
        outputs.append({"id": f"out{k}", "label": name, "shape": shape_of(tensor)})
        edges.append([unit(tensor), f"out{k}", shape_of(tensor)])

    table = render.analysis_dict(analysis, None)
    del table["layers"]
    deepest = max((r.depth for r in analysis.rows), default=1)
    return {
        **table,
        "rows": [render.row_dict(r) for r in analysis.rows],
        "nodes": nodes, "merges": merges, "edges": edges, "outputs": outputs,
        "input_shape": render.shape_text(analysis.input),
        "start_depth": _start_depth(analysis, depth),
        "depths": list(range(1, deepest + 1)),
        "groups": sorted(group_rows),
        "headers": headers, "sort_fields": [SORT_FIELDS[k] for k in keys],
        "right": [render.COLUMNS[k][2] for k in keys],  # aligned as in the terminal's table
        # the first click on a heading sorts numbers largest first, text from A
        "sort_first": [1 if SORT_FIELDS[k] in (None, "kind", "settings") else -1 for k in keys],
        "total_cells": cells[-1][0],
        "footer": render.footer_lines(analysis, numbers),
        "shades": [[metric, name, _shade(rgb, 0.0), _shade(rgb, 0.85)]
                   for metric, name, rgb in SHADES],
        "macs_label": render.macs_label(analysis),
        "flag_summary": _flag_summary(analysis),
    }


def _flag_summary(analysis: Analysis) -> str:
    """The line the page's folded warnings and notes show: how many of each."""
    warnings = sum(1 for w in analysis.warnings if w.severity == "warning")
    warnings += len(analysis.graph_warnings)
    notes = sum(1 for w in analysis.warnings if w.severity == "note")
    parts = [f"{n} {word}{'' if n == 1 else 's'}"
             for n, word in ((warnings, "warning"), (notes, "note")) if n]
    marks = [mark for n, mark in ((warnings, "⚠ where input is never read"),
                                  (notes, "a circled i where only padding is")) if n]
    return ", ".join(parts) + f" (marked on their nodes: {'; '.join(marks)})"


def _start_depth(analysis: Analysis, depth: int | None) -> int | None:
    """The depth the page opens at: ``depth`` if given, else every layer when they fit in
    :data:`MAX_NODES` nodes, else the deepest depth whose rows do (``plot``'s rule)."""
    from ..plot import fitting_depth

    return fitting_depth(analysis, depth, MAX_NODES)[0]


def comparison_view(comparison: Comparison) -> dict[str, Any]:
    """The compare tables the page shows above the two graphs: ``compare``'s totals with ratios
    and its matching rows (``render``'s cells)."""
    numbers = render.Numbers(False)
    totals = render._comparison_totals(comparison, numbers)
    rows = render._comparison_rows(comparison, numbers)
    return {"totals": {"headers": totals[0], "rows": totals[1]},
            "rows": {"headers": rows[0], "rows": rows[1],
                     "paths": [m.path for m in comparison.rows]},
            "convention": render.convention_text(comparison.analyses[0])}


# --------------------------------------------------------------------------------------------
# The HTML


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _script_text(text: str) -> str:
    """Text safe inside <script>: no closing tag, and no source-map comment (opened with
    developer tools, a browser would try to fetch it)."""
    lines = [line for line in text.splitlines() if not line.startswith("//# sourceMappingURL")]
    return "\n".join(lines).replace("</", "<\\/")


def _json_text(data: Any) -> str:
    """JSON inside <script type="application/json">: ``<`` escaped, so no tag can close it."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page(analyses: list[Analysis], depth: int | None = None,
         comparison: Comparison | None = None) -> str:
    """The HTML page for one analysis, or for two or more side by side with their comparison."""
    for a in analyses:
        if len(a.rows) > MAX_ROWS:
            raise OptionError(f"{a.spec.name}: the page would have {len(a.rows):,} rows (layers "
                              f"and blocks); the limit is {MAX_ROWS:,} (cnncalc table "
                              "--format json gives every row)")
    views = [view_dict(a, depth) for a in analyses]
    if len(views) > 1 and depth is None:  # side by side: both open at one depth, that fits both
        starts = [v["start_depth"] for v in views if v["start_depth"] is not None]
        for v in views:
            v["start_depth"] = min(starts) if starts else None
    data = {
        "views": views,
        "comparison": comparison_view(comparison) if comparison is not None else None,
    }
    title = " vs ".join(a.spec.name for a in analyses)
    from html import escape

    parts = {
        "TITLE": escape(f"cnncalc view: {title}"),
        "STYLE": _asset("view.css").replace("</", "<\\/"),
        "DATA": _json_text(data),
        # dagre's MIT licence travels with each copy of it
        "DAGRE": "/*\n" + _asset("vendor/LICENSE-dagre") + "*/\n"
                 + _script_text(_asset("vendor/dagre.min.js")),
        "SCRIPT": _script_text(_asset("view.js")),
    }
    # one pass over the template: text put in (a spec's title) is never searched for a slot
    pieces = re.split(r"\{\{([A-Z]+)\}\}", _asset("page.html"))
    return "".join(parts[p] if i % 2 else p for i, p in enumerate(pieces))


def write(analyses: list[Analysis], out: Path, depth: int | None = None,
          comparison: Comparison | None = None, overwrite: bool = False) -> Path:
    """Write :func:`page` to ``out`` through :func:`cnncalc.output.write_text` (never replacing
    a file without ``overwrite``)."""
    check_output(out, overwrite)
    return write_text(out, page(analyses, depth, comparison), overwrite=overwrite, label="--out")


__all__ = ["page", "write", "view_dict", "default_output", "MAX_NODES"]
