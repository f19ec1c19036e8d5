"""Safe, bounded YAML loading that remembers where every mapping, list and value was written.

PyYAML (libyaml's parser where present) turns the text into a node graph; this module builds the
Python values from that graph itself instead of using PyYAML's constructor, so that it can:

* refuse every tag but YAML's plain ones (no ``!!python/...``: nothing is ever executed);
* refuse a key written twice in one mapping (PyYAML would silently keep the last);
* bound the work: the text's size, its nesting depth, and the number of values it expands to
  when each use of an alias (``*name``) counts as a full copy — so an alias bomb ("billion
  laughs") is refused after work proportional to the file's size, not to its expansion;
* refuse an alias used inside its own anchor (a structure that contains itself).

Limits (also in docs/errors.md): :data:`MAX_YAML_CHARS`, :data:`MAX_YAML_DEPTH`,
:data:`MAX_YAML_VALUES`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import brief
from .fields import MAX_INT, MAX_INT_TEXT

_MAX_INT_DIGITS = len(str(MAX_INT))

try:  # libyaml's parser when present
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

Position = tuple[int, int]  # 1-based line and column

MAX_YAML_CHARS = 2 * 1024 * 1024  # characters of spec text
MAX_YAML_DEPTH = 100  # nested mappings and lists
MAX_YAML_VALUES = 1_000_000  # values after alias expansion (each *alias use counts in full)

_TAG = "tag:yaml.org,2002:"
_STR = f"{_TAG}str"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("null", "bool", "int", "float", "str", "timestamp")}


class YamlError(ValueError):
    """YAML that cannot be read as a spec, with a 1-based line and column where known."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None):
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column


class YamlMap(dict):
    """A YAML mapping with the position of the mapping and of each key's value."""

    position: Position = (0, 0)
    value_positions: dict[Any, Position]
    key_positions: dict[Any, Position]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.value_positions = {}
        self.key_positions = {}

    def position_of(self, key: Any) -> Position:
        """Where the value of ``key`` was written (for a wrong value)."""
        return self.value_positions.get(key, self.position)

    def key_position(self, key: Any) -> Position:
        """Where ``key`` itself was written (for an unknown or misplaced key)."""
        return self.key_positions.get(key, self.position)


class YamlList(list):
    """A YAML sequence with its position and the position of each item."""

    position: Position = (0, 0)
    item_positions: list[Position]

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.item_positions = []

    def position_of(self, index: int) -> Position:
        if 0 <= index < len(self.item_positions):
            return self.item_positions[index]
        return self.position


