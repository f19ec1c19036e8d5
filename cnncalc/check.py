"""``cnncalc check``: does every sliding-window division come out even for an input size, and which
sizes nearby do?

A division that is not exact floors the output and leaves rows or columns unread (the engine's
:class:`~cnncalc.engine.FloorWarning`). An input is *exact* when no layer floors along either axis
(padding-only floors included: every division exact). ``ceil_mode`` pooling rounds up instead of
flooring, reads no fewer rows, and so never makes an input inexact.

The spatial axes (length; height, width; depth, height, width) are computed independently by
every layer kind, so the search is per axis: heights are tried with the other axes held at the
given sizes, and so on. For an input whose spatial sizes are all equal (square, cube) the search
tries equal sizes. Finding the nearest exact sizes and listing a range re-run a light walk of the
graph (shapes and floors only, memoised per group and input shape, so blocks that meet the same
shape again are computed once); the full analysis is made only for the input asked about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine import analyze, implied_merge, input_shape
from .windows import FloorWarning
from .render import shape_text
from .errors import OptionError, SpecError, brief
from .graph import GRAPH_INPUT, Graph, Group, Op, lower, resolve_config
from .fields import AXIS_NAMES
from .layers import REGISTRY, Shape, ShapeError
from .spec import Spec

SEARCH_LIMIT = 4096  # how far from the input (each way) the nearest exact size is looked for
# The most walks of one op that one check makes (sizes tried × ops): the search window shrinks
# and a range is refused on networks deep enough to pass it, so that any check costs about the
# same bounded time (a second or two) whatever the network and sizes (docs/errors.md).
CHECK_BUDGET = 2_000_000
MIN_WINDOW = 16  # sizes tried each way however deep the network


class _Invalid(Exception):
    """The network cannot take this input size (too small, branches that disagree, …)."""


class Exactness:
    """Which axes floor somewhere in ``spec`` for an input shape: a pass over the graph's ops,
    where a group that only reads its own input (and whose inner tensors nothing outside reads)
    is memoised per input shape, as a block instance that recurs costs one lookup."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.graph = lower(spec)
        self._memo: dict[tuple[int, Shape], tuple[Shape | None, frozenset[str]]] = {}
        self._closed = _closed_groups(self.graph)

    def floored_axes(self, shape: Shape) -> frozenset[str] | None:
        """The axes ("height", "width") along which some layer floors; ``None`` when the network
        cannot take ``shape`` at all."""
        shapes: list[Shape | None] = [None] * len(self.graph.ops)
        try:
            return self._range(0, len(self.graph.ops), shape, shapes, None)
        except (_Invalid, ShapeError, SpecError):
            return None

    def _range(self, first: int, end: int, x: Shape, shapes: list[Any],
               inside: Group | None) -> frozenset[str]:
        ops = self.graph.ops
        axes: frozenset[str] = frozenset()

        def shape_of(tensor: int) -> Shape:
            return x if tensor == GRAPH_INPUT else shapes[tensor]

        i = first
        closed = self._closed
        while i < end:
            group = next((g for g in closed[i] if g.end <= end and g is not inside),
                         None) if i in closed else None
            if group is not None:
                key = (group.index, shape_of(group.input))
                found = self._memo.get(key)
                if found is None:
                    found_axes = self._range(group.first, group.end, x, shapes, group)
                    out = shapes[group.output] if group.output >= group.first else None
                    found = self._memo[key] = (out, found_axes)
                elif group.output >= group.first:
                    shapes[group.output] = found[0]
                axes |= found[1]
                i = group.end
                continue
            op = ops[i]
            y, floored = self._visit(op, tuple(shape_of(t) for t in op.inputs), shape_of)
            shapes[i] = y
            if floored:
                axes |= floored
            i += 1
        return axes

    @staticmethod
    def _visit(op: Op, xs: tuple[Shape, ...], shape_of: Any) -> tuple[Shape, frozenset[str]]:
        if op.implied is not None:
            try:
                return implied_merge(op, list(xs)), frozenset()
            except SpecError:
                raise _Invalid from None
        rule = REGISTRY[op.kind]
        if any(len(x) not in rule.accepts for x in xs):
            raise _Invalid
        config = resolve_config(op, shape_of)
        x: Any = xs[0] if getattr(rule, "arity", 1) == 1 else xs
        y = rule.output_shape(config, x)
        if any(d < 1 for d in y):
            raise _Invalid
        floors = rule.floors(config, x)
        return y, frozenset(f.axis for f in floors) if floors else _NONE


