"""An approval step's form from its schema, and the answer a submitted form gives."""

from __future__ import annotations

import json

import pytest

from pardag.server.ui.approvals import answer_from, fields_of

SCHEMA = {
    "type": "object",
    "required": ["target"],
    "properties": {
        "target": {"enum": ["staging", "prod", 3]},
        "replicas": {"type": "integer", "title": "Replicas"},
        "ratio": {"type": "number"},
        "force": {"type": "boolean"},
        "note": {"type": "string"},
    },
}


def test_a_schema_of_plain_properties_gives_one_input_each() -> None:
    fields = fields_of(SCHEMA, None)
    assert [(f.name, f.kind, f.required) for f in fields] == [
        ("target", "select", True),
        ("replicas", "integer", False),
        ("ratio", "number", False),
        ("force", "boolean", False),
        ("note", "text", False),
    ]
    assert fields[0].options == (('"staging"', "staging"), ('"prod"', "prod"), ("3", "3"))
    assert fields[1].label == "Replicas"


def test_the_answer_keeps_each_fields_type() -> None:
    fields = fields_of(SCHEMA, None)
    form = {"f.target": "3", "f.replicas": "4", "f.ratio": "0.5", "f.force": "on", "f.note": ""}
    assert answer_from(fields, form) == {"target": 3, "replicas": 4, "ratio": 0.5, "force": True}
    form = {"f.target": '"prod"', "f.note": "ship it"}
    assert answer_from(fields, form) == {"target": "prod", "force": False, "note": "ship it"}


def test_choices_are_a_select_and_no_schema_is_a_plain_yes() -> None:
    (field,) = fields_of(None, ["yes", "no"])
    assert field.kind == "select" and answer_from([field], {"f.answer": '"no"'}) == "no"
    assert fields_of(None, None) == [] and answer_from([], {}) is True


def test_any_other_schema_is_one_json_field() -> None:
    (field,) = fields_of({"type": "array", "items": {"type": "integer"}}, None)
    assert field.kind == "json"
    assert answer_from([field], {"f.answer": json.dumps([1, 2])}) == [1, 2]
    with pytest.raises(ValueError, match="not JSON"):
        answer_from([field], {"f.answer": "[1, 2"})


def test_a_number_that_is_not_one_names_its_field() -> None:
    fields = fields_of(SCHEMA, None)
    with pytest.raises(ValueError, match="Replicas: 'four' is not an integer"):
        answer_from(fields, {"f.target": '"prod"', "f.replicas": "four"})
