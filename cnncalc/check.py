"""``cnncalc check``: does every sliding-window division come out even for an input size, and which
sizes nearby do?

A division that is not exact floors the output and leaves rows or columns unread (the engine's
:class:`~cnncalc.engine.FloorWarning`). An input is *exact* when no layer floors along either axis
(padding-only floors included: every division exact). ``ceil_mode`` pooling rounds up instead of
flooring, reads no fewer rows, and so never makes an input inexact.

The two axes are computed independently by every layer kind, so the search is per axis: heights
are tried with the width held at the given one, and widths with the height held. For a square
input the search tries square sizes. Finding the nearest exact sizes and listing a range re-run a
light walk of the spec (shapes and floors only, memoised per node and input shape, so sizes that
meet again after a stride are computed once); the full analysis is made only for the input asked
about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine import analyze
from .windows import FloorWarning
from .render import shape_text
from .errors import OptionError, SpecError
from .layers import AXES, REGISTRY, Shape, ShapeError
from .spec import Concat, Leaf, Node, Residual, Sequence, Spec, parse_shape

SEARCH_LIMIT = 4096  # how far past the input the nearest exact size is looked for


class _Invalid(Exception):
    """The network cannot take this input size (too small, branches that disagree, …)."""


class Exactness:
    """Which axes floor somewhere in ``spec`` for an input shape, memoised per node and shape."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self._memo: dict[tuple[int, Shape], tuple[Shape, frozenset[str]]] = {}

    def floored_axes(self, shape: Shape) -> frozenset[str] | None:
        """The axes ("height", "width") along which some layer floors; ``None`` when the network
        cannot take ``shape`` at all."""
        try:
            _, axes = self._sequence(self.spec.root.items, shape)
        except (_Invalid, ShapeError, SpecError):
            return None
        return axes

    def _sequence(self, items: list[Node], x: Shape) -> tuple[Shape, frozenset[str]]:
        axes: frozenset[str] = frozenset()
        for item in items:
            y, floored = self._node(item, x)
            axes |= floored
            if not (isinstance(item, Sequence) and item.side):  # a side head leaves x as it was
                x = y
        return x, axes

    def _node(self, node: Node, x: Shape) -> tuple[Shape, frozenset[str]]:
        key = (id(node), x)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._visit(node, x)
        return found

    def _visit(self, node: Node, x: Shape) -> tuple[Shape, frozenset[str]]:
        if isinstance(node, Leaf):
            rule = REGISTRY[node.kind]
            if len(x) not in rule.accepts:
                raise _Invalid
            y = rule.output_shape(node.config, x)
            if any(d < 1 for d in y):
                raise _Invalid
            return y, frozenset(f.axis for f in rule.floors(node.config, x))
        if isinstance(node, Sequence):
            return self._sequence(node.items, x)
        if isinstance(node, Concat):
            outputs = [self._node(branch, x) for branch in node.branches]
            shapes = [y for y, _ in outputs]
            if any(len(y) != 3 for y in shapes) or len({y[1:] for y in shapes}) != 1:
                raise _Invalid
            axes = frozenset().union(*(a for _, a in outputs))
            return (sum(y[0] for y in shapes), *shapes[0][1:]), axes
        if isinstance(node, Residual):
            y, axes = self._sequence(node.body, x)
            s, short_axes = self._node(node.shortcut, x) if node.shortcut is not None else (x, frozenset())
            if y != s:
                raise _Invalid
            z, post_axes = self._sequence(node.post, y)
            return z, axes | short_axes | post_axes
        raise TypeError(node)  # pragma: no cover - the loader makes only these


@dataclass(frozen=True)
class Nearest:
    """The closest exact sizes along one axis (or both, for square inputs); ``None``: none found
    within :data:`SEARCH_LIMIT` (below: down to 1)."""

    below: int | None
    above: int | None


@dataclass(frozen=True)
class Check:
    """The answer of ``cnncalc check``.

    ``nearest`` and ``exact_sizes`` are keyed by axis ("height", "width"); for a square input
    both keys hold the same square sizes. ``exact_sizes`` is filled only for a requested range.
    """

    spec: Spec
    input: Shape
    square: bool
    warnings: list[FloorWarning]
    nearest: dict[str, Nearest]
    range: tuple[int, int] | None
    exact_sizes: dict[str, list[int]]

    @property
    def exact(self) -> bool:
        return not self.warnings

    @property
    def ok(self) -> bool:
        """The exit status's question: is the input exact (a range only adds a listing)."""
        return self.exact


def parse_range(text: str) -> tuple[int, int]:
    """``LO:HI`` (inclusive, positive, LO ≤ HI)."""
    parts = text.split(":")
    try:
        lo, hi = (int(p) for p in parts)
    except ValueError:
        raise OptionError(f"--range must look like 200:256, got {text!r}") from None
    if lo < 1 or hi < lo:
        raise OptionError(f"--range needs 1 ≤ LO ≤ HI, got {text!r}")
    if hi - lo > 100_000:
        raise OptionError(f"--range spans {hi - lo + 1:,} sizes; the limit is 100,001")
    return lo, hi


def _shape_with(shape: Shape, axis: str | None, size: int) -> Shape:
    """``shape`` with ``size`` along ``axis``, or along both for ``None`` (square)."""
    c, h, w = shape
    if axis is None:
        return (c, size, size)
    return (c, size, w) if axis == "height" else (c, h, size)


