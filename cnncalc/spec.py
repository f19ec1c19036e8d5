"""The spec format: YAML text to a tree of layers with stable dotted paths.

A spec is a mapping with ``input`` (``C×H×W``), ``layers`` (a list), and optionally ``name``,
``title``, ``description``, ``source`` and ``blocks`` (named, parametrised layer lists). Each
layer is either a bare kind (``- relu``) or a one-key mapping from a kind, a block name or a
composition keyword to its fields. ``docs/spec-format.md`` is the reference.

Composition keywords:

* ``sequence``: ``layers`` in order.
* ``concat``: ``branches``, a mapping from branch name to a list of layers, joined along channels.
* ``residual``: ``layers`` (the main path) added to ``shortcut`` (a list; identity when absent,
  named ``shortcut_name``, default ``shortcut``), then the optional ``post`` layers.
* ``head``: a side head (an auxiliary classifier): it reads the current tensor, its parameters
  count, and the main path goes on with the tensor it read.
* ``repeat``: ``times`` copies of ``layers``, spliced into the enclosing list; ``${i}`` is the
  copy's index from 0.

Any item may carry ``name`` (default: its index in the enclosing list, as in ``torch.nn.Sequential``)
and ``when`` (the item is left out when false). Strings of the form ``${expression}`` are evaluated
with the block's parameters (integers, booleans, + − * // %, comparisons, and/or/not).
"""

from __future__ import annotations

import ast
import difflib
import gc
import operator
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import Location, SpecError, brief, has_control, printable
from .fields import MAX_INT, MAX_INT_TEXT, RANK_SHAPES, FieldError, broadcast, is_per_axis
from .layers import REGISTRY, Shape
from .yamlio import MAX_YAML_CHARS, YamlError, YamlList, YamlMap, line_column, load_yaml

KEYWORDS = ("sequence", "concat", "residual", "head", "repeat")
# on any item: its name, whether it is there, and the graph: the tensor it names (as), the
# tensor it reads (from) and, for merge kinds, the tensors it merges the current one with (with)
GRAPH_FIELDS = ("as", "from", "with")
COMMON_FIELDS = ("name", "when", *GRAPH_FIELDS)
TOP_LEVEL_KEYS = ("name", "title", "description", "source", "input", "blocks", "layers",
                  "outputs")

# Limits (docs/errors.md): they bound the time and memory any spec text can cost.
MAX_NODES = 100_000  # expansion steps: layers, groups, repeat copies and items left out by when
MAX_REPEAT = 10_000  # copies in one repeat
MAX_EXPRESSION = 1_000  # characters in one ${…}
MAX_VALUE_BITS = 64  # an integer an expression computes stays below 2**64 in magnitude
MAX_TEXT = 1_000  # characters of text an expression builds


# --------------------------------------------------------------------------------------------
# The tree


class Scope:
    """Where tensor names live: the spec's top level, or one block instance. Names are looked up
    in the scope, then in the scopes it is used from. ``input`` is the tensor the block instance
    reads (set when the spec is lowered, cnncalc.graph)."""

    __slots__ = ("parent", "input")

    def __init__(self, parent: Scope | None = None):
        self.parent = parent
        self.input: int | None = None


@dataclass(kw_only=True)
class Node:
    """A layer or a group of layers, at a dotted ``path`` (``layer3.2.conv1``).

    The graph fields: ``tensor_name`` (``as``) names its output in ``scope``; ``source``
    (``from``) is the tensor it reads instead of the previous item's output (a list of tensors
    for a merge kind); ``extra`` (``with``) the tensors a merge kind merges the current one with.
    ``opens`` is the scope of a block instance's own names.
    """

    name: str
    path: str
    label: str  # what tables show as its kind: the layer kind, keyword or block name
    where: Location
    scope: Scope | None = field(default=None, repr=False)
    opens: Scope | None = field(default=None, repr=False)
    tensor_name: str | None = None
    source: str | list[str] | None = None
    extra: tuple[str, ...] = ()


@dataclass(kw_only=True)
class Leaf(Node):
    """One layer of a registered kind with its parsed, validated fields."""

    kind: str
    config: dict[str, Any]
    # the fields whose value names a tensor (crop's and upsample's ``like``)
    tensor_fields: frozenset[str] = frozenset()
    deferred: bool = False  # a field is a ${…} that reads a tensor's shape

    @property
    def plain(self) -> bool:
        """One input and no tensor names or shape-reading values in its fields: lowering needs
        no lookups (most layers)."""
        return (not self.deferred and not self.extra and not isinstance(self.source, list)
                and not self.tensor_fields and getattr(REGISTRY[self.kind], "arity", 1) == 1)


@dataclass(kw_only=True)
class Sequence(Node):
    """Layers applied in order. ``side`` marks a head: its output leaves the main path."""

    items: list[Node]
    side: bool = False


@dataclass(kw_only=True)
class Concat(Node):
    """Parallel branches on the same input, concatenated along channels."""

    branches: list[Sequence]


@dataclass(kw_only=True)
class Residual(Node):
    """``post(body(x) + shortcut(x))``; an absent shortcut is the identity."""

    body: list[Node]
    shortcut: Sequence | None
    post: list[Node]


