"""The symbolic engine: walks a spec's layer tree and computes, for every layer and every group of
layers, its output shape, parameters, buffers, multiply-adds, receptive field and activation memory.

Pure Python: no torch. Conventions (also in the table footer and docs/conventions.md):

* ``macs``: multiply-accumulates of conv and linear layers (and LeNet-1998's subsample and RBF
  units); bias adds, activations, pooling, normalisation and residual adds are not MACs.
* ``activation_bytes``: elements of a layer's output × bytes per element × batch; a group's is the
  sum over its layers, so any depth's rows add up to the totals.
* Side heads (``head``) count in ``params`` (they are trained) but not in the main path's
  ``macs`` and ``activation_bytes``; those go in ``head_macs`` and ``head_activation_bytes``.
* Receptive field (Araujo et al., Distill 2019): per axis, ``r' = r + (k − 1)·j``, ``j' = j·s`` and
  ``start' = start + ((k − 1)/2 − p)·j`` through each window, from r = 1, j = 1, start = 0 (the
  centre of the first input pixel); through a concat or a residual add the union of the paths'
  fields (the hull of their intervals; the largest jump).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import prod
from typing import Any

from .errors import OptionError, SpecError
from .layers import REGISTRY, Shape, ShapeError
from .windows import _ZERO, Field2, FloorWarning
from .spec import Concat, Leaf, Node, Residual, Sequence, Spec, parse_shape

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp64": 8, "int8": 1}

MAC_CONVENTION = ("MACs: one per multiply-accumulate of conv and linear layers; "
                  "bias adds, activations, pooling, normalisation and residual adds not counted")


@dataclass(frozen=True)
class Row:
    """One layer (``leaf``) or group of layers. Counts are for the whole batch except parameters.

    ``macs`` are multiply-adds (bias adds not counted); ``activation_bytes`` the bytes of the
    outputs of the layers in the row; shapes are per sample.
    """

    path: str
    name: str
    kind: str
    depth: int
    leaf: bool
    head: bool  # inside a side head
    input: Shape
    output: Shape
    settings: str  # kernel/stride/padding summary
    params: int
    trainable_params: int
    buffers: int
    macs: int
    activation_bytes: int
    rf: tuple[int, int]
    jump: tuple[int, int]
    # centre of the first output unit's receptive field, per axis, in input pixels (see Field2)
    rf_start: tuple[Fraction, Fraction] = _ZERO
    # the formulas with numbers substituted (analyze(..., explain=True)); empty otherwise
    formula: tuple[str, ...] = ()


@dataclass(frozen=True)
class Totals:
    """Whole-network sums; ``params`` includes side heads, ``macs`` is the main path only."""

    params: int
    trainable_params: int
    buffers: int
    macs: int
    activation_bytes: int
    param_bytes: int
    buffer_bytes: int
    head_params: int
    head_macs: int
    head_activation_bytes: int


class RowLookup:
    """Depth and path lookups over ``rows`` (each with ``leaf``, ``depth`` and ``path``), shared
    by :class:`Analysis` and the symbolic engine's result."""

    rows: list[Any]

    def at_depth(self, depth: int | None = None) -> list[Any]:
        """Rows at ``depth`` (1 = top level) plus shallower leaves; ``None``: every leaf layer."""
        if depth is None:
            return [r for r in self.rows if r.leaf]
        if depth < 1:
            raise OptionError(f"--depth must be at least 1, got {depth}")
        return [r for r in self.rows if r.depth == depth or (r.leaf and r.depth < depth)]

    def row(self, path: str) -> Any:
        for r in self.rows:
            if r.path == path:
                return r
        raise KeyError(path)


@dataclass(frozen=True)
class Analysis(RowLookup):
    """The engine's result for one spec, input, batch and dtype. ``rows`` is every node, pre-order."""

    spec: Spec
    input: Shape
    batch: int
    dtype: str
    output: Shape  # of the main path, per sample
    rows: list[Row]
    totals: Totals
    warnings: list[FloorWarning]
    # the counting convention of every ``macs`` figure (cnncalc.conventions; "macs" here)
    convention: str = "macs"

    # notebooks: a short repr, the table as HTML, a DataFrame (all in cnncalc.render)
    def __repr__(self) -> str:
        from .render import analysis_repr

        return analysis_repr(self)

    def _repr_html_(self) -> str:
        from .render import analysis_html

        return analysis_html(self)

    def to_pandas(self, depth: int | None = None) -> Any:
        """The rows at ``depth`` (default: every layer) as a pandas DataFrame."""
        from .render import analysis_dataframe

        return analysis_dataframe(self, depth)


