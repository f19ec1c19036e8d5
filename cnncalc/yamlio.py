"""Safe YAML loading that remembers where every mapping, list and value was written."""

from __future__ import annotations

from typing import Any

import yaml

try:  # libyaml's parser when present; the constructor is always the safe one.
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

Position = tuple[int, int]  # 1-based line and column


class YamlMap(dict):
    """A YAML mapping with the position of the mapping and of each key's value."""

    position: Position = (0, 0)
    value_positions: dict[str, Position]
    key_positions: dict[str, Position]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.value_positions = {}
        self.key_positions = {}

    def position_of(self, key: str) -> Position:
        """Where the value of ``key`` was written (for a wrong value)."""
        return self.value_positions.get(key, self.position)

    def key_position(self, key: str) -> Position:
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


class _Loader(_SafeLoader):  # type: ignore[misc, valid-type]
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode):
    data = YamlMap()
    data.position = _position(node)
    yield data
    data.update(loader.construct_mapping(node))  # flattens merge keys (<<) into node.value
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            data.value_positions.setdefault(str(key_node.value), _position(value_node))
            data.key_positions.setdefault(str(key_node.value), _position(key_node))


def _construct_seq(loader: _Loader, node: yaml.SequenceNode):
    data = YamlList()
    data.position = _position(node)
    yield data
    data.extend(loader.construct_sequence(node))
    data.item_positions = [_position(item) for item in node.value]


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml(text: str) -> Any:
    """Parse YAML text with a safe loader; mappings and lists carry their positions.

    Raises ``yaml.YAMLError`` (with ``problem_mark`` where known) for malformed text and for tags
    that would construct Python objects.
    """
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from the safe loader
