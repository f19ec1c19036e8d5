"""The JSON Schema of the spec format: generated from the registry, committed, and true to the
loader (every zoo spec is valid; specs the loader refuses for a wrong field are invalid)."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from cnncalc import SpecError, analyze, parse_spec
from cnncalc.cli import app
from cnncalc.layers import REGISTRY
from cnncalc.schema import SCHEMA_FILE, schema_text, spec_schema
from cnncalc.spec import COMMON_FIELDS, KEYWORDS
from cnncalc.zoo import zoo_dir, zoo_names


def test_the_committed_file_is_the_generated_schema():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), \
        "cnncalc/spec.schema.json is stale: run python -m cnncalc.schema"


def test_cnncalc_schema_prints_it():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == schema_text()
    assert json.loads(result.stdout)["title"] == "cnncalc spec"


def test_every_kind_field_and_keyword_is_in_the_schema():
    schema = spec_schema()
    kinds = schema["definitions"]["kinds"]
    assert set(kinds) == set(REGISTRY)
    for kind, rule in REGISTRY.items():
        body = kinds[kind] if "properties" in kinds[kind] else kinds[kind]["anyOf"][1]
        assert set(body["properties"]) == {*COMMON_FIELDS, *rule.fields}
        assert set(body.get("required", [])) == {n for n, f in rule.fields.items() if f.required}
    assert set(schema["definitions"]["keywords"]) == set(KEYWORDS)
    item = schema["definitions"]["layer"]["anyOf"][1]["properties"]
    assert set(item) == set(REGISTRY) | set(KEYWORDS)


jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("name", zoo_names())
def test_every_zoo_spec_is_valid(validator, name):
    data = yaml.safe_load((zoo_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []


GOOD = [
    {"input": "3x32x32", "layers": ["relu", {"relu": None}, {"conv": {"out": 8, "kernel": [1, 7],
                                                                       "padding": "same"}}]},
    {"input": [3, 32, 32], "layers": [{"mine": {"w": 2}}, {"mine": None}],
     "blocks": {"mine": {"params": {"w": 4}, "layers": [{"conv": {"out": "${w}", "kernel": 1,
                                                                    "when": "${w > 1}"}}]}}},
    {"input": 10, "layers": [{"mine": {"w": 3}}, {"linear": {"out": 5, "bias": False}}],
     "blocks": {"mine": {"params": {"w": None}, "body": {"linear": {"out": "${w}"}}}}},
    {"input": "1x8x8", "layers": [{"repeat": {"times": 2, "layers": [{"conv": {"out": 2, "kernel": 3}}]}},
                                  {"residual": {"layers": ["relu"], "shortcut": [], "post": ["relu"]}},
                                  {"concat": {"branches": {"a": ["relu"], "b": ["identity"]}}}]},
]

BAD = [
    {"layers": []},  # no input
    {"input": "3x32", "layers": [], "extra": 1},  # unknown top-level key
    {"input": "3x32x32", "layers": [{"conv": {"out": 0, "kernel": 3}}]},  # out ≥ 1
    {"input": "3x32x32", "layers": [{"conv": {"out": 4, "kernal": 3}}]},  # misspelt field
    {"input": "3x32x32", "layers": [{"conv": {"kernel": 3}}]},  # out is required
    {"input": "3x32x32", "layers": [{"conv": None}]},  # so a bare conv is not enough
    {"input": "3x32x32", "layers": [{"maxpool": {"kernel": 2, "padding": "same"}}]},
    {"input": "3x32x32", "layers": [{"dropout": {"p": 1.5}}]},
    {"input": "3x32x32", "layers": [{"conv": {"out": 4, "kernel": [1, 2, 3, 4]}}]},  # ≤ 3 axes
    {"input": "3x32x32", "layers": [{"relu": {}, "tanh": {}}]},  # two keys in one item
    {"input": "3x32x32", "layers": [{"repeat": {"layers": ["relu"]}}]},  # times is required
    {"input": "3x32x32", "layers": [], "blocks": {"conv": {"layers": []}}},  # a kind's name
    {"input": "3x32x32", "layers": [], "blocks": {"b": {"params": {}}}},  # neither layers nor body
]


@pytest.mark.parametrize("data", GOOD)
def test_valid_specs(validator, data):
    assert [e.message for e in validator.iter_errors(data)] == []
    analyze(parse_spec(yaml.safe_dump(data), "good.yaml", "good"))  # the loader agrees


@pytest.mark.parametrize("data", BAD)
def test_invalid_specs(validator, data):
    assert list(validator.iter_errors(data))
    with pytest.raises(SpecError):  # and so does the loader
        analyze(parse_spec(yaml.safe_dump(data), "bad.yaml", "bad"))
