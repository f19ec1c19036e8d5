"""The one form every analysis reads: a spec lowered to a graph of operations.

:func:`lower` turns a loaded spec's tree (sequences, concats, residuals, heads, block instances)
and its graph references (``as``, ``from``, ``with``, ``outputs``) into a :class:`Graph`:

* ``ops``, in topological order (the order the spec lists them). Each :class:`Op` is one layer
  rule applied to its input tensors; a tensor is named by the index of the op that produces it, or
  :data:`GRAPH_INPUT` for the spec's input. The ``concat`` and ``add`` that a ``concat:`` with
  branches or a ``residual:`` implies are ops too (``row`` False: they have no row of their own,
  as before the graph format).
* ``groups``: every sequence, branch, shortcut, head and block instance, with its input and output
  tensors and the contiguous run of ops inside it.
* ``preorder``: groups and row ops interleaved in the order of the table's rows.

The engine, memory model, symbolic sizes, checks, conventions, torch builder and renderers walk
this form; none of them walks the YAML tree. Pure Python.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from .errors import Location, SpecError
from .layers import REGISTRY, Config
from .spec import (Concat, Deferred, Leaf, Node, Residual, Scope, Sequence, Spec,
                   per_axis_fields)

GRAPH_INPUT = -1


@dataclass(eq=False)
class Op:
    """One layer rule applied to input tensors. The attribute names match :class:`spec.Leaf`."""

    index: int
    name: str
    path: str
    label: str  # what tables show as its kind
    kind: str
    config: Config  # as loaded; shape references and ${…channels} resolve per analysis
    where: Location
    inputs: tuple[int, ...]  # tensor ids
    refs: tuple[tuple[str, int], ...] = ()  # fields that name a tensor: (field, tensor id)
    tensors: tuple[tuple[str, int], ...] = ()  # tensor names that ${…} expressions read
    head: bool = False  # inside a side head
    row: bool = True  # False for the merges that concat/residual constructs imply
    implied: str | None = None  # "concat" or "residual" for those merges
    group: int | None = None  # the innermost enclosing group
    operands: tuple[str, ...] = ()  # implied merges: what the inputs are, for messages

    @property
    def depth(self) -> int:
        return self.path.count(".") + 1

    @property
    def dynamic(self) -> bool:
        """Whether the config needs the analysis's shapes (a shape reference or ${X.channels})."""
        return bool(self.refs) or bool(self.tensors)


@dataclass(eq=False)
class Group:
    """A sequence, concat, residual, branch, shortcut, head or block instance."""

    index: int
    name: str
    path: str
    label: str
    where: Location
    side: bool  # a side head: its output leaves the main path
    head: bool  # a side head or inside one
    parent: int | None
    input: int
    output: int = GRAPH_INPUT
    first: int = 0  # ops[first:end] are inside it
    end: int = 0

    @property
    def depth(self) -> int:
        return self.path.count(".") + 1


Item = Union[Op, Group]


@dataclass(frozen=True)
class GraphWarning:
    """Something the graph allows but is likely a mistake (a tensor that is never used)."""

    path: str
    where: Location
    detail: str

    @property
    def severity(self) -> str:
        return "warning"

    @property
    def message(self) -> str:
        return f"{self.path}: {self.detail}" if self.path else self.detail


@dataclass
class Graph:
    ops: list[Op]
    groups: list[Group]
    preorder: list[Item]
    outputs: tuple[int, ...]  # the spec's outputs, tensor ids (the first is the main output)
    output_names: tuple[str, ...]
    warnings: list[GraphWarning] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Lowering


def _arity(kind: str) -> int | None:
    return getattr(REGISTRY[kind], "arity", 1)


