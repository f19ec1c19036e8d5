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
from typing import Any, TypeVar

from .errors import OptionError, SpecError
from .graph import GRAPH_INPUT, Graph, GraphWarning, Group, Op, lower, resolve_config
from .fields import RANK_SHAPES
from .layers import REGISTRY, Config, Shape, ShapeError
from .spec import Spec, parse_shape
from .windows import _ZERO, Field2, FloorWarning

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


_T = TypeVar("_T")


def new_frozen(cls: type[_T], **fields: Any) -> _T:
    """``cls(**fields)`` of a frozen dataclass, every field given, without its one
    ``object.__setattr__`` call per field: 3× faster, a tenth of ``table`` and of ``memory`` at
    100,000 layers. The object is the same frozen one (assignment still raises)."""
    obj = _new_object(cls)
    obj.__dict__.update(fields)
    return obj


_new_object = object.__new__


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
    # The graph the rows come from (cnncalc.graph), and per op its output shape and its config
    # as resolved for this input (shape references and ${X.channels} filled in).
    graph: Graph | None = field(default=None, repr=False, compare=False)
    shapes: list[Shape] = field(default_factory=list, repr=False, compare=False)
    configs: list[Config] = field(default_factory=list, repr=False, compare=False)
    # every output's shape, per sample (``output`` is the first); one unless the spec lists
    # ``outputs``
    outputs: tuple[Shape, ...] = ()
    # what the graph allows but looks like a mistake (a layer whose output is never used)
    graph_warnings: list[GraphWarning] = field(default_factory=list)

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
    """One pass over the graph's ops in order: each op's shape, counts and receptive field, then
    every group's row from running sums (O(1) a group)."""

    graph: Graph
    batch: int
    bytes_per_element: int
    explain: bool = False
    shapes: list[Shape] = field(default_factory=list)  # per op: its output, per sample
    fields: list[Field2] = field(default_factory=list)  # per op: its output's receptive field
    configs: list[Config] = field(default_factory=list)  # per op: as resolved for this input
    op_rows: dict[int, Row] = field(default_factory=dict)
    warnings: list[FloorWarning] = field(default_factory=list)
    # params, trainable, buffers, then MACs and activation bytes off side heads, then on them,
    # summed over the ops walked so far; marks[i] is that sum over ops[:i], kept only where a
    # group starts or ends: a group's sums are a difference
    running: list[int] = field(default_factory=lambda: [0] * 7)
    marks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    input: Shape = ()
    input_field: Field2 = field(default_factory=Field2)

    def shape_of(self, tensor: int) -> Shape:
        return self.input if tensor == GRAPH_INPUT else self.shapes[tensor]

    def field_of(self, tensor: int) -> Field2:
        return self.input_field if tensor == GRAPH_INPUT else self.fields[tensor]

    def run(self, x: Shape) -> None:
        self.input = x
        bounds = {g.first for g in self.graph.groups} | {g.end for g in self.graph.groups}
        for index, op in enumerate(self.graph.ops):
            if index in bounds:
                self.marks[index] = tuple(self.running)
            self.op(op)
        self.marks[len(self.graph.ops)] = tuple(self.running)

    def count(self, row: Row) -> None:
        sums = self.running
        k = 5 if row.head else 3
        sums[0] += row.params
        sums[1] += row.trainable_params
        sums[2] += row.buffers
        sums[k] += row.macs
        sums[k + 1] += row.activation_bytes

    def op(self, op: Op) -> None:
        xs = [self.shape_of(t) for t in op.inputs]
        if op.implied is not None:
            y = implied_merge(op, xs)
            self.shapes.append(y)
            self.fields.append(Field2.union([self.field_of(t) for t in op.inputs]))
            self.configs.append(op.config)
            return
        rule = REGISTRY[op.kind]
        config = resolve_config(op, self.shape_of)
        x: Any = xs[0] if rule.arity == 1 else tuple(xs)
        try:
            for shape in xs:
                if len(shape) not in rule.accepts:
                    check_rank(op.kind, rule.accepts, shape)
            y = rule.output_shape(config, x)
            params = rule.params(config, x)
            trainable = rule.trainable(config, x)
            buffers = rule.buffers(config, x)
            macs = rule.macs(config, x, y)
            window = rule.window(config, x)
            floors = rule.floors(config, x)
        except ShapeError as exc:  # a merge's message names its operands' shapes already
            shown = "" if len(xs) > 1 else f" (input {'×'.join(map(str, xs[0]))})"
            raise SpecError(f"{exc}{shown}", op.where, op.path) from None
        if min(y) < 1:
            raise SpecError(f"output size {'×'.join(map(str, y))} is empty", op.where, op.path)
        if floors:
            self.warnings.append(FloorWarning(op.path, tuple(floors)))
        rf = (self.field_of(op.inputs[0]) if len(op.inputs) == 1
              else Field2.union([self.field_of(t) for t in op.inputs]))
        out_rf = rf.through(window)
        formula: tuple[str, ...] = ()
        if self.explain:
            formula = tuple(rule.explain(config, x, y))
            if window is not None:
                formula += tuple(rf.through_text(window))
        row = new_frozen(
            Row,
            path=op.path, name=op.name, kind=op.label, depth=op.depth, leaf=True, head=op.head,
            input=xs[0], output=y, settings=rule.describe(config), params=params,
            trainable_params=trainable, buffers=buffers, macs=macs * self.batch,
            activation_bytes=prod(y) * self.batch * self.bytes_per_element,
            rf=out_rf.size, jump=out_rf.jump, rf_start=out_rf.start, formula=formula)
        self.shapes.append(y)
        self.fields.append(out_rf)
        self.configs.append(config)
        self.op_rows[op.index] = row
        if op.row:
            self.count(row)

    def group_row(self, group: Group) -> Row:
        """Sums over the group's ops: all of them for parameters; for MACs and activations,
        those on the same path as the group (a side head inside counts apart)."""
        params, trainable, buffers, *paths = (
            now - then for now, then in zip(self.marks[group.end], self.marks[group.first]))
        macs, activation_bytes = paths[2:] if group.head else paths[:2]
        rf = self.field_of(group.output)
        return new_frozen(
            Row,
            path=group.path, name=group.name, kind=group.label, depth=group.depth, leaf=False,
            head=group.head, input=self.shape_of(group.input), output=self.shape_of(group.output),
            settings="", params=params, trainable_params=trainable, buffers=buffers, macs=macs,
            activation_bytes=activation_bytes, rf=rf.size, jump=rf.jump, rf_start=rf.start,
            formula=())

    def rows(self) -> list[Row]:
        return [self.op_rows[item.index] if isinstance(item, Op) else self.group_row(item)
                for item in self.graph.preorder]