_NONE: frozenset[str] = frozenset()


def _closed_groups(graph: Graph) -> dict[int, list[Group]]:
    """Groups whose ops read only tensors made inside them or the group's input, whose inner
    tensors nothing after them reads except the group's output, and that hold no op whose config
    reads shapes; by first op, the largest first."""
    readers: dict[int, int] = {}  # tensor → the last op reading it
    for op in graph.ops:
        for t in op.inputs:
            readers[t] = op.index
        for _, t in (*op.refs, *op.tensors):
            readers[t] = op.index
    closed: dict[int, list[Group]] = {}
    for g in graph.groups:
        inner = range(g.first, g.end)
        if g.first == g.end:
            continue
        ok = all(not op.dynamic and all(t in inner or t == g.input for t in op.inputs)
                 for op in graph.ops[g.first:g.end])
        ok = ok and all(readers.get(t, -1) < g.end or t == g.output for t in inner)
        if ok:
            closed.setdefault(g.first, []).append(g)
    for groups in closed.values():
        groups.sort(key=lambda g: g.first - g.end)
    return closed


@dataclass(frozen=True)
class Nearest:
    """The closest exact sizes along one axis (or both, for square inputs); ``None``: none found
    within :data:`SEARCH_LIMIT` (below: down to 1)."""

    below: int | None
    above: int | None
    searched: int = SEARCH_LIMIT  # sizes tried each way


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
        if any(len(p.strip()) > 19 for p in parts):
            raise ValueError
        lo, hi = (int(p) for p in parts)
    except ValueError:
        raise OptionError(f"--range must look like 200:256, got {brief(text)}") from None
    if lo < 1 or hi < lo:
        raise OptionError(f"--range needs 1 ≤ LO ≤ HI, got {brief(text)}")
    if hi - lo + 1 > MAX_RANGE:
        raise OptionError(f"--range spans {hi - lo + 1:,} sizes; the limit is {MAX_RANGE:,}")
    return lo, hi


def _axes(shape: Shape) -> tuple[str, ...]:
    """The spatial axes' names: length; height, width; depth, height, width."""
    return AXIS_NAMES[len(shape) - 1]


def _shape_with(shape: Shape, axis: str | None, size: int) -> Shape:
    """``shape`` with ``size`` along ``axis``, or along every spatial axis for ``None``."""
    if axis is None:
        return (shape[0], *[size] * (len(shape) - 1))
    at = 1 + _axes(shape).index(axis)
    return (*shape[:at], size, *shape[at + 1:])