@dataclass(kw_only=True)
class Spec:
    """A loaded spec: its metadata, default input shape and the layer tree."""

    name: str
    title: str
    description: str
    source: str
    file: str
    input: Shape
    root: Sequence = field(repr=False)
    outputs: list[tuple[str, Location]] = field(default_factory=list)  # top-level ``outputs``
    scope: Scope = field(default_factory=Scope, repr=False)  # the top level's tensor names
    # every name given with ``as``, where first given: for "defined later" messages
    tensor_names: dict[str, Location] = field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------------------------
# Shapes


SHAPE_PATTERN = re.compile(r"^\s*\d+(\s*[x×X*,]\s*\d+)*\s*$")


def parse_shape(value: Any) -> Shape:
    """``3x224x224``, ``3×224×224`` or ``[3, 224, 224]``: C×H×W; also C×L (``2x16000``, 1-D),
    C×D×H×W (``1x16x112x112``, 3-D) and one integer for a vector."""
    if isinstance(value, (list, tuple)):
        dims = list(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        dims = [value]
    elif isinstance(value, str) and SHAPE_PATTERN.match(value):
        parts = re.split(r"[x×X*,]", value.replace(" ", ""))
        longest = max(parts, key=len)
        if len(longest.lstrip("0")) > len(str(MAX_INT)) or int(longest) > MAX_INT:
            raise ValueError(f"an input size is a {len(longest.lstrip('0')):,}-digit number; the "
                             f"limit is {MAX_INT_TEXT}")
        dims = [int(d) for d in parts]
    else:
        raise ValueError(f"an input shape must look like 3x224x224 (C×H×W), got {brief(value)}")
    if any(isinstance(d, int) and abs(d) > MAX_INT for d in dims):
        raise ValueError(f"an input size is over the limit of {MAX_INT_TEXT}")
    if len(dims) not in (1, 2, 3, 4) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                and d > 0 for d in dims):
        raise ValueError("an input shape needs positive integers C×H×W (or C×L, C×D×H×W, or one "
                         f"for a vector), got {brief(value)}")
    return tuple(dims)


# --------------------------------------------------------------------------------------------
# ${…} expressions


_EXPRESSION = re.compile(r"\$\{([^}]*)\}")
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
}


def evaluate(text: str, env: dict[str, Any]) -> Any:
    """Evaluate a small arithmetic or boolean expression over the names in ``env``."""
    if len(text) > MAX_EXPRESSION:
        raise ValueError(f"an expression is limited to {MAX_EXPRESSION} characters")
    try:
        return _eval(_parsed(text.strip()), env, text)
    except SyntaxError:
        raise ValueError(f"cannot read the expression ${{{brief(text)}}}") from None
    except (RecursionError, MemoryError):
        raise ValueError("the expression is nested too deeply") from None


@lru_cache(maxsize=1024)
def _parsed(text: str) -> ast.expr:
    """The expression's syntax tree (read, never changed: a repeat or a block evaluates the same
    expressions once per copy)."""
    return ast.parse(text, mode="eval").body


def _bounded(value: Any, text: str) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_VALUE_BITS:
        raise ValueError(f"${{{text}}} is too large (over 2**{MAX_VALUE_BITS})")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"${{{text}}} builds text longer than {MAX_TEXT:,} characters")
    return value


class NeedsShapes(Exception):
    """An expression reads a tensor's shape (``${input.channels}``): it is evaluated when the
    spec is analysed, not when it is loaded."""


_CHANNELS = "\0channels"  # the env key under which evaluation finds tensors' channel counts
SHAPE_ATTRIBUTES = ("channels",)


def _eval(node: ast.AST, env: dict[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)):
        return node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        if node.attr not in SHAPE_ATTRIBUTES:
            raise ValueError(f"${{{text}}}: a tensor has only .channels, not .{node.attr}")
        if _CHANNELS not in env:
            raise NeedsShapes(text)
        return env[_CHANNELS][node.value.id]
    if isinstance(node, ast.Name):
        if node.id in ("true", "false", "True", "False"):
            return node.id.lower() == "true"
        if node.id not in env:
            known = ", ".join(sorted(k for k in env if k != _CHANNELS)) or "none"
            raise ValueError(f"${{{text}}} uses {node.id!r}, which is not a parameter here "
                             f"(parameters: {known})")
        value = env[node.id]
        if isinstance(value, Deferred):
            if _CHANNELS not in env:
                raise NeedsShapes(text)
            return value.value(env[_CHANNELS])
        return value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, env, text), _eval(node.right, env, text)
        if isinstance(left, bool) or isinstance(right, bool):
            raise ValueError(f"${{{text}}}: true and false take no part in arithmetic "
                             "(+ - * // %); compare them or combine them with and/or/not")
        if type(node.op) in (ast.FloorDiv, ast.Mod) and right == 0:
            raise ValueError(f"${{{text}}} divides by zero")
        if (isinstance(left, str) or isinstance(right, str)) and not (
                isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str)):
            raise ValueError(f"${{{text}}}: text can only be joined to text with +")
        return _bounded(_BINARY[type(node.op)](left, right), text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
        value = _eval(node.operand, env, text)
        if isinstance(value, bool) and not isinstance(node.op, ast.Not):
            raise ValueError(f"${{{text}}}: true and false take no part in arithmetic "
                             "(+ - * // %); compare them or combine them with and/or/not")
        if isinstance(value, str) and not isinstance(node.op, ast.Not):
            raise ValueError(f"${{{text}}}: text can only be joined to text with +")
        return {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}[
            type(node.op)](value)
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _eval(node.left, env, text)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, env, text)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env, text) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    raise ValueError(f"${{{text}}}: only integers, booleans, + - * // %, comparisons and "
                     "and/or/not are allowed")