def _position(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


class _Builder:
    """Node graph to YamlMap / YamlList / scalars; an aliased node is built once and shared."""

    def __init__(self, loader: Any, aliases: bool = True):
        self.loader = loader
        # without an alias (no '*' in the text) no node is reached twice: scalars are built
        # directly, without the memo (a million-value list: half the building time)
        self.aliases = aliases
        self.built: dict[int, Any] = {}  # id(node) → value
        self.sizes: dict[int, int] = {}  # id(node) → values in its full expansion
        self.open: set[int] = set()  # nodes being built (an alias to one of them is a cycle)
        self.shared = False  # whether an alias reused a value (else a big size is plain size)

    def fail(self, problem: str, node: yaml.Node) -> YamlError:
        return YamlError(problem, *_position(node))

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        key = id(node)
        if key in self.built:
            self.shared = True
            return self.built[key]
        if key in self.open:
            raise self.fail("an alias is used inside its own anchor: the value would contain "
                            "itself", node)
        if depth > MAX_YAML_DEPTH:
            raise self.fail(f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep", node)
        self.open.add(key)
        if isinstance(node, yaml.ScalarNode):
            value, size = self.scalar(node), 1
        elif isinstance(node, yaml.SequenceNode):
            value, size = self.sequence(node, depth)
        elif isinstance(node, yaml.MappingNode):
            value, size = self.mapping(node, depth)
        else:  # pragma: no cover - the composer makes only these
            raise self.fail(f"unexpected YAML node {type(node).__name__}", node)
        if size > MAX_YAML_VALUES:
            if not self.shared:
                raise self.fail(_too_many(), node)
            raise self.fail(f"the YAML expands to more than {MAX_YAML_VALUES:,} values (each use "
                            "of an alias counts in full): refused as an alias bomb", node)
        self.open.discard(key)
        self.built[key], self.sizes[key] = value, size
        return value

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == f"{_TAG}str":
            return node.value
        self.check_tag(node, _SCALAR_TAGS)
        if node.tag == f"{_TAG}int":
            return self.integer(node)
        try:
            return self.loader.yaml_constructors[node.tag](self.loader, node)
        except ValueError as exc:  # !!int "x", a date 2001-13-45, a 5,000-digit integer
            raise self.fail(f"cannot read {brief(node.value)} as {_tag_name(node.tag)}: {exc}",
                            node) from None

    def integer(self, node: yaml.ScalarNode) -> int:
        """A YAML integer, bounded by MAX_INT before it is converted (a 5,000-digit number is
        refused by its length, not by Python's conversion limit). The YAML 1.1 forms that
        YAML 1.2 reads differently are refused with what to write instead: ``010`` (octal 8 in
        1.1, 10 in 1.2) and ``1:30`` (base 60: 90)."""
        text = node.value
        if text.isascii() and text.isdigit() and (text[0] != "0" or len(text) == 1) \
                and len(text) <= _MAX_INT_DIGITS:
            value = int(text)  # plain decimal (most integers): no loader, no message text
            if value <= MAX_INT:
                return value
        text = text.replace("_", "")
        digits = text.lstrip("+-")
        shown = brief(node.value)
        if ":" in digits:
            try:
                value = f" ({self.loader.yaml_constructors[node.tag](self.loader, node):,})"
            except ValueError:
                value = ""
            raise self.fail(f"{shown} is a YAML 1.1 base-60 number{value}; quote it if it is "
                            "text, or write the number in decimal", node)
        if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xXbBoO":
            raise self.fail(f"{shown} has a leading zero, which YAML 1.1 reads as octal "
                            f"({int(digits, 8) if set(digits) <= set('01234567') else '?'}) and "
                            f"YAML 1.2 as {int(digits)}: write it without the leading zero", node)
        if digits.isdigit() and len(digits) > len(str(MAX_INT)):
            raise self.fail(f"a {len(digits):,}-digit integer is over the limit of "
                            f"{MAX_INT_TEXT}", node)
        try:
            value = self.loader.yaml_constructors[node.tag](self.loader, node)
        except ValueError:
            raise self.fail(f"cannot read {shown} as an integer", node) from None
        if abs(value) > MAX_INT:
            raise self.fail(f"{shown} is over the limit of {MAX_INT_TEXT}", node)
        return value

    def check_tag(self, node: yaml.Node, allowed: set[str]) -> None:
        if node.tag not in allowed:
            raise self.fail(f"the YAML tag {_tag_name(node.tag)} is not allowed: a spec holds only "
                            "mappings, lists, text, numbers and booleans", node)

    def item(self, node: yaml.Node, depth: int) -> tuple[Any, int]:
        """A value and the values in its expansion."""
        if not self.aliases and isinstance(node, yaml.ScalarNode) and depth <= MAX_YAML_DEPTH:
            return (node.value if node.tag == _STR else self.scalar(node)), 1
        value = self.build(node, depth)
        return value, self.sizes[id(node)]

    def sequence(self, node: yaml.SequenceNode, depth: int) -> tuple[YamlList, int]:
        self.check_tag(node, {f"{_TAG}seq"})
        data = YamlList()
        size = 1
        for item in node.value:
            value, count = self.item(item, depth + 1)
            data.append(value)
            size += count
        data.position = _position(node)
        data.item_positions = [_position(item) for item in node.value]
        return data, size

    def mapping(self, node: yaml.MappingNode, depth: int) -> tuple[YamlMap, int]:
        self.check_tag(node, {f"{_TAG}map"})
        data = YamlMap()
        data.position = _position(node)
        size = 1
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merges.append(value_node)
                continue
            key, key_size = self.item(key_node, depth + 1)
            if isinstance(key, (list, dict)):
                raise self.fail("a mapping key must be a plain value, not a list or mapping",
                                key_node)
            if key in data.key_positions:
                line = data.key_positions[key][0]
                raise self.fail(f"the key {key!r} is written twice in one mapping (also on line "
                                f"{line}); YAML would silently keep only the last", key_node)
            data[key], value_size = self.item(value_node, depth + 1)
            data.key_positions[key] = _position(key_node)
            data.value_positions[key] = _position(value_node)
            size += key_size + value_size
        # `<<: *base` or `<<: [*a, *b]`: the keys written here win, then the earlier merges
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                value = self.build(source, depth + 1)
                if not isinstance(value, YamlMap):
                    raise self.fail("a merge key (<<) needs a mapping or a list of mappings",
                                    source)
                size += self.sizes[id(source)]
                for key, item in value.items():
                    if key not in data:
                        data[key] = item
                        data.key_positions[key] = value.key_position(key)
                        data.value_positions[key] = value.position_of(key)
        return data, size


def _too_many() -> str:
    return (f"the YAML holds more than {MAX_YAML_VALUES:,} values (mappings, lists and scalars): "
            "refused as too large for a spec")


def _check_count(text: str) -> None:
    """Refuse a text that itself writes more than MAX_YAML_VALUES values (a 2 MB flat list of
    scalars) from the parser's events, streamed, before any node is composed: composing a
    million nodes costs seconds and half a gigabyte. A cheap count of the separators decides
    whether the events need counting at all (the builder counts exactly in any case)."""
    rough = (text.count(",") + text.count("\n") + text.count(": ") + text.count("- ")
             + text.count("[") + text.count("{"))
    if rough <= MAX_YAML_VALUES // 4:
        return
    count = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent,
                              yaml.SequenceStartEvent)):
            count += 1
            if count > MAX_YAML_VALUES:
                mark = event.start_mark
                raise YamlError(_too_many(), mark.line + 1, mark.column + 1)