def _is_exact(exactness: Exactness, shape: Shape, axis: str | None) -> bool:
    floored = exactness.floored_axes(shape)
    if floored is None:
        return False
    return not floored if axis is None else axis not in floored


def _nearest(exactness: Exactness, shape: Shape, axis: str | None, size: int) -> Nearest:
    below = next((n for n in range(size - 1, 0, -1)
                  if _is_exact(exactness, _shape_with(shape, axis, n), axis)), None)
    above = next((n for n in range(size + 1, size + SEARCH_LIMIT + 1)
                  if _is_exact(exactness, _shape_with(shape, axis, n), axis)), None)
    return Nearest(below, above)


def check(spec: Spec, input: Shape | str | None = None,
          size_range: tuple[int, int] | str | None = None) -> Check:
    """Check ``spec`` at ``input`` (default: the spec's own): its floors, the nearest exact sizes
    and, with ``size_range`` (``(lo, hi)`` or ``"LO:HI"``), every exact size in it.

    Raises :class:`SpecError` when the network cannot take ``input`` and :class:`OptionError` for
    a bad input or range.
    """
    try:
        shape = parse_shape(input) if input is not None else spec.input
    except ValueError as exc:
        raise OptionError(f"--input: {exc}") from None
    if len(shape) != 3:
        raise OptionError(f"check needs a C×H×W input, got {'×'.join(map(str, shape))}")
    if isinstance(size_range, str):
        size_range = parse_range(size_range)
    analysis = analyze(spec, input=shape)
    exactness = Exactness(spec)
    square = shape[1] == shape[2]
    nearest: dict[str, Nearest] = {}
    exact_sizes: dict[str, list[int]] = {}
    if square:
        found = _nearest(exactness, shape, None, shape[1])
        nearest = {axis: found for axis in AXES}
    else:
        nearest = {axis: _nearest(exactness, shape, axis, shape[1 + a])
                   for a, axis in enumerate(AXES)}
    if size_range is not None:
        lo, hi = size_range
        if square:
            sizes = [n for n in range(lo, hi + 1) if _is_exact(exactness, (shape[0], n, n), None)]
            exact_sizes = {axis: sizes for axis in AXES}
        else:
            exact_sizes = {axis: [n for n in range(lo, hi + 1)
                                  if _is_exact(exactness, _shape_with(shape, axis, n), axis)]
                           for axis in AXES}
    return Check(spec=spec, input=shape, square=square, warnings=analysis.warnings,
                 nearest=nearest, range=size_range, exact_sizes=exact_sizes)


# --------------------------------------------------------------------------------------------
# Rendering (text and JSON)


def _ignored_text(warning: FloorWarning) -> str:
    parts = []
    for axis, count in warning.ignored_input.items():
        units = "row" if axis == "height" else "column"
        parts.append(f"{count} input {units}{'' if count == 1 else 's'}")
    return "ignores " + " and ".join(parts)


def _nearest_text(result: Check) -> list[str]:
    lines = []
    groups = [("height and width", result.nearest["height"])] if result.square else \
        [(axis, result.nearest[axis]) for axis in AXES]
    for label, found in groups:
        size = result.input[1] if label != "width" else result.input[2]
        below = f"{found.below} (−{size - found.below})" if found.below else "none"
        above = f"{found.above} (+{found.above - size})" if found.above else "none"
        held = "" if result.square else \
            f" (with the {'width' if label == 'height' else 'height'} held at " \
            f"{result.input[2] if label == 'height' else result.input[1]})"
        lines.append(f"nearest exact {label}{held}: {below} below, {above} above")
    return lines


def check_lines(result: Check) -> list[str]:
    """The text report: verdict, each floor, the nearest exact sizes, the range's exact sizes."""
    where = f"{result.spec.name} at {shape_text(result.input)}"
    if result.exact:
        lines = [f"{where}: exact: every division comes out even"]
    else:
        ignoring = sum(1 for w in result.warnings if w.severity == "warning")
        lines = [f"{where}: not exact: {len(result.warnings)} layer(s) floor, "
                 f"{ignoring} of them leaving input unread"]
        for w in result.warnings:
            detail = _ignored_text(w) if w.severity == "warning" else "only padding unread"
            lines.append(f"  {w.path}: {detail}")
            lines.append(f"    {w.detail}")
        lines += _nearest_text(result)
    if result.range is not None:
        lo, hi = result.range
        if result.square:
            sizes = result.exact_sizes["height"]
            lines.append(f"exact square sizes in {lo}..{hi} ({len(sizes)}): "
                         + (", ".join(map(str, sizes)) or "none"))
        else:
            for a, axis in enumerate(AXES):
                other = AXES[1 - a]
                sizes = result.exact_sizes[axis]
                lines.append(f"exact {axis}s in {lo}..{hi} with the {other} held at "
                             f"{result.input[2 - a]} ({len(sizes)}): "
                             + (", ".join(map(str, sizes)) or "none"))
    return lines


def check_dict(result: Check) -> dict[str, Any]:
    """The ``check --format json`` object (docs/json.md)."""
    from .render import warning_dict

    return {
        "spec": result.spec.name, "input": list(result.input), "exact": result.exact,
        "square": result.square,
        "floors": [warning_dict(w) for w in result.warnings],
        "nearest": {axis: {"below": n.below, "above": n.above}
                    for axis, n in result.nearest.items()},
        "range": list(result.range) if result.range is not None else None,
        "exact_sizes": result.exact_sizes if result.range is not None else None,
    }
