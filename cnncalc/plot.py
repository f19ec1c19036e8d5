"""``cnncalc plot``: per-layer bars of parameters, multiply-adds and activation memory, drawn with
matplotlib (the optional ``plot`` extra, imported only here and only when a plot is drawn).

No arithmetic on the network happens here: the bars are the engine's rows at the chosen depth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import Analysis, Row
from .errors import CnncalcError, OptionError
from .render import human_bytes, human_count, shape_text

FORMATS = (".svg", ".png", ".pdf")

# (row attribute, panel title, label formatter, colour); "live_bytes" is the memory model's
# (cnncalc.memory): the bytes live while the row runs, the largest over a block's steps
PANELS: tuple[tuple[str, str, Any, str], ...] = (
    ("params", "Parameters", human_count, "#4c72b0"),
    ("macs", "MACs", human_count, "#dd8452"),
    ("live_bytes", "Live activation memory (inference)", human_bytes, "#55a868"),
)
PEAK_COLOUR = "#1f5f32"

# The most bars a picture holds (about 2,600 px high at 120 dpi); every layer of a deeper network
# is drawn at the deepest depth that fits.
MAX_BARS = 80


def _matplotlib_figure() -> Any:
    """matplotlib's Figure class, or a one-line error naming the extra to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CnncalcError("cnncalc plot needs matplotlib: pip install 'cnncalc[plot]' "
                           "(or pip install matplotlib)") from None
    return Figure


def default_output(analysis: Analysis) -> Path:
    return Path(f"{analysis.spec.name}.svg")


def _check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in FORMATS:
        raise OptionError(f"--out: {out.name!r} must end in {', '.join(FORMATS)}")
    if not out.parent.is_dir():
        raise OptionError(f"--out: no such directory {str(out.parent)!r}")
    if out.is_dir():
        raise OptionError(f"--out: {str(out)!r} is a directory; give a file name")
    if out.exists() and not overwrite:
        raise OptionError(f"--out: {str(out)!r} exists; cnncalc does not overwrite files "
                          "(--force replaces it)")


def _label(row: Row) -> str:
    """The dotted path; a group also names its block (``layer1.0 (bottleneck)``)."""
    return row.path if row.leaf else f"{row.path} ({row.kind})"


def _binary_ticks(top: int) -> list[int]:
    """Axis ticks for bytes at round binary figures (0, 256KiB, 512KiB, …), not at 10⁵ steps."""
    scale = 1
    while top >= scale * 2048:
        scale *= 1024
    step = next(s for s in (1, 2, 5, 10, 25, 50, 100, 128, 256, 512, 1024) if top / scale / s <= 6)
    return [i * step * scale for i in range(int(top / (step * scale)) + 1)]


def fitting_depth(analysis: Analysis, depth: int | None,
                  max_bars: int = MAX_BARS) -> tuple[int | None, str | None]:
    """The depth to draw: ``depth`` when given (the user chose it), else every layer when they fit
    in ``max_bars`` bars, else the deepest depth whose rows do; and a sentence saying so when the
    depth was chosen here."""
    rows = analysis.at_depth(depth)
    if depth is not None or len(rows) <= max_bars:
        return depth, None
    deepest = max(r.depth for r in analysis.rows)
    chosen = 1
    for d in range(deepest, 0, -1):
        if len(analysis.at_depth(d)) <= max_bars:
            chosen = d
            break
    n = len(analysis.at_depth(chosen))
    return chosen, (f"{len(rows)} layers are more bars than a picture holds ({max_bars}); drawn "
                    f"at --depth {chosen} ({n} rows); --depth chooses")


def _live_bytes(analysis: Analysis, rows: list[Row]) -> tuple[list[int], Any]:
    """Per row, the most bytes live while it runs (cnncalc memory's liveness: the largest over a
    block's steps); and the memory report."""
    from .memory import memory

    report = memory(analysis)
    live: list[int] = []
    steps = report.layers
    for row in rows:
        prefix = row.path + "."
        live.append(max((m.live_bytes for m in steps
                         if m.path == row.path or m.path.startswith(prefix)), default=0))
    return live, report