@dataclass(eq=False)
class Deferred:
    """A whole-value ``${…}`` expression that reads tensor shapes (``${input.channels // 4}``),
    kept with its parameters and scope until the spec is analysed (cnncalc.graph)."""

    text: str
    env: dict[str, Any]
    scope: Scope
    where: Location

    def refs(self) -> list[tuple[Scope, str]]:
        """The (scope, tensor name) pairs it reads, its parameters' included."""
        found: list[tuple[Scope, str]] = []
        for node in ast.walk(_parsed(self.text.strip())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                found.append((self.scope, node.value.id))
            elif isinstance(node, ast.Name) and isinstance(self.env.get(node.id), Deferred):
                found.extend(self.env[node.id].refs())
        return found

    def value(self, channels: dict[tuple[int, str], int]) -> Any:
        """The expression's value, given the channels of each (id(scope), tensor) it reads."""
        mine = {name: count for (scope, name), count in channels.items() if scope == id(self.scope)}
        env = {**self.env, _CHANNELS: mine}
        used = {n.id for n in ast.walk(_parsed(self.text.strip())) if isinstance(n, ast.Name)}
        for name in used:
            if isinstance(self.env.get(name), Deferred):  # only what this expression reads
                env[name] = self.env[name].value(channels)
        try:
            return _eval(_parsed(self.text.strip()), env, self.text)
        except KeyError as exc:  # pragma: no cover - lowering resolved every name
            raise ValueError(f"${{{self.text}}}: unknown tensor {exc}") from None

    def resolve(self, channels: dict[tuple[int, str], int], key: str, spec_field: Any,
                node: Any) -> Any:
        """The parsed field value for one analysis (errors located at the expression)."""
        try:
            value = self.value(channels)
        except ValueError as exc:
            raise SpecError(f"{key}: {exc}", self.where, node.path) from None
        try:
            return spec_field.parse(value)
        except FieldError as exc:
            raise SpecError(f"{key} {exc} (${{{self.text}}})", self.where, node.path) from None


def substitute(value: Any, env: dict[str, Any]) -> Any:
    """Replace ``${…}`` in strings (recursively in lists); a whole-string expression keeps its type."""
    if isinstance(value, str) and "${" in value:
        whole = _EXPRESSION.fullmatch(value.strip())
        if whole:
            return evaluate(whole.group(1), env)
        return _EXPRESSION.sub(lambda m: str(evaluate(m.group(1), env)), value)
    if isinstance(value, list) and not isinstance(value, YamlMap):
        return [substitute(v, env) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Expansion of YAML items into nodes


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


@dataclass
class _Context:
    file: str
    blocks: dict[str, YamlMap]
    env: dict[str, Any] = field(default_factory=dict)
    stack: tuple[str, ...] = ()
    nodes: list[int] = field(default_factory=lambda: [0])  # shared step counter, for MAX_NODES
    scope: Scope = field(default_factory=Scope)
    tensor_names: dict[str, Location] = field(default_factory=dict)  # every ``as``, spec-wide
    rank: int = 2  # spatial axes of the spec's input: per-axis fields are broadcast to it
    # (id(fields), kind) -> (fields, config) of the layers whose fields hold no ${…}: a repeat
    # or a block builds them once (fields is kept, so that its id stays its own)
    leaf_configs: dict[tuple[int, str], tuple[Any, dict[str, Any]]] = \
        field(default_factory=dict)

    def at(self, position: tuple[int, int]) -> Location:
        return Location(self.file, position[0], position[1])

    def inside(self, block: str, env: dict[str, Any]) -> _Context:
        """The context of a block instance: its parameters and a scope of its own."""
        return _Context(self.file, self.blocks, env, (*self.stack, block), self.nodes,
                        Scope(self.scope), self.tensor_names, self.rank, self.leaf_configs)

    def copy_with(self, env: dict[str, Any]) -> _Context:
        return _Context(self.file, self.blocks, env, self.stack, self.nodes, self.scope,
                        self.tensor_names, self.rank, self.leaf_configs)


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


_NO_FIELDS = YamlMap()  # the fields of a bare ``- relu`` (never changed: fields are only read)


def _split_item(item: Any, where: Location, parent: str) -> tuple[str, YamlMap]:
    """``relu`` or ``{kind: {fields}}`` to (kind, fields)."""
    if isinstance(item, str):
        return item, _NO_FIELDS
    if isinstance(item, dict) and len(item) == 1:
        ((key, fields),) = item.items()
        if fields is None:
            return str(key), _NO_FIELDS
        if isinstance(fields, YamlMap):
            return str(key), fields
        raise SpecError(f"the fields of {key!r} must be a mapping (key: value), "
                        f"got {brief(fields)}", where, parent or None)
    if isinstance(item, dict):
        keys = ", ".join(map(str, item))
        raise SpecError(f"a layer must be one kind with its fields, as '- conv: {{out: 64, kernel: 3}}'; "
                        f"this item has several keys ({keys}) — indent the fields under the kind",
                        where, parent or None)
    raise SpecError(f"a layer must be a kind name or a one-key mapping, got {brief(item)}", where,
                    parent or None)


def _check_fields(fields: YamlMap, allowed: tuple[str, ...], what: str, ctx: _Context,
                  path: str) -> None:
    for key in fields:
        if key not in allowed:
            raise SpecError(f"unknown field {key!r} for {what}{_suggest(key, allowed)}",
                            ctx.at(fields.key_position(key)), path)


def _subst(fields: YamlMap, key: str, ctx: _Context, path: str | None,
           deferrable: bool = False) -> Any:
    """The field's value with ``${…}`` evaluated. With ``deferrable``, a whole-value expression
    that reads a tensor's shape becomes a :class:`Deferred` (elsewhere it is an error)."""
    where = ctx.at(fields.position_of(key))
    try:
        return substitute(fields[key], ctx.env)
    except NeedsShapes:
        raw = fields[key]
        whole = _EXPRESSION.fullmatch(raw.strip()) if isinstance(raw, str) else None
        if not deferrable or whole is None:
            raise SpecError(f"{key}: ${{…}} that reads a tensor's shape (.channels) can only be "
                            "a layer field's or a block argument's whole value", where,
                            path) from None
        return Deferred(whole.group(1), dict(ctx.env), ctx.scope, where)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{key}: {exc}", where, path) from None


def _name_of(fields: YamlMap, ctx: _Context, siblings: list[Node], parent: str) -> str:
    if "name" not in fields:
        return str(len(siblings))
    return _check_name(_subst(fields, "name", ctx, parent or None), "name",
                       ctx.at(fields.position_of("name")), parent)


def _check_name(name: Any, what: str, where: Location, parent: str) -> str:
    """A layer, branch or shortcut name: one path component."""
    if isinstance(name, bool) or not isinstance(name, (str, int)) or str(name).strip() == "":
        raise SpecError(f"{what} must be a non-empty string, got {brief(name)}", where,
                        parent or None)
    name = str(name).strip()
    if has_control(name):
        raise SpecError(f"{what} {name!r} may not contain control characters", where,
                        parent or None)
    if "." in name or any(ch.isspace() for ch in name):
        raise SpecError(f"{what} {name!r} may not contain dots or spaces (dots join paths)",
                        where, parent or None)
    return name


def _expand_list(raw: Any, ctx: _Context, parent: str, where: Location, what: str,
                 siblings: list[Node] | None = None) -> list[Node]:
    """Expand a YAML list of layers; unnamed items are numbered after ``siblings``."""
    if not isinstance(raw, YamlList):
        raise SpecError(f"{what} must be a list of layers, got {brief(raw)}", where, parent or None)
    nodes: list[Node] = list(siblings or [])
    for index, item in enumerate(raw):
        _expand_item(item, ctx, parent, nodes, ctx.at(raw.position_of(index)))
    _check_unique(nodes)
    return nodes[len(siblings or []):]


def _check_unique(nodes: list[Node]) -> None:
    seen: dict[str, Node] = {}
    for node in nodes:
        if node.name in seen:
            raise SpecError(f"two layers are named {node.name!r} here", node.where, node.path)
        seen[node.name] = node


def _step(ctx: _Context, where: Location, parent: str) -> None:
    """Count one step of expansion; past MAX_NODES the spec is refused (repeats and blocks
    multiply, so a short spec can describe an enormous network)."""
    ctx.nodes[0] += 1
    if ctx.nodes[0] > MAX_NODES:
        raise SpecError(f"the spec expands to more than {MAX_NODES:,} layers, groups and repeat "
                        "copies: refused as too large", where, parent or None)


def _expand_item(item: Any, ctx: _Context, parent: str, out: list[Node], where: Location) -> None:
    # Steps (MAX_NODES) count what the expansion makes: each layer and group, each item left
    # out by when, and each repeat copy that made nothing else; a repeat item itself is no
    # step, so that a repeat of 100,000 layers is 100,000 steps.
    key, fields = _split_item(item, where, parent)
    if "when" in fields:
        condition = _subst(fields, "when", ctx, parent or None)
        if not isinstance(condition, bool):
            raise SpecError(f"when must be true or false, got {brief(condition)}",
                            ctx.at(fields.position_of("when")), parent or None)
        if not condition:
            _step(ctx, where, parent)
            return
    if key == "repeat":
        _expand_repeat(fields, ctx, parent, out, where)
        return
    _step(ctx, where, parent)
    name = _name_of(fields, ctx, out, parent)
    path = _join(parent, name)
    node = _build_node(key, fields, ctx, name, path, where)
    _graph_fields(node, fields, ctx)
    out.append(node)


def _tensor_ref(value: Any, what: str, where: Location, path: str) -> str:
    if (isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip()
            or has_control(str(value))):
        raise SpecError(f"{what} must name a tensor (a name given with 'as', or input), got "
                        f"{brief(value)}", where, path)
    return str(value).strip()


def _tensor_refs(fields: YamlMap, key: str, ctx: _Context, path: str) -> list[str] | str:
    value = _subst(fields, key, ctx, path)
    where = ctx.at(fields.position_of(key))
    if isinstance(value, list):
        if not value:
            raise SpecError(f"{key} must name at least one tensor", where, path)
        return [_tensor_ref(v, key, where, path) for v in value]
    return _tensor_ref(value, key, where, path)


def _graph_fields(node: Node, fields: YamlMap, ctx: _Context) -> None:
    """``as``, ``from`` and ``with`` of an item: the tensors it names and reads."""
    node.scope = ctx.scope
    merges = isinstance(node, Leaf) and getattr(REGISTRY[node.kind], "arity", 1) != 1
    if "as" in fields:
        where = ctx.at(fields.position_of("as"))
        name = _tensor_ref(_subst(fields, "as", ctx, node.path), "as", where, node.path)
        node.tensor_name = name
        ctx.tensor_names.setdefault(name, where)
    if "from" in fields:
        source = _tensor_refs(fields, "from", ctx, node.path)
        if isinstance(source, list) and not merges:
            if len(source) != 1:
                raise SpecError(f"from: {node.label} reads one tensor; only merge kinds (add, "
                                "mul, concat) take a list", ctx.at(fields.position_of("from")),
                                node.path)
            source = source[0]
        node.source = source
    if "with" in fields:
        where = ctx.at(fields.position_of("with"))
        if not merges:
            raise SpecError(f"with: only merge kinds (add, mul, concat) take it, not "
                            f"{node.label}", where, node.path)
        if "from" in fields and isinstance(node.source, list):
            raise SpecError("give either from (every operand) or with (the current tensor and "
                            "these), not both", where, node.path)
        extra = _tensor_refs(fields, "with", ctx, node.path)
        node.extra = tuple(extra) if isinstance(extra, list) else (extra,)


def _expand_repeat(fields: YamlMap, ctx: _Context, parent: str, out: list[Node],
                   where: Location) -> None:
    _check_fields(fields, ("times", "layers", "when"), "repeat", ctx, parent)
    if "times" not in fields or "layers" not in fields:
        raise SpecError("repeat needs times and layers", where, parent or None)
    times = _subst(fields, "times", ctx, parent or None)
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise SpecError(f"times must be a non-negative integer, got {brief(times)}",
                        ctx.at(fields.position_of("times")), parent or None)
    if times > MAX_REPEAT:
        raise SpecError(f"times={times} is over the limit of {MAX_REPEAT:,} copies",
                        ctx.at(fields.position_of("times")), parent or None)
    body = fields["layers"]
    if not isinstance(body, YamlList):
        raise SpecError("repeat's layers must be a list", ctx.at(fields.position_of("layers")),
                        parent or None)
    for i in range(times):
        before = ctx.nodes[0]
        copy = ctx.copy_with({**ctx.env, "i": i})
        for index, item in enumerate(body):
            _expand_item(item, copy, parent, out, ctx.at(body.position_of(index)))
        if ctx.nodes[0] == before:  # a copy that made nothing still costs a step
            _step(ctx, where, parent)


def _build_node(key: str, fields: YamlMap, ctx: _Context, name: str, path: str,
                where: Location) -> Node:
    if key == "sequence" or key == "head":
        _check_fields(fields, ("layers", *COMMON_FIELDS), key, ctx, path)
        items = _expand_list(fields.get("layers"), ctx, path, where, f"{key}'s layers")
        return Sequence(name=name, path=path, label=key, where=where, items=items,
                        side=key == "head")
    if key == "concat" and ("branches" in fields or "concat" not in REGISTRY):
        return _build_concat(fields, ctx, name, path, where)
    if key == "residual":
        return _build_residual(fields, ctx, name, path, where)
    if key in ctx.blocks:
        return _build_block(key, fields, ctx, name, path, where)
    if key in REGISTRY:
        return _build_leaf(key, fields, ctx, name, path, where)
    raise SpecError(f"unknown layer kind {key!r}{_kind_hint(key, ctx.blocks)}", where, path)


_RANK_SUFFIX = re.compile(r"([123])d$")


_TORCH_CONTAINERS = {"sequential": "sequence", "modulelist": "sequence", "cat": "concat"}


def _squashed(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def _kind_hint(key: str, blocks: dict[str, Any]) -> str:
    """What an unknown kind may have meant: the kind a torch class name stands for (``Conv3d``
    → conv, which takes every rank; ``ReLU`` → relu), close spellings of real kinds, keywords
    and the spec's blocks; with nothing close, every kind there is."""
    word = _squashed(str(key))
    rank = _RANK_SUFFIX.search(word)
    stem = word[:rank.start()] if rank else word
    by_squashed = {_squashed(k): k for k in (*REGISTRY, *KEYWORDS, *blocks)}
    # torch's containers, by the keyword that plays their part
    by_squashed.update({k: v for k, v in _TORCH_CONTAINERS.items() if k not in by_squashed})
    for candidate in (word, stem, stem.replace("transpose", "_transpose")):
        found = by_squashed.get(_squashed(candidate))
        if found is not None and found != key:
            if rank:
                accepts = getattr(REGISTRY.get(found), "accepts", ())
                shapes = ["vectors" if r == 1 else RANK_SHAPES[r] for r in accepts
                          if r in RANK_SHAPES]
                ranks = " and ".join([", ".join(shapes[:-1]), shapes[-1]] if len(shapes) > 1
                                     else shapes)
                return f" (did you mean {found!r}? one kind for every rank: it takes {ranks})"
            return f" (did you mean {found!r}?)"
    close = difflib.get_close_matches(str(key), [*REGISTRY, *KEYWORDS, *blocks], n=3, cutoff=0.7)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return (f" (kinds: {', '.join(REGISTRY)}; keywords: {', '.join(KEYWORDS)}"
            + (f"; this spec's blocks: {', '.join(blocks)}" if blocks else "") + ")")


def _build_concat(fields: YamlMap, ctx: _Context, name: str, path: str, where: Location) -> Node:
    _check_fields(fields, ("branches", *COMMON_FIELDS), "concat", ctx, path)
    raw = fields.get("branches")
    if not isinstance(raw, YamlMap) or not raw:
        raise SpecError("concat needs branches: a mapping from branch name to a list of layers",
                        where, path)
    branches = []
    for branch_name, layers in raw.items():
        at = ctx.at(raw.position_of(branch_name))
        branch_name = _check_name(branch_name, "branch name", ctx.at(raw.key_position(branch_name)),
                                  path)
        branch_path = _join(path, branch_name)
        items = _expand_list(layers, ctx, branch_path, at, f"branch {branch_name!r}")
        branches.append(Sequence(name=branch_name, path=branch_path, label="branch",
                                 where=at, items=items))
    return Concat(name=name, path=path, label="concat", where=where, branches=branches)


def _build_residual(fields: YamlMap, ctx: _Context, name: str, path: str,
                    where: Location) -> Node:
    allowed = ("layers", "shortcut", "shortcut_name", "post", *COMMON_FIELDS)
    _check_fields(fields, allowed, "residual", ctx, path)
    body = _expand_list(fields.get("layers"), ctx, path, where, "residual's layers")
    shortcut = None
    if "shortcut" in fields:
        short_name = "shortcut"
        if "shortcut_name" in fields:
            short_name = _check_name(_subst(fields, "shortcut_name", ctx, path), "shortcut_name",
                                     ctx.at(fields.position_of("shortcut_name")), path)
        at = ctx.at(fields.position_of("shortcut"))
        items = _expand_list(fields["shortcut"], ctx, _join(path, short_name), at, "shortcut")
        if items:
            shortcut = Sequence(name=short_name, path=_join(path, short_name), label="shortcut",
                                where=at, items=items)
    post = []
    if "post" in fields:
        post = _expand_list(fields["post"], ctx, path, ctx.at(fields.position_of("post")), "post",
                            siblings=body)
    if shortcut is not None:
        for node in body + post:
            if node.name == shortcut.name:
                raise SpecError(f"{node.name!r} names both a layer and the shortcut", node.where,
                                node.path)
    return Residual(name=name, path=path, label="residual", where=where, body=body,
                    shortcut=shortcut, post=post)


def _build_block(key: str, fields: YamlMap, ctx: _Context, name: str, path: str,
                 where: Location) -> Node:
    if key in ctx.stack:
        chain = " → ".join((*ctx.stack[ctx.stack.index(key):], key))
        raise SpecError(f"block {key!r} includes itself ({chain})", where, path)
    definition = ctx.blocks[key]
    declared = definition.get("params") or YamlMap()
    env: dict[str, Any] = {}
    for param, default in declared.items():
        if default is not None:
            env[param] = default
    for arg in fields:
        if arg in COMMON_FIELDS:
            continue
        if arg not in declared:
            raise SpecError(f"block {key!r} has no parameter {arg!r}"
                            f"{_suggest(arg, (*declared, *COMMON_FIELDS))}"
                            f" (parameters: {', '.join(declared) or 'none'})",
                            ctx.at(fields.key_position(arg)), path)
        env[arg] = _subst(fields, arg, ctx, path, deferrable=True)
    missing = [p for p in declared if p not in env]
    if missing:
        raise SpecError(f"block {key!r} needs a value for {', '.join(missing)}", where, path)
    inner = ctx.inside(key, env)
    at = ctx.at(definition.position)
    if "body" in definition:
        kind, body_fields = _split_item(definition["body"], at, path)
        node = _build_node(kind, body_fields, inner, name, path, where)
        _graph_fields(node, body_fields, inner)
        if node.tensor_name or node.source or node.extra:
            raise SpecError(f"block {key!r}: a body item cannot use as, from or with; give them "
                            "where the block is used", at, path)
        node.label = key
    else:
        items = _expand_list(definition.get("layers"), inner, path, at,
                             f"block {key!r}'s layers")
        node = Sequence(name=name, path=path, label=key, where=where, items=items)
    node.opens = inner.scope
    return node


@lru_cache(maxsize=None)
@lru_cache(maxsize=None)
def per_axis_fields(kind: str) -> tuple[str, ...]:
    """The kind's per-axis fields (kernel, stride, …): broadcast at load to the spec's rank."""
    return tuple(key for key, f in REGISTRY[kind].fields.items() if is_per_axis(f.parse))


def _build_leaf(kind: str, fields: YamlMap, ctx: _Context, name: str, path: str,
                where: Location) -> Leaf:
    known = ctx.leaf_configs.get((id(fields), kind))
    if known is not None:  # configs are never changed in place: one dict serves every copy
        return Leaf(name=name, path=path, label=kind, where=where, kind=kind, config=known[1],
                    tensor_fields=_tensor_fields(kind))
    rule = REGISTRY[kind]
    config: dict[str, Any] = {}
    for key in fields:
        if key in COMMON_FIELDS:
            continue
        if key not in rule.fields:
            allowed = ", ".join(rule.fields) or "none"
            raise SpecError(f"unknown field {key!r} for {kind}"
                            f"{_suggest(key, (*rule.fields, *COMMON_FIELDS))} "
                            f"(fields: {allowed})", ctx.at(fields.key_position(key)), path)
        value = _subst(fields, key, ctx, path, deferrable=True)
        if isinstance(value, Deferred):
            config[key] = value  # parsed when the spec is analysed (cnncalc.graph)
            continue
        try:
            config[key] = rule.fields[key].parse(value)
        except FieldError as exc:
            raise SpecError(f"{key} {exc}", ctx.at(fields.position_of(key)), path) from None
    for key, spec_field in rule.fields.items():
        if key not in config:
            if spec_field.required:
                raise SpecError(f"{kind} needs {key} ({spec_field.doc})", where, path)
            config[key] = spec_field.default
    for key in per_axis_fields(kind):
        if isinstance(config[key], Deferred):
            continue  # broadcast when the spec is analysed (cnncalc.graph.resolve_config)
        try:
            config[key] = broadcast(config[key], ctx.rank, key)
        except FieldError as exc:
            at = ctx.at(fields.position_of(key)) if key in fields else where
            raise SpecError(str(exc), at, path) from None
    deferred = any(isinstance(v, Deferred) for v in config.values())
    if not deferred:
        try:
            config = rule.finish(config)
        except FieldError as exc:
            raise SpecError(str(exc), where, path) from None
        if not any(_has_expression(fields[key]) for key in fields if key not in COMMON_FIELDS):
            ctx.leaf_configs[(id(fields), kind)] = (fields, config)
    return Leaf(name=name, path=path, label=kind, where=where, kind=kind, config=config,
                tensor_fields=_tensor_fields(kind), deferred=deferred)


def _has_expression(value: Any) -> bool:
    """Whether a raw field value holds a ``${…}`` anywhere (its value may differ per copy)."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, (list, tuple)):
        return any(_has_expression(v) for v in value)
    if isinstance(value, dict):
        return any(_has_expression(v) for v in value.values())
    return False


@lru_cache(maxsize=None)
def _tensor_fields(kind: str) -> frozenset[str]:
    """The kind's fields whose value names a tensor."""
    return frozenset(k for k, f in REGISTRY[kind].fields.items()
                     if getattr(f.parse, "names_a_tensor", False))


# --------------------------------------------------------------------------------------------
# Whole specs


def _check_blocks(raw: Any, file: str) -> dict[str, YamlMap]:
    if raw is None:
        return {}
    if not isinstance(raw, YamlMap):
        raise SpecError("blocks must be a mapping from block name to its definition",
                        Location(file, *getattr(raw, "position", (None, None))))
    for block_name, definition in raw.items():
        where = Location(file, *raw.key_position(block_name))
        if has_control(str(block_name)):
            raise SpecError(f"block name {block_name!r} may not contain control characters",
                            where)
        if block_name in REGISTRY or block_name in KEYWORDS:
            raise SpecError(f"block name {block_name!r} is taken by a layer kind or keyword", where)
        if not isinstance(definition, YamlMap):
            raise SpecError(f"block {block_name!r} must be a mapping with params and layers", where)
        for key in definition:
            if key not in ("params", "layers", "body", "description"):
                raise SpecError(
                    f"unknown field {key!r} in block {block_name!r}"
                    f"{_suggest(key, ('params', 'layers', 'body', 'description'))}",
                    Location(file, *definition.key_position(key)))
        if ("layers" in definition) == ("body" in definition):
            raise SpecError(f"block {block_name!r} needs either layers (a list) or body (one item)",
                            where)
        params = definition.get("params")
        if params is not None and not isinstance(params, YamlMap):
            raise SpecError(f"the params of block {block_name!r} must be a mapping from name to "
                            "default (~ for a required parameter)",
                            Location(file, *definition.position_of("params")))
    return dict(raw)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Expansion makes many small objects and no cycles: the cycle collector only costs time
    (half of it, for a 10,000-layer spec)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_spec(text: str, file: str, default_name: str) -> Spec:
    """Parse and expand spec text; ``file`` is used in error messages."""
    with _gc_paused():
        return _parse_spec(text, file, default_name)


def _parse_spec(text: str, file: str, default_name: str) -> Spec:
    try:
        data = load_yaml(text)
    except YamlError as exc:
        raise SpecError(exc.problem, Location(file, exc.line, exc.column)) from None
    except RecursionError:
        raise SpecError("the YAML is nested too deeply", Location(file)) from None
    if not isinstance(data, YamlMap):
        raise SpecError("a spec must be a mapping with at least input and layers", Location(file, 1))
    top = Location(file, *data.position)
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise SpecError(f"unknown top-level key {key!r}{_suggest(key, TOP_LEVEL_KEYS)}",
                            Location(file, *data.key_position(key)))
    for required in ("input", "layers"):
        if required not in data:
            raise SpecError(f"a spec needs {required}", top)
    try:
        shape = parse_shape(data["input"])
    except ValueError as exc:
        raise SpecError(str(exc), Location(file, *data.position_of("input"))) from None
    for key in ("name", "title", "description", "source"):
        if key in data and not isinstance(data[key], (str, int, float)):
            raise SpecError(f"{key} must be text", Location(file, *data.position_of(key)))
    ctx = _Context(file, _check_blocks(data.get("blocks"), file),
                   rank=len(shape) - 1 if len(shape) > 1 else 2)
    outputs = _outputs(data, file)
    try:
        items = _expand_list(data["layers"], ctx, "", Location(file, *data.position_of("layers")),
                             "layers")
    except RecursionError:
        raise SpecError("the spec is nested too deeply", top) from None
    # free text is kept, its control characters shown escaped: tables print it to terminals
    name = printable(str(data.get("name", default_name)))
    root = Sequence(name="", path="", label=name, where=top, items=items)
    return Spec(name=name, title=printable(str(data.get("title", name))),
                description=printable(str(data.get("description", "")).strip()),
                source=printable(str(data.get("source", "")).strip()), file=file, input=shape,
                root=root,
                outputs=outputs, scope=ctx.scope, tensor_names=ctx.tensor_names)


def _outputs(data: YamlMap, file: str) -> list[tuple[str, Location]]:
    """The top-level ``outputs``: tensor names, each with where it is written."""
    if "outputs" not in data:
        return []
    raw = data["outputs"]
    where = Location(file, *data.position_of("outputs"))
    if isinstance(raw, str):
        return [(_tensor_ref(raw, "outputs", where, ""), where)]
    if not isinstance(raw, YamlList) or not raw:
        raise SpecError(f"outputs must be a tensor name or a list of them, got {brief(raw)}",
                        where)
    found = []
    for index, value in enumerate(raw):
        at = Location(file, *raw.position_of(index))
        found.append((_tensor_ref(value, "outputs", at, ""), at))
    return found


def read_spec_file(path: Path) -> Spec:
    """Read and parse a spec file; unreadable files raise :class:`SpecError`. Only a regular
    file is read: a FIFO or a device is refused without blocking (opened with ``O_NONBLOCK``,
    then checked with ``fstat`` before a byte is read)."""
    import os
    import stat

    shown = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) |
                     getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise SpecError("no such file", Location(shown)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", Location(shown)) from None
    except PermissionError:
        raise SpecError("permission denied", Location(shown)) from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read: {getattr(exc, 'strerror', None) or exc}",
                        Location(shown)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise SpecError("is a directory, not a spec file", Location(shown))
        if not stat.S_ISREG(mode):
            raise SpecError("is not a regular file (a FIFO, device or socket); a spec must be "
                            "a file", Location(shown))
        chunks: list[bytes] = []
        size = 0
        limit = MAX_YAML_CHARS * 4
        while size <= limit:  # bounded: the file may be huge
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        raw = b"".join(chunks)
    except PermissionError:
        raise SpecError("permission denied", Location(shown)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", Location(shown)) from None
    finally:
        os.close(fd)
    return parse_spec_bytes(raw, shown, path.stem)


def parse_spec_bytes(raw: bytes, shown: str, default_name: str) -> Spec:
    """:func:`parse_spec` of bytes read from a file or stdin (at most ``MAX_YAML_CHARS * 4 + 1``
    of them): refused past the size limit, or where they are not UTF-8 (located)."""
    limit = MAX_YAML_CHARS * 4
    if len(raw) > limit:
        what = "the file" if shown != "<stdin>" else "stdin"
        raise SpecError(f"{what} is over {limit:,} bytes; specs are limited "
                        f"to {MAX_YAML_CHARS:,} characters", Location(shown))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[:exc.start].decode("utf-8")
        raise SpecError(f"not UTF-8 text (byte {exc.start}: {raw[exc.start]:#04x})",
                        Location(shown, *line_column(before, len(before)))) from None
    return parse_spec(text, shown, default_name)
