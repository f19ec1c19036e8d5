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

# (row attribute, panel title, label formatter, colour)
PANELS: tuple[tuple[str, str, Any, str], ...] = (
    ("params", "Parameters", human_count, "#4c72b0"),
    ("macs", "MACs", human_count, "#dd8452"),
    ("activation_bytes", "Activation memory", human_bytes, "#55a868"),
)


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


def draw(analysis: Analysis, depth: int | None, out: Path, overwrite: bool = False) -> Path:
    """Write the three-panel bar chart for ``analysis.at_depth(depth)`` to ``out`` (.svg/.png/.pdf).

    An existing ``out`` is refused unless ``overwrite``; the chart is written through
    :func:`cnncalc.output.write_file` (an exclusive temporary file beside it, moved into place),
    so a failed write never leaves a half-written file or touches any other.
    """
    _check_output(out, overwrite)
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
    labels = [_label(r) for r in rows]
    height = 1.6 + 0.26 * len(rows)
    fig = Figure(figsize=(13, height), layout="constrained")
    axes = fig.subplots(1, len(PANELS), sharey=True)
    positions = list(range(len(rows)))
    for ax, (attr, title, fmt, colour) in zip(axes, PANELS):
        values = [getattr(r, attr) for r in rows]
        colours = ["#bbbbbb" if r.head else colour for r in rows]
        ax.barh(positions, values, color=colours, height=0.7)
        top = max(values) or 1
        ax.set_xlim(0, top * 1.28)  # room for the value labels
        for y, value in zip(positions, values):
            if value:
                ax.text(value + top * 0.01, y, fmt(value), va="center", fontsize=8)
        ax.set_title(title, fontsize=11, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        if attr == "activation_bytes":
            ax.set_xticks(_binary_ticks(top))
        ax.xaxis.set_major_formatter(lambda v, _pos, fmt=fmt: fmt(int(v)) if v else "0")
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    # user text (names, the title) is drawn as written: never parsed as matplotlib's $math$
    axes[0].set_yticks(positions, labels, fontsize=8, parse_math=False)
    axes[0].invert_yaxis()  # network order, top to bottom
    t = analysis.totals
    fig.suptitle(f"{analysis.spec.name}: {analysis.spec.title} — input {shape_text(analysis.input)}, "
                 f"batch {analysis.batch}, {analysis.dtype}\n"
                 f"params {t.params:,} · MACs {t.macs:,} · activations {human_bytes(t.activation_bytes)}",
                 fontsize=10, x=0.01, ha="left", parse_math=False)
    metadata = {"Date": None} if out.suffix.lower() == ".svg" else {}
    return write_file(out, lambda stream: fig.savefig(stream, dpi=120, metadata=metadata,
                                                      format=out.suffix.lower()[1:]),
                      overwrite=overwrite, label="--out")