@dataclass
class _Walk:
    spec: Spec
    batch: int
    bytes_per_element: int
    explain: bool = False
    rows: list[Row] = field(default_factory=list)
    warnings: list[FloorWarning] = field(default_factory=list)
    # Running sums over the leaf rows so far, so that a group's sums are a difference (O(1)):
    # params, trainable, buffers, then MACs and activation bytes off side heads, then on them.
    sums: list[int] = field(default_factory=lambda: [0] * 7)

    # Each visit returns (output shape, receptive field) and appends rows pre-order.

    def count(self, row: Row) -> None:
        sums, k = self.sums, (5 if row.head else 3)
        sums[0] += row.params
        sums[1] += row.trainable_params
        sums[2] += row.buffers
        sums[k] += row.macs
        sums[k + 1] += row.activation_bytes

    def leaf(self, node: Leaf, x: Shape, rf: Field2, head: bool) -> tuple[Shape, Field2]:
        rule = REGISTRY[node.kind]
        try:
            if len(x) not in rule.accepts:
                shape = "×".join(map(str, x))
                need = " or ".join("a vector" if r == 1 else "a C×H×W map" for r in rule.accepts)
                hint = " (add a flatten layer first)" if rule.accepts == (1,) else ""
                raise ShapeError(f"{node.kind} needs {need}, got {shape}{hint}")
            y = rule.output_shape(node.config, x)
            params = rule.params(node.config, x)
            trainable = rule.trainable(node.config, x)
            buffers = rule.buffers(node.config, x)
            macs = rule.macs(node.config, x, y)
            window = rule.window(node.config, x)
            floors = rule.floors(node.config, x)
        except ShapeError as exc:
            raise SpecError(f"{exc} (input {'×'.join(map(str, x))})", node.where, node.path) from None
        if any(d < 1 for d in y):
            raise SpecError(f"output size {'×'.join(map(str, y))} is empty", node.where, node.path)
        if floors:
            self.warnings.append(FloorWarning(node.path, tuple(floors)))
        out_rf = rf.through(window)
        formula: tuple[str, ...] = ()
        if self.explain:
            formula = tuple(rule.explain(node.config, x, y))
            if window is not None:
                formula += tuple(rf.through_text(window))
        self.rows.append(Row(
            path=node.path, name=node.name, kind=node.label, depth=node.path.count(".") + 1,
            leaf=True, head=head, input=x, output=y, settings=REGISTRY[node.kind].describe(node.config),
            params=params, trainable_params=trainable, buffers=buffers, macs=macs * self.batch,
            activation_bytes=prod(y) * self.batch * self.bytes_per_element,
            rf=out_rf.size, jump=out_rf.jump, rf_start=out_rf.start, formula=formula))
        self.count(self.rows[-1])
        return y, out_rf

    def node(self, node: Node, x: Shape, rf: Field2, head: bool) -> tuple[Shape, Field2]:
        if isinstance(node, Leaf):
            return self.leaf(node, x, rf, head)
        slot, before = len(self.rows), list(self.sums)
        self.rows.append(None)  # type: ignore[arg-type]  # the group's row, filled in below
        if isinstance(node, Sequence):
            y, out_rf = self.sequence(node.items, x, rf, head or node.side)
        elif isinstance(node, Concat):
            y, out_rf = self.concat(node, x, rf, head)
        elif isinstance(node, Residual):
            y, out_rf = self.residual(node, x, rf, head)
        else:  # pragma: no cover - the loader makes only these
            raise TypeError(node)
        self.rows[slot] = self.group_row(node, before, x, y, out_rf, head or
                                         (isinstance(node, Sequence) and node.side))
        if isinstance(node, Sequence) and node.side:
            return x, rf  # a side head leaves the main path as it found it
        return y, out_rf

    def sequence(self, items: list[Node], x: Shape, rf: Field2, head: bool) -> tuple[Shape, Field2]:
        for item in items:
            x, rf = self.node(item, x, rf, head)
        return x, rf

    def concat(self, node: Concat, x: Shape, rf: Field2, head: bool) -> tuple[Shape, Field2]:
        outputs = [self.node(branch, x, rf, head) for branch in node.branches]
        shapes = [y for y, _ in outputs]
        if any(len(y) != 3 for y in shapes) or len({y[1:] for y in shapes}) != 1:
            listed = ", ".join(f"{b.name} {'×'.join(map(str, y))}" for b, y in zip(node.branches, shapes))
            raise SpecError(f"concat branches must agree on H×W: {listed}", node.where, node.path)
        channels = sum(y[0] for y in shapes)
        return (channels, *shapes[0][1:]), Field2.union([f for _, f in outputs])

    def residual(self, node: Residual, x: Shape, rf: Field2, head: bool) -> tuple[Shape, Field2]:
        y, main_rf = self.sequence(node.body, x, rf, head)
        if node.shortcut is not None:
            s, short_rf = self.node(node.shortcut, x, rf, head)
        else:
            s, short_rf = x, rf
        if y != s:
            raise residual_mismatch(node, y, s)
        return self.sequence(node.post, y, Field2.union([main_rf, short_rf]), head)

    def group_row(self, node: Node, before: list[int], x: Shape, y: Shape, rf: Field2,
                  head: bool) -> Row:
        """Sums over the group's layers (the running sums now less ``before``): all of them for
        parameters; for MACs and activations, those on the same path as the group (a side head
        inside counts apart)."""
        params, trainable, buffers, *paths = (now - then for now, then in zip(self.sums, before))
        macs, activation_bytes = paths[2:] if head else paths[:2]
        return Row(
            path=node.path, name=node.name, kind=node.label, depth=node.path.count(".") + 1,
            leaf=False, head=head, input=x, output=y, settings="", params=params,
            trainable_params=trainable, buffers=buffers, macs=macs,
            activation_bytes=activation_bytes, rf=rf.size, jump=rf.jump,
            rf_start=rf.start)