def draw(analysis: Analysis, depth: int | None, out: Path, overwrite: bool = False,
         log: bool = False, max_bars: int = MAX_BARS) -> Path:
    """Write the three-panel bar chart for ``analysis.at_depth(depth)`` to ``out`` (.svg/.png/.pdf):
    parameters, MACs, and the bytes live while each row runs (the inference liveness of
    ``cnncalc memory``, its peak marked). ``log``: logarithmic value axes. Without ``depth``, a
    network of more than ``max_bars`` layers is drawn at the deepest depth that fits
    (:func:`fitting_depth`; the picture's title says so).

    An existing ``out`` is refused unless ``overwrite``; the chart is written beside it and moved
    into place, so a failed write never leaves a half-written file.
    """
    return draw_report(analysis, depth, out, overwrite, log, max_bars)[0]


def draw_report(analysis: Analysis, depth: int | None, out: Path, overwrite: bool = False,
                log: bool = False, max_bars: int = MAX_BARS) -> tuple[Path, str | None]:
    """:func:`draw`, and the sentence saying which depth it chose (None when it chose none)."""
    _check_output(out, overwrite)
    Figure = _matplotlib_figure()
    depth, collapsed = fitting_depth(analysis, depth, max_bars)
    rows = analysis.at_depth(depth)
    live, report = _live_bytes(analysis, rows)
    labels = [_label(r) for r in rows]
    height = 1.7 + 0.26 * len(rows)
    fig = Figure(figsize=(13, height), layout="constrained")
    axes = fig.subplots(1, len(PANELS), sharey=True)
    positions = list(range(len(rows)))
    peak_row = max(positions, key=lambda i: live[i]) if rows else -1
    for ax, (attr, title, fmt, colour) in zip(axes, PANELS):
        values = live if attr == "live_bytes" else [getattr(r, attr) for r in rows]
        colours = ["#bbbbbb" if r.head else colour for r in rows]
        if attr == "live_bytes" and rows:
            colours[peak_row] = PEAK_COLOUR
            title = (f"{title}\npeak {human_bytes(report.activation_peak_bytes)} while "
                     f"{report.activation_peak_at} runs")
        top = max(values, default=0) or 1
        positive = [v for v in values if v > 0]
        if log:
            ax.set_xscale("log")
            floor = min(positive, default=1) / 2
            ax.barh(positions, [v if v > 0 else floor for v in values], left=0,
                    color=[c if v > 0 else "none" for c, v in zip(colours, values)], height=0.7)
            ax.set_xlim(floor, top * 8)  # room for the value labels, in decades
        else:
            ax.barh(positions, values, color=colours, height=0.7)
            ax.set_xlim(0, top * 1.28)  # room for the value labels
        for y, value in zip(positions, values):
            if value:
                x = value * 1.08 if log else value + top * 0.01
                ax.text(x, y, fmt(value), va="center", fontsize=8)
        ax.set_title(title, fontsize=11, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        if attr == "live_bytes" and not log:
            ax.set_xticks(_binary_ticks(top))
        ax.xaxis.set_major_formatter(lambda v, _pos, fmt=fmt: fmt(int(v)) if v >= 1 else
                                     ("0" if not v else f"{v:g}"))
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0].set_yticks(positions, labels, fontsize=8)
    # network order, top to bottom, and no blank rows above the first bar or below the last
    axes[0].set_ylim(len(rows) - 0.5, -0.5)
    t = analysis.totals
    title = (f"{analysis.spec.name}: {analysis.spec.title} — input {shape_text(analysis.input)}, "
             f"batch {analysis.batch}, {analysis.dtype}\n"
             f"params {t.params:,} · MACs {t.macs:,} · inference peak "
             f"{human_bytes(report.activation_peak_bytes)} (sum of outputs "
             f"{human_bytes(t.activation_bytes)})" + (" · log scale" if log else ""))
    if collapsed:
        title += "\n" + collapsed
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    metadata = {"Date": None} if out.suffix.lower() == ".svg" else {}
    partial = out.with_name(f".{out.name}.partial")
    try:
        fig.savefig(partial, dpi=120, metadata=metadata, format=out.suffix.lower()[1:])
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out, collapsed