def _together(names: list[str]) -> str:
    """"height and width"; "depth, height and width"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _is_exact(exactness: Exactness, shape: Shape, axis: str | None) -> bool:
    floored = exactness.floored_axes(shape)
    if floored is None:
        return False
    return not floored if axis is None else axis not in floored


def search_window(ops: int, searches: int) -> int:
    """Sizes tried each way from the input: SEARCH_LIMIT, less on a network so deep that
    ``searches`` directions of it would pass CHECK_BUDGET."""
    return max(MIN_WINDOW, min(SEARCH_LIMIT, CHECK_BUDGET // max(1, ops * searches)))


def range_limit(ops: int) -> int:
    """The most sizes ``--range`` may list on a network of ``ops`` ops."""
    return max(MIN_WINDOW, min(MAX_RANGE, CHECK_BUDGET // max(1, ops)))


MAX_RANGE = 100_001


def _nearest(exactness: Exactness, shape: Shape, axis: str | None, size: int,
             window: int = SEARCH_LIMIT) -> Nearest:
    below = next((n for n in range(size - 1, max(size - window - 1, 0), -1)
                  if _is_exact(exactness, _shape_with(shape, axis, n), axis)), None)
    above = next((n for n in range(size + 1, size + window + 1)
                  if _is_exact(exactness, _shape_with(shape, axis, n), axis)), None)
    return Nearest(below, above, window)


def check(spec: Spec, input: Shape | str | None = None,
          size_range: tuple[int, int] | str | None = None) -> Check:
    """Check ``spec`` at ``input`` (default: the spec's own): its floors, the nearest exact sizes
    and, with ``size_range`` (``(lo, hi)`` or ``"LO:HI"``), every exact size in it.

    Raises :class:`SpecError` when the network cannot take ``input`` and :class:`OptionError` for
    a bad input or range.
    """
    shape = input_shape(spec, input)
    if len(shape) < 2:
        raise OptionError(f"check needs a map (C×L, C×H×W or C×D×H×W), got the vector "
                          f"{'×'.join(map(str, shape))}")
    axes = _axes(shape)
    if isinstance(size_range, str):
        size_range = parse_range(size_range)
    analysis = analyze(spec, input=shape)
    exactness = Exactness(spec)
    ops = len(exactness.graph.ops)
    square = len(axes) > 1 and len(set(shape[1:])) == 1  # one size searched for every axis
    if size_range is not None:
        lo, hi = size_range
        limit = range_limit(ops) // (1 if square else len(axes))
        if hi - lo + 1 > limit:
            raise OptionError(f"--range spans {hi - lo + 1:,} sizes; on this network ({ops:,} "
                              f"ops) check lists at most {limit:,} (a bound on its time)")
    nearest: dict[str, Nearest] = {}
    exact_sizes: dict[str, list[int]] = {}
    if square:
        found = _nearest(exactness, shape, None, shape[1], search_window(ops, 2))
        nearest = {axis: found for axis in axes}
    else:
        window = search_window(ops, 2 * len(axes))
        nearest = {axis: _nearest(exactness, shape, axis, shape[1 + a], window)
                   for a, axis in enumerate(axes)}
    if size_range is not None:
        if square:
            sizes = [n for n in range(lo, hi + 1)
                     if _is_exact(exactness, _shape_with(shape, None, n), None)]
            exact_sizes = {axis: sizes for axis in axes}
        else:
            exact_sizes = {axis: [n for n in range(lo, hi + 1)
                                  if _is_exact(exactness, _shape_with(shape, axis, n), axis)]
                           for axis in axes}
    return Check(spec=spec, input=shape, square=square, warnings=analysis.warnings,
                 nearest=nearest, range=size_range, exact_sizes=exact_sizes)


# --------------------------------------------------------------------------------------------
# Rendering (text and JSON)


def _ignored_text(warning: FloorWarning) -> str:
    parts = []
    for axis, count in warning.ignored_input.items():
        units = _UNITS[axis]
        parts.append(f"{count} input {units}{'' if count == 1 else 's'}")
    return "ignores " + " and ".join(parts)


_UNITS = {"length": "position", "depth": "slice", "height": "row", "width": "column"}


def _held(result: Check, axis: str) -> str:
    """" (with the width held at 224)": the other axes and their sizes ('' in 1-D)."""
    axes = _axes(result.input)
    others = [(a, result.input[1 + i]) for i, a in enumerate(axes) if a != axis]
    if not others:
        return ""
    sizes = _together([str(n) for _, n in others])
    return f" (with the {_together([a for a, _ in others])} held at {sizes})"


def _nearest_text(result: Check) -> list[str]:
    lines = []
    axes = _axes(result.input)
    groups = [(_together(list(axes)), axes[0], result.nearest[axes[0]])] if result.square else \
        [(axis, axis, result.nearest[axis]) for axis in axes]
    for label, axis, found in groups:
        size = result.input[1 + axes.index(axis)]
        none = f"none within {found.searched:,}"
        below = f"{found.below} (−{size - found.below})" if found.below else \
            ("none" if size - 1 <= found.searched else none)
        above = f"{found.above} (+{found.above - size})" if found.above else none
        held = "" if result.square else _held(result, axis)
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
        axes = _axes(result.input)
        if result.square:
            sizes = result.exact_sizes[axes[0]]
            shape = "square" if len(axes) == 2 else "cube"
            lines.append(f"exact {shape} sizes in {lo}..{hi} ({len(sizes)}): "
                         + (", ".join(map(str, sizes)) or "none"))
        else:
            for axis in axes:
                sizes = result.exact_sizes[axis]
                held = _held(result, axis).strip().removeprefix("(").removesuffix(")")
                lines.append(f"exact {axis}s in {lo}..{hi}{' ' + held if held else ''} "
                             f"({len(sizes)}): " + (", ".join(map(str, sizes)) or "none"))
    return lines


def check_dict(result: Check) -> dict[str, Any]:
    """The ``check --format json`` object (docs/json.md)."""
    from .render import warning_dict

    return {
        "spec": result.spec.name, "input": list(result.input), "exact": result.exact,
        "square": result.square,
        "floors": [warning_dict(w) for w in result.warnings],
        "nearest": {axis: {"below": n.below, "above": n.above, "searched": n.searched}
                    for axis, n in result.nearest.items()},
        "range": list(result.range) if result.range is not None else None,
        "exact_sizes": result.exact_sizes if result.range is not None else None,
    }
