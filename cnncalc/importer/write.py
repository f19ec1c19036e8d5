"""Write an :class:`~cnncalc.importer.ImportedModel` as spec YAML for people.

Layers are nested in sequences along their dotted module paths (``layer1.0.conv1`` is the
layer ``conv1`` in the sequence ``0`` in the sequence ``layer1``), so a spec's paths are the
model's module paths. A layer reads the previous layer's output unless it says ``from``; a
tensor gets a name (``as``) only where something other than the next layer reads it.

Repetition is folded (``to_yaml(model, fold=True)``, the default): modules of one structure
(the same kinds in the same order, wired the same way inside, the same child names) become
one block, with a parameter for each setting that differs between them (``width``,
``stride``; a setting that is a fixed multiple of another is written as one, ``${width * 4}``),
used once per module, and runs of identical uses become ``repeat`` where the copies' default
names are the module names. A module's own tensors are scoped to its instance; a tensor it
reads from elsewhere (U-Net's skip) is a parameter naming that tensor. A module is not folded
where something outside it reads one of its inner tensors. The folded spec is analysed and
compared, row for row (paths, shapes, parameters, buffers, multiply-adds), with the flat one
before it is returned; where they would differ the flat one is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import GRAPH_INPUT, ImportedLayer, ImportedModel, unique_name

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value: Any) -> str:
    """``value`` as a YAML flow scalar (or flow list) that reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)  # 1e-06 is text to YAML 1.1 readers: write 1.0e-06
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def compact(value: Any) -> Any:
    """A per-axis list whose entries are all equal, written once (broadcast again at load)."""
    if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value) \
            and not isinstance(value[0], (list, tuple)):
        return value[0]
    return value


@dataclass
class _Group:
    name: str
    items: list[Any] = field(default_factory=list)  # ImportedLayer or _Group


def _nest(layers: list[ImportedLayer]) -> _Group:
    """Layers in sequences along their paths; a module whose layers are not contiguous is
    split, its later part named ``NAME_2`` (names are unique in their list)."""
    root = _Group("")
    stack: list[tuple[str, _Group]] = [("", root)]
    for layer in layers:
        parts = layer.path.split(".")
        prefix = parts[:-1]
        depth = 0  # how much of the open stack this layer shares
        while depth + 1 < len(stack) and depth < len(prefix) and \
                stack[depth + 1][0] == prefix[depth]:
            depth += 1
        del stack[depth + 1:]
        for part in prefix[depth:]:
            parent = stack[-1][1]
            group = _Group(_unique(part, parent))
            parent.items.append(group)
            stack.append((part, group))
        layer_name = _unique(parts[-1], stack[-1][1])
        stack[-1][1].items.append((layer_name, layer))
    return root


def _unique(name: str, group: _Group) -> str:
    return unique_name(name, {item.name if isinstance(item, _Group) else item[0]
                              for item in group.items})


def _tensor_names(model: ImportedModel) -> dict[str, str]:
    """A readable, unique spec name for every tensor that must be named."""
    readers: dict[str, int] = {}
    for layer in model.layers:
        for tensor in layer.inputs:
            readers[tensor] = readers.get(tensor, 0) + 1
    needed: set[str] = set()
    if model.outputs and model.layers and (len(model.outputs) > 1 or
                                           model.outputs[-1] != model.layers[-1].output):
        needed.update(model.outputs)  # an `outputs:` list names every one
    previous = GRAPH_INPUT
    for layer in model.layers:
        if layer.inputs and layer.inputs[0] != previous:
            needed.add(layer.inputs[0])
        needed.update(layer.inputs[1:])
        previous = layer.output
    namer = Namer([layer.path for layer in model.layers])
    names: dict[str, str] = {GRAPH_INPUT: GRAPH_INPUT}
    for layer in model.layers:
        if layer.output in needed:
            names[layer.output] = namer.name(layer.path)
    return names


