"""Every generated value must validate (per the jsonschema library) against its schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from compatlab.engine.schema_values import UnsupportedSchema, value_for_schema

SEEDS = range(21)
MODULE = Path(__file__).resolve().parents[1] / "src" / "compatlab" / "engine" / "schema_values.py"
# Subprocesses load the module by file path, so the rest of the package cannot affect what is measured.
LOAD = ("import importlib.util as u, json, sys; spec = u.spec_from_file_location('sv', %r); "
        "m = u.module_from_spec(spec); spec.loader.exec_module(m); " % str(MODULE))

NODE = {
    "type": "object",
    "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    "required": ["value", "children"],
}
TOOL = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"],
}
STRICT = {  # OpenAI structured outputs: everything required, no extra keys, nullable via type lists
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": ["integer", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": "object",
            "properties": {"street": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["street", "zip"],
            "additionalProperties": False,
        },
        "contact": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
    },
    "required": ["name", "age", "tags", "address", "contact"],
    "additionalProperties": False,
}

CASES: dict[str, dict | bool] = {
    "true": True,
    "empty": {},
    "string": {"type": "string"},
    "string-length": {"type": "string", "minLength": 10, "maxLength": 12},
    "string-short": {"type": "string", "maxLength": 2},
    "pattern-letters": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "pattern-digits": {"type": "string", "pattern": "^\\d{5}$"},
    "formats": {
        "type": "object",
        "properties": {k: {"type": "string", "format": k} for k in ("date", "date-time", "email", "uri", "uuid")},
        "required": ["date", "date-time", "email", "uri", "uuid"],
    },
    "formats-extra": {"type": "array", "prefixItems": [{"type": "string", "format": f}
                                                       for f in ("time", "ipv4", "hostname", "date")],
                      "items": False, "minItems": 4},
    "format-with-words": {"type": "string", "format": "email"},
    "pattern-phone": {"type": "string", "pattern": "^\\d{3}-\\d{4}$"},
    "integer-range": {"type": "integer", "minimum": 5, "maximum": 7},
    "integer-negative": {"type": "integer", "maximum": -10},
    "integer-exclusive-multiple": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 50, "multipleOf": 7},
    "number-range": {"type": "number", "minimum": 0, "maximum": 1},
    "number-tight-exclusive": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.01},
    "number-multiple-quarter": {"type": "number", "multipleOf": 0.25, "minimum": -3, "maximum": -1},
    "number-multiple-tenth": {"type": "number", "multipleOf": 0.1, "minimum": 1000},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "type-list": {"type": ["string", "null"]},
    "enum-mixed": {"enum": ["a", 1, None, True, {"k": [1]}, [1, 2]]},
    "enum-filtered-by-type": {"type": "string", "enum": ["x", 1, "y"]},
    "const-object": {"const": {"a": [1, 2], "b": None}},
    "anyOf": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "integer", "minimum": 1000}]},
    "oneOf-integer-number": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    "oneOf-overlapping-strings": {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 3}]},
    "oneOf-discriminated": {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}},
             "required": ["kind", "r"]},
            {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}},
             "required": ["kind", "side"]},
        ]
    },
    "oneOf-with-siblings": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"],
                            "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    "allOf-merge": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer", "minimum": 3}}, "required": ["a"]},
            {"properties": {"a": {"maximum": 4}, "b": {"type": "string"}}, "required": ["b"]},
        ]
    },
    "allOf-ref": {
        "$defs": {"base": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}},
                           "required": ["id"]}},
        "allOf": [{"$ref": "#/$defs/base"}, {"properties": {"n": {"type": "integer"}}, "required": ["n"]}],
    },
    "nested-defs-ref": {
        "$defs": {
            "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                        "required": ["city"]},
            "person": {"type": "object", "properties": {"name": {"type": "string"},
                                                        "home": {"$ref": "#/$defs/address"}},
                       "required": ["name", "home"]},
        },
        "type": "object",
        "properties": {"owner": {"$ref": "#/$defs/person"}, "tenants": {"type": "array",
                                                                       "items": {"$ref": "#/$defs/person"}}},
        "required": ["owner"],
    },
    "definitions-escaped": {
        "definitions": {"a/b": {"type": "integer"}, "c~d": {"type": "string", "minLength": 2}},
        "type": "object",
        "properties": {"x": {"$ref": "#/definitions/a~1b"}, "y": {"$ref": "#/definitions/c~0d"}},
        "required": ["x", "y"],
    },
    "recursive-tree": {"$defs": {"node": NODE}, "$ref": "#/$defs/node"},
    "recursive-list": {
        "$defs": {"item": {"type": "object", "properties": {"v": {"type": "integer"},
                                                            "next": {"anyOf": [{"$ref": "#/$defs/item"},
                                                                               {"type": "null"}]}},
                           "required": ["v", "next"]}},
        "$ref": "#/$defs/item",
    },
    "array-objects-unique": {
        "type": "array", "minItems": 3, "uniqueItems": True,
        "items": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
    "array-enum-unique": {"type": "array", "minItems": 3, "uniqueItems": True, "items": {"enum": ["r", "g", "b"]}},
    "array-int-unique-tight": {"type": "array", "minItems": 4, "maxItems": 4, "uniqueItems": True,
                               "items": {"type": "integer", "minimum": 1, "maximum": 4}},
    "array-max-zero": {"type": "array", "maxItems": 0, "items": {"type": "string"}},
    "prefixItems": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}], "items": False},
    "additionalProperties-false": {
        "type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a"],
        "additionalProperties": False,
    },
    "additionalProperties-schema-minProperties": {
        "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"},
        "minProperties": 4,
    },
    "maxProperties": {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "maxProperties": 2},
    "patternProperties": {"type": "object", "patternProperties": {"^x_": {"type": "integer"}},
                          "properties": {"x_a": {"minimum": 3}}, "required": ["x_a"],
                          "additionalProperties": False},
    "openai-strict": STRICT,
    "tool-parameters": TOOL,
    "not-const": {"type": "integer", "minimum": 5, "maximum": 6, "not": {"const": 5}},
    "not-type": {"not": {"type": "string"}},
    "inferred-object": {"properties": {"a": {"type": "integer"}}, "required": ["a"]},
    "inferred-array": {"items": {"type": "integer"}, "minItems": 2},
    "nullable-ref": {"$defs": {"p": {"type": "object", "properties": {"x": {"type": "number"}}}},
                     "oneOf": [{"type": "null"}, {"$ref": "#/$defs/p"}]},
}


def check(schema: dict | bool, value: object) -> None:
    # The draft's own checker: plain FormatChecker() also registers draft 3's "time" (no offset allowed).
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(schema, format_checker=checker).validate(value)


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_values_are_valid(name: str) -> None:
    schema = CASES[name]
    for seed in SEEDS:
        for words in (None, ["Paris", "Berlin"]):
            check(schema, value_for_schema(schema, seed=seed, words=words))


def test_formats_pass_the_generic_format_checker() -> None:
    for seed in SEEDS:
        value = value_for_schema(CASES["formats"], seed=seed, words=["Paris"])
        jsonschema.validate(value, CASES["formats"], cls=jsonschema.Draft202012Validator,
                            format_checker=jsonschema.FormatChecker())


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 25


def test_tool_parameters_use_words() -> None:
    for seed in SEEDS:
        args = value_for_schema(TOOL, seed=seed, words=["Paris"])
        assert args["city"] == "Paris"
        assert args.get("unit", "celsius") in ("celsius", "fahrenheit")


def test_plain_string_without_words_is_readable() -> None:
    assert value_for_schema(TOOL, seed=1)["city"] == "lab-city"


def test_unsupported_message_names_the_path() -> None:
    with pytest.raises(UnsupportedSchema, match=r"\$/a/b"):
        value_for_schema({"properties": {"a": {"properties": {"b": {"type": "string", "pattern": "^$x"}},
                                               "required": ["b"]}}, "required": ["a"]}, seed=0)


def test_oneof_integer_number_is_not_integral() -> None:
    for seed in SEEDS:
        value = value_for_schema(CASES["oneOf-integer-number"], seed=seed)
        assert isinstance(value, float) and not value.is_integer()


def test_additional_properties_false_adds_nothing() -> None:
    for seed in SEEDS:
        assert set(value_for_schema(CASES["additionalProperties-false"], seed=seed)) <= {"a", "b"}
        assert set(value_for_schema(STRICT, seed=seed)) == set(STRICT["properties"])


def test_numbers_are_readable() -> None:
    for seed in SEEDS:
        n = value_for_schema({"type": "number"}, seed=seed)
        i = value_for_schema({"type": "integer"}, seed=seed)
        assert round(n, 2) == n and 1 <= n <= 100 and 1 <= i <= 100


def test_deterministic() -> None:
    for name, schema in CASES.items():
        assert value_for_schema(schema, seed=7, words=["Paris"]) == value_for_schema(schema, seed=7, words=["Paris"])
    outputs = {json.dumps(value_for_schema(STRICT, seed=s)) for s in SEEDS}
    assert len(outputs) > 1  # seeds matter, and every variant was validated above


def test_deterministic_across_processes() -> None:
    code = LOAD + f"print(json.dumps(m.value_for_schema({STRICT!r}, seed=3, words=['Paris'])))"
    runs = set()
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        runs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)
    assert len(runs) == 1
    assert json.loads(runs.pop()) == value_for_schema(STRICT, seed=3, words=["Paris"])


def test_module_does_not_import_jsonschema() -> None:
    code = LOAD + "print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("schema", [
    False,
    {"type": "string", "pattern": "^(?!x)x$"},
    {"type": "string", "pattern": "^[0-9a-f]{40}\\.zz$"},
    {"type": "string", "minLength": 5, "maxLength": 2},
    {"type": "integer", "minimum": 3, "maximum": 2},
    {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 6},
    {"allOf": [{"type": "string"}, {"type": "integer"}]},
    {"enum": ["a", "b"], "type": "integer"},
    {"oneOf": [{"type": "string"}, {"type": "string"}]},
    {"type": "object", "properties": {"a": False}, "required": ["a"]},
    {"type": "object", "required": ["a"], "additionalProperties": False},
    {"type": "array", "minItems": 3, "uniqueItems": True, "items": {"type": "boolean"}},
    {"$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}, "required": ["next"]}},
     "$ref": "#/$defs/n"},
    {"$ref": "#"},
    {"$ref": "#/$defs/missing"},
    {"$ref": "https://example.com/schema.json"},
    {"if": {"type": "string"}, "then": {"minLength": 2}},
    {"not": {}},
    {"type": "number", "maximum": float("-inf")},
    {"type": "integer", "minimum": float("inf")},
    {"type": "object", "minProperties": 3, "maxProperties": 1},
])
def test_unsupported(schema: dict | bool) -> None:
    with pytest.raises(UnsupportedSchema):
        value_for_schema(schema, seed=0)
    assert issubclass(UnsupportedSchema, ValueError)