def line_column(text: str, index: int) -> tuple[int, int]:
    """The 1-based line and column of ``text[index]``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


_BRACKETS = re.compile(r"[\[\]{}]")
_OPENERS = re.compile(r"[-?:](?=\s|$)")


def _check_depth(text: str) -> None:
    """Refuse flow nesting deeper than MAX_YAML_DEPTH before composing: libyaml's composer
    recurses in C and crashes the process on ``[[[[…`` a hundred thousand deep."""
    # First an upper bound, cheap: flow nesting (brackets) plus, on the worst line, indentation
    # and the markers that open a nested collection on the same line (`- - -`, `? `, `a: `).
    # Quotes and comments only make it larger.
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(text):
        depth = depth + 1 if bracket.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    block = max((len(line) - len(line.lstrip()) + len(_OPENERS.findall(line))
                 for line in text.splitlines()), default=0)
    if deepest + block <= MAX_YAML_DEPTH:
        return
    depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):  # the exact count, without composing
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                mark = event.start_mark
                raise YamlError(f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep",
                                mark.line + 1, mark.column + 1)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_yaml(text: str) -> Any:
    """Parse YAML text safely; mappings and lists carry their positions.

    Raises :class:`YamlError` (with the line and column where known) for malformed text, for tags
    that are not YAML's plain ones, for duplicate keys, and past the limits above.
    """
    if len(text) > MAX_YAML_CHARS:
        raise YamlError(f"the spec is {len(text):,} characters long; the limit is "
                        f"{MAX_YAML_CHARS:,}")
    loader = _SafeLoader(text)
    try:
        _check_depth(text)
        _check_count(text)
        node = loader.get_single_node()
        return None if node is None else _Builder(loader, aliases="*" in text).build(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "malformed YAML").removeprefix("but ")
        if exc.problem and exc.context and exc.context not in problem:
            problem = f"{problem} ({exc.context}"
            problem += f" on line {exc.context_mark.line + 1})" if exc.context_mark else ")"
        at = text[mark.index:mark.index + 100] if mark and 0 <= mark.index < len(text) else ""
        if at.startswith("\t"):
            problem = "a tab; YAML is indented with spaces only"
        elif "undefined alias" in problem and at.startswith("*"):
            problem = f"{at.split()[0].rstrip(',]}')} is an alias with no anchor (&name) before it"
        where = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise YamlError(f"YAML syntax error: {problem}", *where) from None
    except yaml.reader.ReaderError as exc:
        raise YamlError(f"YAML syntax error: {exc.reason}",
                        *line_column(text, max(exc.position, 0))) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