class Namer:
    """Readable, unique tensor names from dotted paths: the shortest tail of the path that no
    other path ends with (``layer1.0.conv1`` → ``layer1_0_conv1`` where every block has a
    ``conv1``; ``features.pool0`` → ``pool0``)."""

    def __init__(self, paths: list[str]):
        self.tails: dict[tuple[str, ...], int] = {}
        seen: set[str] = set()
        for path in paths:
            parts = path.split(".")
            for k in range(1, len(parts) + 1):  # the path and every group above it
                prefix = ".".join(parts[:k])
                if prefix in seen:
                    continue
                seen.add(prefix)
                pieces = parts[:k]
                for n in range(1, k + 1):
                    tail = tuple(pieces[-n:])
                    self.tails[tail] = self.tails.get(tail, 0) + 1
        self.taken = {GRAPH_INPUT}

    def name(self, path: str) -> str:
        parts = path.split(".")
        n = 1
        while n < len(parts) and self.tails.get(tuple(parts[-n:]), 0) > 1:
            n += 1
        base = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts[-n:])) or "t"
        name, k = base, 2
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name


def field_order(kind: str) -> dict[str, int]:
    """The kind's fields in the order docs/spec-format.md lists them (``out, kernel, stride``)."""
    from ..layers import REGISTRY

    rule = REGISTRY.get(kind)
    return {key: n for n, key in enumerate(rule.fields)} if rule is not None else {}


def shown(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as written: per-axis lists written once where equal, and values equal to the
    kind's defaults left out (``bias: true``)."""
    from ..layers import REGISTRY

    rule = REGISTRY.get(kind)
    out = {}
    for key, value in config.items():
        value = compact(value)
        f = rule.fields.get(key) if rule is not None else None
        if f is not None and not f.required and compact(f.default) == value and \
                type(compact(f.default)) is type(value):
            continue
        out[key] = value
    return out


def _layer_line(name: str, layer: ImportedLayer, previous: str, names: dict[str, str]) -> str:
    fields = {"name": name}
    fields.update(shown(layer.kind, layer.config))
    if layer.inputs and layer.inputs[0] != previous:
        fields["from"] = names[layer.inputs[0]]
    if len(layer.inputs) > 1:
        extra = [names[t] for t in layer.inputs[1:]]
        fields["with"] = extra[0] if len(extra) == 1 else extra
    if layer.output in names:
        fields["as"] = names[layer.output]
    body = ", ".join(f"{key}: {scalar(value)}" for key, value in fields.items())
    return f"{layer.kind}: {{{body}}}"


def _header(model: ImportedModel) -> list[str]:
    shape = "x".join(str(n) for n in model.input_shape)
    lines = [f"# Imported by cnncalc from {model.source} (input {shape}).",
             "# Edit freely: it is an ordinary spec (docs/spec-format.md)."]
    lines += [f"# {note}" for note in model.notes]
    lines.append(f"name: {scalar(model.name)}")
    if model.title:
        lines.append(f"title: {scalar(model.title)}")
    lines.append(f"source: {scalar(model.source)}")
    lines.append(f"input: {shape}")
    return lines


def to_yaml(model: ImportedModel, fold: bool = True) -> str:
    """The spec text of ``model``: a header comment saying where it came from, then the spec;
    with ``fold``, repeated modules written once as blocks (the module docstring)."""
    flat = _flat_yaml(model)
    if not fold:
        return flat
    from .fold import folded_yaml

    return folded_yaml(model, flat) or flat


def _flat_yaml(model: ImportedModel) -> str:
    names = _tensor_names(model)
    lines = _header(model)
    if model.outputs and (len(model.outputs) > 1 or model.outputs[-1] != model.layers[-1].output):
        lines.append("outputs: " + scalar([names[t] for t in model.outputs]))
    lines.append("layers:")
    state = {"previous": GRAPH_INPUT}

    def emit(group: _Group, indent: str) -> None:
        for item in group.items:
            if isinstance(item, _Group):
                lines.append(f"{indent}- sequence:")
                lines.append(f"{indent}    name: {scalar(item.name)}")
                lines.append(f"{indent}    layers:")
                emit(item, indent + "      ")
            else:
                name, layer = item
                lines.append(f"{indent}- " + _layer_line(name, layer, state["previous"], names))
                state["previous"] = layer.output

    emit(_nest(model.layers), "  ")
    return "\n".join(lines) + "\n"