@dataclass
class _Lowering:
    spec: Spec
    ops: list[Op] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    preorder: list[Item] = field(default_factory=list)
    bound: dict[int, dict[str, tuple[int, Location]]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)

    # --- names

    def define(self, scope: Scope, name: str, tensor: int, node: Node) -> None:
        names = self.bound.setdefault(id(scope), {})
        if name == "input":
            raise SpecError("'input' is the block's input: it cannot name another tensor",
                            node.where, node.path)
        if name in names:
            line = names[name][1].line
            raise SpecError(f"tensor {name!r} is already defined at line {line} in this scope "
                            "(in a repeat, name each copy: as: x${i})", node.where, node.path)
        names[name] = (tensor, node.where)

    def lookup(self, scope: Scope, name: str, node: Node, what: str) -> int:
        """The tensor ``name`` in ``scope`` or the scopes it is used from (innermost first)."""
        at: Scope | None = scope
        while at is not None:
            found = self.bound.get(id(at), {}).get(name)
            if found is not None:
                self.used.add(found[0])
                return found[0]
            if name == "input" and at.input is not None:
                self.used.add(at.input)
                return at.input
            at = at.parent
        raise SpecError(self._unknown(scope, name, what), node.where, node.path)

    def _unknown(self, scope: Scope, name: str, what: str) -> str:
        later = self.spec.tensor_names.get(name)
        if later is not None:
            return (f"{what} {name!r} is defined later (line {later.line}): a layer can only read "
                    "tensors computed before it (the graph would have a cycle)")
        visible: list[str] = []
        at: Scope | None = scope
        while at is not None:
            visible.extend(self.bound.get(id(at), {}))
            if at.input is not None:
                visible.append("input")
            at = at.parent
        close = difflib.get_close_matches(name, visible, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        known = ", ".join(sorted(set(visible))) or "none"
        return f"unknown tensor {name!r} in {what}{hint} (tensors here: {known})"

    # --- walk

    def add_op(self, node: Leaf | Node, kind: str, config: Config, inputs: tuple[int, ...],
               head: bool, group: int | None, *, row: bool = True, implied: str | None = None,
               refs: tuple[tuple[str, int], ...] = (),
               tensors: tuple[tuple[Any, int], ...] = (),
               operands: tuple[str, ...] = ()) -> int:
        index = len(self.ops)
        op = Op(index=index, name=node.name, path=node.path, label=node.label, kind=kind,
                config=config, where=node.where, inputs=inputs, refs=refs, tensors=tensors,
                head=head, row=row, implied=implied, group=group, operands=operands)
        self.ops.append(op)
        self.used.update(inputs)
        if row:
            self.preorder.append(op)
        return index

    def items(self, items: list[Node], x: int, head: bool, group: int | None) -> int:
        for item in items:
            x = self.item(item, x, head, group)
        return x

    def item(self, node: Node, x: int, head: bool, group: int | None) -> int:
        scope = node.scope
        if node.source is not None and not isinstance(node.source, list):
            x = self.lookup(scope, node.source, node, "from")
        if isinstance(node, Leaf):
            y = self.leaf(node, x, head, group)
        else:
            y = self.group(node, x, head, group)
        if node.tensor_name is not None:
            self.define(scope, node.tensor_name, y, node)
        return y

    def leaf(self, node: Leaf, x: int, head: bool, group: int | None) -> int:
        if node.plain:  # one input, the previous tensor or from's; no names in its fields
            return self.add_op(node, node.kind, node.config, (x,), head, group)
        scope = node.scope
        arity = _arity(node.kind)
        if isinstance(node.source, list):
            inputs = tuple(self.lookup(scope, n, node, "from") for n in node.source)
        else:
            inputs = (x, *(self.lookup(scope, n, node, "with") for n in node.extra))
        if arity is None and len(inputs) < 2:
            raise SpecError(f"{node.kind} merges two or more tensors: give 'from: [a, b]' or "
                            "'with: b' (the current tensor and b)", node.where, node.path)
        if arity is not None and len(inputs) != arity:
            raise SpecError(f"{node.kind} takes {arity} input, got {len(inputs)}", node.where,
                            node.path)
        refs = tuple((key, self.lookup(scope, value, node, key))
                     for key, value in node.config.items() if key in node.tensor_fields
                     and value is not None)
        tensors = tuple(((id(scope), name), self.lookup(scope, name, node, f"${{{name}.channels}}"))
                        for d in _deferred_values(node.config) for scope, name in d.refs())
        return self.add_op(node, node.kind, node.config, inputs, head, group, refs=refs,
                           tensors=tensors)

    def open_group(self, node: Node, x: int, side: bool, head: bool, parent: int | None) -> Group:
        g = Group(index=len(self.groups), name=node.name, path=node.path, label=node.label,
                  where=node.where, side=side, head=head or side, parent=parent, input=x,
                  first=len(self.ops))
        self.groups.append(g)
        self.preorder.append(g)
        if node.opens is not None:
            node.opens.input = x
        return g

    def close_group(self, g: Group, y: int) -> None:
        g.output, g.end = y, len(self.ops)

    def group(self, node: Node, x: int, head: bool, parent: int | None) -> int:
        side = isinstance(node, Sequence) and node.side
        g = self.open_group(node, x, side, head, parent)
        inner_head = head or side
        if isinstance(node, Sequence):
            y = self.items(node.items, x, inner_head, g.index)
        elif isinstance(node, Concat):
            outs = tuple(self.group(branch, x, head, g.index) for branch in node.branches)
            y = self.add_op(node, "concat", {"axis": 0}, outs, head, g.index, row=False,
                            implied="concat", operands=tuple(b.name for b in node.branches))
        elif isinstance(node, Residual):
            main = self.items(node.body, x, head, g.index)
            short = (self.group(node.shortcut, x, head, g.index) if node.shortcut is not None
                     else x)
            shortcut = "the shortcut" if node.shortcut is not None else "the identity shortcut"
            y = self.add_op(node, "add", {}, (main, short), head, g.index, row=False,
                            implied="residual", operands=("main path", shortcut))
            y = self.items(node.post, y, head, g.index)
        else:  # pragma: no cover - the loader makes only these
            raise TypeError(node)
        self.close_group(g, y)
        return x if side else y

    def outputs(self, last: int) -> tuple[tuple[int, ...], tuple[str, ...]]:
        if not self.spec.outputs:
            return (last,), ()
        ids, names = [], []
        for name, where in self.spec.outputs:
            found = self.bound.get(id(self.spec.scope), {}).get(name)
            if found is None:
                raise SpecError(self._unknown(self.spec.scope, name, "outputs"), where)
            ids.append(found[0])
            names.append(name)
        return tuple(ids), tuple(names)

    def unused(self, outputs: tuple[int, ...]) -> list[GraphWarning]:
        """Ops whose output nothing reads: neither a later op, nor an output, nor a side head's
        result (which is a head's own output)."""
        read = self.used | set(outputs)
        head_outputs = {g.output for g in self.groups if g.side}
        warnings = []
        for op in self.ops:
            if op.index in read or op.index in head_outputs or op.head:
                continue
            warnings.append(GraphWarning(op.path, op.where,
                                         "its output is never used (not read by a later layer "
                                         "and not one of the outputs)"))
        return warnings


def _deferred_values(config: Config) -> list[Deferred]:
    return [v for v in config.values() if isinstance(v, Deferred)]


def lower(spec: Spec) -> Graph:
    """The spec's graph (computed once per spec and kept on it)."""
    cached = spec.__dict__.get("_graph")
    if cached is not None:
        return cached
    lowering = _Lowering(spec)
    spec.scope.input = GRAPH_INPUT
    last = lowering.items(spec.root.items, GRAPH_INPUT, False, None)
    outputs, names = lowering.outputs(last)
    graph = Graph(ops=lowering.ops, groups=lowering.groups, preorder=lowering.preorder,
                  outputs=outputs, output_names=names, warnings=lowering.unused(outputs))
    spec.__dict__["_graph"] = graph
    return graph


def resolve_config(op: Op, shape_of: Callable[[int], Any]) -> Config:
    """The op's config for one analysis: shape references replaced by the referenced tensor's
    shape, ``${X.channels}`` expressions evaluated with the shapes ``shape_of(tensor)`` gives."""
    if not op.dynamic:
        return op.config
    config = dict(op.config)
    for key, tensor in op.refs:
        config[key] = tuple(shape_of(tensor))
    if op.tensors:
        channels = {key: shape_of(tensor)[0] for key, tensor in op.tensors}
        rule = REGISTRY[op.kind]
        per_axis = per_axis_fields(op.kind)
        for key, value in op.config.items():
            if isinstance(value, Deferred):
                config[key] = value.resolve(channels, key, rule.fields[key], op)
                if key in per_axis:
                    config[key] = _broadcast(config[key], len(shape_of(op.inputs[0])) - 1, key,
                                             value, op)
        config = value_finish(rule, config, op)
    return config


def _broadcast(value: Any, rank: int, key: str, deferred: Deferred, op: Op) -> Any:
    from .fields import FieldError, broadcast

    try:
        return broadcast(value, max(rank, 1), key)
    except FieldError as exc:
        raise SpecError(str(exc), deferred.where, op.path) from None


def value_finish(rule: Any, config: Config, op: Op) -> Config:
    from .fields import FieldError

    try:
        return rule.finish(config)
    except FieldError as exc:
        raise SpecError(str(exc), op.where, op.path) from None
