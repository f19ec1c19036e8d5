"""``cnncalc plot``: per-layer bars of parameters, multiply-adds and activation memory, drawn with
matplotlib (the optional ``plot`` extra, imported only here and only when a plot is drawn).

No arithmetic on the network happens here: the bars are the engine's rows at the chosen depth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import Analysis, Row
from .errors import CnncalcError, OptionError, quoted
from .output import check_target, safe_stem, write_file
from .render import human_bytes, human_count, shape_text

FORMATS = (".svg", ".png", ".pdf")
# Bars in one chart: matplotlib takes seconds per hundred bars and the figure grows with them
# (2,000 bars: 27 s, 680 MB); ResNet-152's every layer is 465.
MAX_PLOT_ROWS = 1_000

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


def default_output(spec_argument: str) -> Path:
    """Where ``plot`` writes without ``--out``: ``STEM.svg`` in the current folder, the stem made
    from the SPEC argument the user typed (``nets/mine.yaml`` → ``mine.svg``, ``resnet50`` →
    ``resnet50.svg``) with only safe characters. Never from the spec's content: a ``name:`` of
    ``../x`` or ``/abs/path`` in a spec must not choose where a file is written."""
    return Path(f"{safe_stem(spec_argument)}.svg")


def _check_output(out: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in FORMATS:
        raise OptionError(f"--out: {quoted(out.name)} must end in {', '.join(FORMATS)}")
    check_target(out, overwrite=overwrite, label="--out")


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

    An existing ``out`` is refused unless ``overwrite``; the chart is written through
    :func:`cnncalc.output.write_file` (an exclusive temporary file beside it, moved into place),
    so a failed write never leaves a half-written file or touches any other.
    """
    return draw_report(analysis, depth, out, overwrite, log, max_bars)[0]


def draw_report(analysis: Analysis, depth: int | None, out: Path, overwrite: bool = False,
                log: bool = False, max_bars: int = MAX_BARS) -> tuple[Path, str | None]:
    """:func:`draw`, and the sentence saying which depth it chose (None when it chose none)."""
    _check_output(out, overwrite)
    depth, collapsed = fitting_depth(analysis, depth, max_bars)
    rows = analysis.at_depth(depth)
    if not rows:
        raise CnncalcError(f"{analysis.spec.file or analysis.spec.name}: the network has no "
                           "layers: there is nothing to plot")
    if len(rows) > MAX_PLOT_ROWS:
        fitting = next((d for d in range(1, 64) if len(analysis.at_depth(d)) <= MAX_PLOT_ROWS),
                       None)
        hint = (f": --depth {fitting} gives {len(analysis.at_depth(fitting)):,}" if fitting else
                " at every --depth")
        raise OptionError(f"the chart would have {len(rows):,} bars; the limit is "
                          f"{MAX_PLOT_ROWS:,}{hint}")
    Figure = _matplotlib_figure()
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
        ax.set_title(title, fontsize=11, loc="left", parse_math=False)
        ax.tick_params(axis="x", labelsize=8)
        if attr == "live_bytes" and not log:
            ax.set_xticks(_binary_ticks(top))
        ax.xaxis.set_major_formatter(lambda v, _pos, fmt=fmt: fmt(int(v)) if v >= 1 else
                                     ("0" if not v else f"{v:g}"))
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    # user text (names, the title) is drawn as written: never parsed as matplotlib's $math$
    axes[0].set_yticks(positions, labels, fontsize=8, parse_math=False)
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
    fig.suptitle(title, fontsize=10, x=0.01, ha="left", parse_math=False)
    metadata = {"Date": None} if out.suffix.lower() == ".svg" else {}
    written = write_file(out, lambda stream: fig.savefig(stream, dpi=120, metadata=metadata,
                                                         format=out.suffix.lower()[1:]),
                         overwrite=overwrite, label="--out")
    return written, collapsed
