"""The JSON Schema of the spec format, generated from the layer registry and the composition
keywords, so editors can validate and complete YAML specs.

``cnncalc schema`` prints :func:`spec_schema`; the same text is committed as
``cnncalc/spec.schema.json`` (a test keeps the two equal). The loader (``cnncalc/spec.py``) stays
the authority: the schema checks what can be checked per value — known kinds and fields, types
and ranges — and cannot know a spec's own block names, so any other one-key item is accepted as a
block call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import fields as f
from .layers import REGISTRY
from .spec import COMMON_FIELDS, KEYWORDS, SHAPE_PATTERN, TOP_LEVEL_KEYS

SCHEMA_FILE = Path(__file__).resolve().parent / "spec.schema.json"

_EXPRESSION = {"type": "string", "pattern": r"\$\{",
               "description": "a ${...} expression over the parameters in scope"}
_POSITIVE = {"type": "integer", "minimum": 1}
_NONNEGATIVE = {"type": "integer", "minimum": 0}


def _pair(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 2, "maxItems": 2}]}


def _axes(item: dict[str, Any]) -> dict[str, Any]:
    """One value for every spatial axis, or a list of one per axis (1 to 3)."""
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1,
                             "maxItems": f.MAX_SPATIAL_RANK}]}


_WORDS = {"type": "string", "pattern": r"^\s*([sS][aA][mM][eE]|[vV][aA][lL][iI][dD])\s*$"}
_SCALE = {"type": "number", "exclusiveMinimum": 0}
_BEFORE_AFTER = {"anyOf": [_NONNEGATIVE, {"type": "array", "items": _NONNEGATIVE,
                                          "minItems": 2, "maxItems": 2}]}

# One JSON Schema fragment per field parser of cnncalc/fields.py. A parser missing here makes
# spec_schema() fail, so a new field type cannot slip into the registry without a schema.
_PARSERS: dict[Any, dict[str, Any]] = {
    f.positive_int: _POSITIVE,
    f.nonnegative_int: _NONNEGATIVE,
    f.positive_pair: _pair(_POSITIVE),
    f.nonnegative_pair: _pair(_NONNEGATIVE),
    f.padding: {"anyOf": [*_pair(_NONNEGATIVE)["anyOf"],
                          {"type": "string",
                           "pattern": r"^\s*([sS][aA][mM][eE]|[vV][aA][lL][iI][dD])\s*$"}]},
    f.positive_axes: _axes(_POSITIVE),
    f.nonnegative_axes: _axes(_NONNEGATIVE),
    f.padding_axes: {"anyOf": [*_axes(_NONNEGATIVE)["anyOf"], _WORDS]},
    f.positive_scale_axes: _axes(_SCALE),
    f.before_after_axes: {"anyOf": [_NONNEGATIVE, {"type": "array", "items": _BEFORE_AFTER,
                                                    "minItems": 1,
                                                    "maxItems": f.MAX_SPATIAL_RANK}]},
    f.tensor_name: {"type": ["string", "integer"],
                    "description": "the name of a tensor in scope (as: NAME)"},
    f.boolean: {"type": "boolean"},
    f.number: {"type": "number"},
    f.probability: {"type": "number", "minimum": 0, "maximum": 1},
    f.tensor_name: {"type": ["string", "integer"],
                    "description": "a tensor's name (given with as), or input"},
    f.connection_table: {"type": "array", "minItems": 1,
                         "items": {"type": "array", "minItems": 1, "uniqueItems": True,
                                   "items": _NONNEGATIVE}},
}


def _or_expression(schema: dict[str, Any]) -> dict[str, Any]:
    alternatives = schema["anyOf"] if list(schema) == ["anyOf"] else [schema]
    return {"anyOf": [*alternatives, {"$ref": "#/definitions/expression"}]}


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_default(v) for v in value]
    return value


def _field_schema(kind: str, name: str, field: f.Field) -> dict[str, Any]:
    try:
        base = _PARSERS[field.parse]
    except KeyError:
        if hasattr(field.parse, "choices"):  # fields.choice(...)
            base = {"type": "string", "enum": list(field.parse.choices)}
            return _with_default({"description": field.doc, **_or_expression(base)}, field)
        if not hasattr(field.parse, "json_schema"):  # a parser of layers.py carries its own
            raise TypeError(f"no JSON Schema for the parser of {kind}.{name}; add it to "
                            "cnncalc/schema.py") from None
        base = field.parse.json_schema
    return _with_default({"description": field.doc, **_or_expression(base)}, field)


def _with_default(schema: dict[str, Any], field: f.Field) -> dict[str, Any]:
    if not field.required and field.default is not None:
        schema["default"] = _json_default(field.default)
    return schema


_COMMON = {
    "name": {"description": "name in dotted paths (default: the index in the list)",
             "type": ["string", "integer"]},
    "when": {"description": "leave the item out when false",
             "anyOf": [{"type": "boolean"}, {"$ref": "#/definitions/expression"}]},
    "as": {"description": "name the item's output tensor (for from, with, like, outputs)",
           "type": ["string", "integer"]},
    "from": {"description": "read this tensor instead of the previous item's output (merge "
                            "kinds: a list of every operand)",
             "anyOf": [{"type": ["string", "integer"]},
                       {"type": "array", "items": {"type": ["string", "integer"]},
                        "minItems": 1}]},
    "with": {"description": "merge kinds: the tensors merged with the current one",
             "anyOf": [{"type": ["string", "integer"]},
                       {"type": "array", "items": {"type": ["string", "integer"]},
                        "minItems": 1}]},
}
assert tuple(_COMMON) == COMMON_FIELDS


def _kind_schema(kind: str) -> dict[str, Any]:
    rule = REGISTRY[kind]
    body = {
        "type": "object",
        "description": rule.summary,
        "properties": {**_COMMON, **{name: _field_schema(kind, name, field)
                                     for name, field in rule.fields.items()}},
        "additionalProperties": False,
    }
    required = [name for name, field in rule.fields.items() if field.required]
    if required:
        body["required"] = required
        return body
    return {"anyOf": [{"type": "null"}, body], "description": rule.summary}


def _group(description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "description": description,
              "properties": {**_COMMON, **properties}, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_LAYERS = {"$ref": "#/definitions/layers"}

_KEYWORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "sequence": _group("layers in order under one name", {"layers": _LAYERS}, ["layers"]),
    "concat": _group(
        "branches on the same input, concatenated along channels",
        {"branches": {"type": "object", "minProperties": 1, "additionalProperties": _LAYERS,
                      "description": "branch name to its list of layers"}},
        ["branches"]),
    "residual": _group(
        "post(layers(x) + shortcut(x)); an absent shortcut is the identity",
        {"layers": _LAYERS,
         "shortcut": {**_LAYERS, "description": "the shortcut path (identity when absent)"},
         "shortcut_name": {"type": ["string", "integer"],
                           "description": "the shortcut's name in paths", "default": "shortcut"},
         "post": {**_LAYERS, "description": "layers after the addition"}},
        ["layers"]),
    "head": _group("a side head: reads the current tensor; the main path goes on unchanged",
                   {"layers": _LAYERS}, ["layers"]),
    "repeat": {"type": "object",
               "description": "times copies of layers, spliced in; ${i} is the copy's index",
               "properties": {"times": {"anyOf": [_NONNEGATIVE,
                                                  {"$ref": "#/definitions/expression"}]},
                              "layers": _LAYERS, "when": _COMMON["when"]},
               "required": ["times", "layers"], "additionalProperties": False},
}
assert tuple(_KEYWORD_SCHEMAS) == KEYWORDS


def _keyword_ref(keyword: str) -> dict[str, Any]:
    """A keyword's schema; ``concat`` is also a merge kind (with from/with instead of branches)."""
    ref = {"$ref": f"#/definitions/keywords/{keyword}"}
    if keyword in REGISTRY:
        return {"anyOf": [ref, {"$ref": f"#/definitions/kinds/{keyword}"}]}
    return ref


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a spec file, built from the registry and the keywords."""
    taken = [*REGISTRY, *KEYWORDS]
    layer_item = {
        "anyOf": [
            {"type": "string", "description": "a bare kind (or a block without parameters)",
             "anyOf": [{"enum": list(REGISTRY)}, {"type": "string"}]},
            {"type": "object", "minProperties": 1, "maxProperties": 1,
             "properties": {**{k: {"$ref": f"#/definitions/kinds/{k}"} for k in REGISTRY},
                            **{k: _keyword_ref(k) for k in KEYWORDS}},
             "additionalProperties": {
                 "description": "a block of this spec, with its parameters as fields",
                 "type": ["object", "null"]}},
        ]
    }
    top = {
        "name": {"type": ["string", "number"], "description": "the spec's name"},
        "title": {"type": ["string", "number"], "description": "one line shown above tables"},
        "description": {"type": ["string", "number"], "description": "what the spec is"},
        "source": {"type": ["string", "number"], "description": "where its figures come from"},
        "input": {"description": "input shape per sample: C×H×W (3x224x224), C×L, C×D×H×W, "
                           "or F for a vector",
                  "anyOf": [{"type": "string", "pattern": SHAPE_PATTERN.pattern},
                            _POSITIVE,
                            {"type": "array", "items": _POSITIVE, "minItems": 1,
                             "maxItems": 4}]},
        "blocks": {"type": "object", "description": "named, parametrised groups of layers",
                   "propertyNames": {"not": {"enum": taken}},
                   "additionalProperties": {"$ref": "#/definitions/block"}},
        "layers": _LAYERS,
        "outputs": {"description": "the spec's outputs: tensor names given with as (default: "
                                   "the last layer's output)",
                    "anyOf": [{"type": ["string", "integer"]},
                              {"type": "array", "items": {"type": ["string", "integer"]},
                               "minItems": 1}]},
    }
    assert tuple(top) == TOP_LEVEL_KEYS
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "cnncalc spec",
        "description": "A convolutional network for cnncalc: docs/spec-format.md. Generated by "
                       "`cnncalc schema` from the layer registry.",
        "type": "object",
        "properties": top,
        "required": ["input", "layers"],
        "additionalProperties": False,
        "definitions": {
            "expression": _EXPRESSION,
            "layers": {"type": "array", "items": {"$ref": "#/definitions/layer"}},
            "layer": layer_item,
            "block": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "params": {"type": ["object", "null"],
                               "description": "parameter name to default (~ when required)"},
                    "layers": {**_LAYERS, "description": "the instance is a sequence"},
                    "body": {"$ref": "#/definitions/layer",
                             "description": "one item: the instance is that item"},
                },
                "oneOf": [{"required": ["layers"]}, {"required": ["body"]}],
                "additionalProperties": False,
            },
            "kinds": {kind: _kind_schema(kind) for kind in REGISTRY},
            "keywords": _KEYWORD_SCHEMAS,
        },
    }


def schema_text() -> str:
    """The schema as the committed file holds it: two-space JSON, a final newline."""
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema_file(path: Path = SCHEMA_FILE) -> None:
    """Regenerate ``cnncalc/spec.schema.json`` (``python -m cnncalc.schema``)."""
    path.write_text(schema_text(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    write_schema_file()