def residual_mismatch(node: Residual, main: tuple, shortcut: tuple) -> SpecError:
    """The error for a residual add whose two paths differ (also used by cnncalc.symbolic)."""
    short = "the shortcut" if node.shortcut else "the identity shortcut"
    return SpecError(f"cannot add {'×'.join(map(str, main))} (main path) to "
                     f"{'×'.join(map(str, shortcut))} ({short})", node.where, node.path)


def bytes_per_element(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise OptionError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}") from None


def analyze(spec: Spec, input: Shape | str | None = None, batch: int = 1,
            dtype: str = "fp32", explain: bool = False) -> Analysis:
    """Analyse ``spec`` for an input shape (default: the spec's own), batch size and dtype.
    With ``explain``, every layer row carries its formulas with the numbers substituted
    (``Row.formula``).

    Raises :class:`SpecError` when a layer cannot be applied to what reaches it.
    """
    try:
        shape = parse_shape(input) if input is not None else spec.input
    except ValueError as exc:
        raise OptionError(f"--input: {exc}") from None
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise OptionError(f"--batch must be a positive integer, got {batch!r}")
    walk = _Walk(spec, batch, bytes_per_element(dtype), explain)
    output, _ = walk.sequence(spec.root.items, shape, Field2(), head=False)
    leaves = [r for r in walk.rows if r.leaf]
    main = [r for r in leaves if not r.head]
    heads = [r for r in leaves if r.head]
    params = sum(r.params for r in leaves)
    buffers = sum(r.buffers for r in leaves)
    size = bytes_per_element(dtype)
    totals = Totals(
        params=params, trainable_params=sum(r.trainable_params for r in leaves), buffers=buffers,
        macs=sum(r.macs for r in main), activation_bytes=sum(r.activation_bytes for r in main),
        param_bytes=params * size, buffer_bytes=buffers * size,
        head_params=sum(r.params for r in heads), head_macs=sum(r.macs for r in heads),
        head_activation_bytes=sum(r.activation_bytes for r in heads))
    return Analysis(spec=spec, input=shape, batch=batch, dtype=dtype, output=output,
                    rows=walk.rows, totals=totals, warnings=walk.warnings)