def check_rank(kind: str, accepts: tuple[int, ...], x: Shape) -> None:
    """Refuse an input of a rank the kind does not take, saying which ranks it takes."""
    if len(x) in accepts:
        return
    shape = "×".join(map(str, x))
    need = " or ".join("a vector" if r == 1 else f"a {RANK_SHAPES.get(r, f'rank-{r}')} map"
                       for r in accepts)
    hint = " (add a flatten layer first)" if accepts == (1,) else ""
    raise ShapeError(f"{kind} needs {need}, got {shape}{hint}")




def implied_merge(op: Op, xs: list[Shape]) -> Shape:
    """The concat of a ``concat:`` with branches, or the add of a ``residual:``."""
    if op.implied == "residual":
        if xs[0] != xs[1]:
            raise implied_mismatch(op, xs)
        return xs[0]
    if len({len(y) for y in xs}) != 1 or len({y[1:] for y in xs}) != 1:
        raise implied_mismatch(op, xs)
    return (sum(y[0] for y in xs), *xs[0][1:])


def implied_mismatch(op: Op, xs: list[Any]) -> SpecError:
    """The error of a residual or concat construct whose paths do not fit together (the messages
    of the tree constructs; also used by cnncalc.symbolic)."""
    def text(shape: Any) -> str:
        return "×".join(map(str, shape))

    if op.implied == "residual":
        return SpecError(f"cannot add {text(xs[0])} (main path) to {text(xs[1])} "
                         f"({op.operands[1]})", op.where, op.path)
    listed = ", ".join(f"{name} {text(y)}" for name, y in zip(op.operands, xs))
    what = "H×W" if all(len(y) == 3 for y in xs) else "their size on every axis but channels"
    return SpecError(f"concat branches must agree on {what}: {listed}", op.where, op.path)


def bytes_per_element(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise OptionError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}") from None


def input_shape(spec: Spec, input: Shape | str | None) -> Shape:
    """The input to analyse: ``input`` (``--input``), or the spec's own. Per-axis settings are
    read for the spec's rank, so an input of another rank is refused."""
    try:
        shape = parse_shape(input) if input is not None else spec.input
    except ValueError as exc:
        raise OptionError(f"--input: {exc}") from None
    check_input_rank(spec, shape)
    return shape


def check_input_rank(spec: Spec, dims: tuple[Any, ...]) -> None:
    """Refuse an input of another rank than the spec's (numeric or symbolic)."""
    if len(dims) == len(spec.input):
        return

    def words(rank: int) -> str:
        return "a vector F" if rank == 1 else RANK_SHAPES.get(rank, f"rank {rank}")

    raise OptionError(f"--input {'x'.join(map(str, dims))} is {words(len(dims))}, but "
                      f"{spec.name} takes {words(len(spec.input))} "
                      f"({'x'.join(map(str, spec.input))}): give an input of the same rank")


def analyze(spec: Spec, input: Shape | str | None = None, batch: int = 1,
            dtype: str = "fp32", explain: bool = False) -> Analysis:
    """Analyse ``spec`` for an input shape (default: the spec's own), batch size and dtype.
    With ``explain``, every layer row carries its formulas with the numbers substituted
    (``Row.formula``).

    Raises :class:`SpecError` when a layer cannot be applied to what reaches it.
    """
    shape = input_shape(spec, input)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise OptionError(f"--batch must be a positive integer, got {batch!r}")
    graph = lower(spec)
    walk = _Walk(graph, batch, bytes_per_element(dtype), explain)
    walk.run(shape)
    rows = walk.rows()
    leaves = [walk.op_rows[op.index] for op in graph.ops if op.row]
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
    outputs = tuple(walk.shape_of(t) for t in graph.outputs)
    return Analysis(spec=spec, input=shape, batch=batch, dtype=dtype, output=outputs[0],
                    rows=rows, totals=totals, warnings=walk.warnings, graph=graph,
                    shapes=walk.shapes, configs=walk.configs, outputs=outputs,
                    graph_warnings=list(graph.warnings))
