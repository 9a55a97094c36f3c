"""Dataset rules without I/O: item versions, names, experiment ids and links, JSON Schema."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from langfuse import Langfuse

from fathom.core.domain.datasets import (
    Dataset,
    DatasetItem,
    DatasetStatus,
    FieldCondition,
    ItemChanges,
    dataset_name_problem,
    item_schema_problem,
    json_equal,
    metadata_object,
    next_valid_from,
    parse_experiment_link,
    parse_filter,
    revise_item,
    schema_problem,
    stable_experiment_id,
    state_as_of,
    tombstone,
    validate_against_schema,
)
from fathom.core.domain.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def write(
    history: list[DatasetItem], changes: ItemChanges, now: datetime, item_id: str = "i1"
) -> DatasetItem:
    """Apply a write the way the repository does: close the current version, add the next."""
    current = history[-1] if history else None
    version = revise_item(
        current, item_id=item_id, project_id="p", dataset_id="d", changes=changes, now=now
    )
    if current is not None:
        history[-1] = replace(current, valid_to=version.valid_from)
    history.append(version)
    return version


def delete(history: list[DatasetItem], now: datetime) -> DatasetItem:
    current = history[-1]
    marker = tombstone(current, now)
    history[-1] = replace(current, valid_to=marker.valid_from)
    history.append(marker)
    return marker


# --- versions ---------------------------------------------------------------------------------


def test_a_new_item_is_active_and_starts_now() -> None:
    item = write([], ItemChanges(input={"q": 1}), T0)
    assert item.status is DatasetStatus.ACTIVE
    assert (item.valid_from, item.created_at, item.updated_at) == (T0, T0, T0)
    assert item.valid_to is None and not item.is_deleted
    assert (item.input, item.expected_output, item.metadata) == ({"q": 1}, None, None)


def test_a_write_keeps_what_it_leaves_out() -> None:
    history: list[DatasetItem] = []
    write(history, ItemChanges(input="in", expected_output="out", metadata={"m": 1}), T0)
    later = T0 + timedelta(seconds=5)
    second = write(
        history, ItemChanges(expected_output="new", status=DatasetStatus.ARCHIVED), later
    )
    assert (second.input, second.expected_output, second.metadata) == ("in", "new", {"m": 1})
    assert second.status is DatasetStatus.ARCHIVED
    assert second.created_at == T0 and second.updated_at == later
    third = write(history, ItemChanges(), later + timedelta(seconds=1))
    assert third.status is DatasetStatus.ARCHIVED  # null status keeps it, as upstream


def test_versions_written_in_one_clock_tick_stay_ordered() -> None:
    history: list[DatasetItem] = []
    first = write(history, ItemChanges(input=1), T0)
    second = write(history, ItemChanges(input=2), T0)
    third = write(history, ItemChanges(input=3), T0 - timedelta(seconds=1))  # clock went back
    assert first.valid_from < second.valid_from < third.valid_from
    assert next_valid_from(T0 + timedelta(hours=1), third) == T0 + timedelta(hours=1)


def test_state_as_of_reads_each_version_and_the_deletion() -> None:
    history: list[DatasetItem] = []
    t1, t2, t3 = (T0 + timedelta(minutes=m) for m in (1, 2, 3))
    write(history, ItemChanges(input="v1"), T0)
    write(history, ItemChanges(input="v2"), t1)
    delete(history, t2)
    assert state_as_of(history, T0 - timedelta(seconds=1)) is None  # before it existed
    assert state_as_of(history, T0).input == "v1"  # type: ignore[union-attr]
    assert state_as_of(history, t1 - timedelta(microseconds=1)).input == "v1"  # type: ignore[union-attr]
    assert state_as_of(history, t1).input == "v2"  # type: ignore[union-attr]
    assert state_as_of(history, t2) is None
    assert state_as_of(history, None) is None  # deleted now
    # Writing the id again brings it back, as a new item.
    again = write(history, ItemChanges(input="v3"), t3)
    assert again.created_at == t3 and not again.is_deleted
    assert state_as_of(history, None) is again
    assert state_as_of(history, t1).input == "v2"  # type: ignore[union-attr]


# --- names, ids, metadata ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("qa", None),
        ("evaluation/qa-dataset", None),
        ("with space", None),
        ("   ", "Name cannot be empty"),
        ("/leading", "Name cannot start with a slash"),
        ("a//b", "Name cannot contain consecutive slashes"),
        ("trailing/", "Name cannot end with a slash"),
        ("<b>bold</b>", "Text cannot contain HTML tags"),
    ],
)
def test_dataset_names(name: str, problem: str | None) -> None:
    assert dataset_name_problem(name) == problem


@pytest.mark.parametrize("run_name", ["run-1", "nightly/2026-10-20", "ünïcode run"])
def test_stable_experiment_id_matches_the_sdk(run_name: str) -> None:
    # The SDK derives the id without touching the client for dataset experiments.
    sdk_id = Langfuse._create_experiment_id(
        None,  # type: ignore[arg-type]
        project_id="project-1",
        dataset_id="ds-1",
        run_name=run_name,
    )
    assert stable_experiment_id("project-1", "ds-1", run_name) == sdk_id
    assert len(sdk_id) == 16


def test_metadata_object_wraps_what_is_not_an_object() -> None:
    assert metadata_object({"a": 1}) == {"a": 1}
    assert metadata_object("x") == {"metadata": "x"}
    assert metadata_object([1]) == {"metadata": [1]}
    assert metadata_object(None) is None


# --- experiment links ---------------------------------------------------------------------------

SDK_ATTRIBUTES = {
    "id": "6cadab48871e59a3",
    "name": "run-1",
    "description": "desc",
    "metadata": {"em": "x"},
    "dataset_id": "ds-8f98f1a7",
    "item_id": "0ea317ee-d744-4f30-94af-a83659d3cb30",
    "item_version": "2025-05-05T00:00:00Z",
    "item_metadata": {"im": 1},
    "item_expected_output": 4,
    "item_root_observation_id": "98fa8a61c52989c2",
}


def test_experiment_link_from_sdk_attributes() -> None:
    link = parse_experiment_link("98fa8a61c52989c2", "trace-1", SDK_ATTRIBUTES)
    assert link is not None
    assert (link.experiment_id, link.experiment_name, link.item_id) == (
        "6cadab48871e59a3",
        "run-1",
        "0ea317ee-d744-4f30-94af-a83659d3cb30",
    )
    assert link.root_observation_id == "98fa8a61c52989c2"
    assert link.dataset_id == "ds-8f98f1a7"
    assert link.item_version == datetime(2025, 5, 5, tzinfo=UTC)
    assert (link.expected_output, link.has_expected_output) == (4, True)
    assert (link.metadata, link.item_metadata, link.description) == ({"em": "x"}, {"im": 1}, "desc")


def test_experiment_link_needs_an_experiment_and_an_item() -> None:
    assert parse_experiment_link("o", "t", {"item_id": "i"}) is None
    assert parse_experiment_link("o", "t", {"id": "e"}) is None
    assert parse_experiment_link("o", "", {"id": "e", "item_id": "i"}) is None
    evaluator = parse_experiment_link("o", "t", {"id": "e", "item_id": "i"})
    assert evaluator is not None
    assert evaluator.has_expected_output is False and evaluator.dataset_id is None
    # A null expected output is still an expected output (the SDK sends "null" for None).
    assert parse_experiment_link(
        "o", "t", {"id": "e", "item_id": "i", "item_expected_output": None}
    ).has_expected_output  # type: ignore[union-attr]
    assert (
        parse_experiment_link(
            "o", "t", {"id": "e", "item_id": "i", "item_version": "yesterday"}
        ).item_version
        is None
    )  # type: ignore[union-attr]


# --- experiment filters -------------------------------------------------------------------------

COLUMNS = {"id": "experiment_id", "name": "experiment_name"}


def test_filters_parse_to_conditions() -> None:
    conditions = parse_filter(
        [
            {"column": "id", "operator": "any of", "value": ["a", "b"], "type": "stringOptions"},
            {"column": "name", "operator": "starts with", "value": "night", "type": "string"},
        ],
        COLUMNS,
    )
    assert conditions == [
        FieldCondition("experiment_id", "any of", ("a", "b")),
        FieldCondition("experiment_name", "starts with", ("night",)),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        {"column": "id"},
        [{"column": "nope", "operator": "=", "value": "x"}],
        [{"column": "id", "operator": "like", "value": "x"}],
        [{"column": "id", "operator": "=", "value": ["a", "b"]}],
        [{"column": "id", "operator": "any of", "value": [1]}],
        ["id = x"],
    ],
)
def test_bad_filters_are_invalid_input(raw: Any) -> None:
    with pytest.raises(InvalidInput):
        parse_filter(raw, COLUMNS)


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("any of", ("a", "b"), "b", True),
        ("none of", ("a", "b"), "b", False),
        ("none of", ("a",), None, True),
        ("=", ("x",), "x", True),
        ("!=", ("x",), "x", False),
        ("contains", ("ig",), "nightly", True),
        ("does not contain", ("ig",), "nightly", False),
        ("starts with", ("nig",), "nightly", True),
        ("ends with", ("ly",), "nightly", True),
    ],
)
def test_conditions_match_like_the_sql_does(
    operator: str, values: tuple[str, ...], value: str | None, expected: bool
) -> None:
    assert FieldCondition("experiment_id", operator, values).matches(value) is expected


# --- JSON Schema --------------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "kind": {"enum": ["a", "b"]},
        "address": {"$ref": "#/definitions/address"},
    },
    "required": ["name"],
    "additionalProperties": False,
    "definitions": {
        "address": {
            "type": "object",
            "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
            "required": ["zip"],
        }
    },
}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"name": "Al", "age": 3, "tags": ["x"], "kind": "a", "address": {"zip": "12345"}}, None),
        ({"name": "Al", "age": 3.0}, None),  # 3.0 is an integer, as in JavaScript
        ({}, "must have required property 'name'"),
        ("text", "must be object"),
        ({"name": 5}, "/name must be string"),
        ({"name": "A"}, "/name must NOT have fewer than 2 characters"),
        ({"name": "Al", "age": -1}, "/age must be >= 0"),
        ({"name": "Al", "age": True}, "/age must be integer"),
        ({"name": "Al", "age": 1.5}, "/age must be integer"),
        ({"name": "Al", "tags": ["x", 1]}, "/tags/1 must be string"),
        (
            {"name": "Al", "tags": ["x", "x"]},
            "/tags must NOT have duplicate items (items ## 0 and 1 are identical)",
        ),
        ({"name": "Al", "kind": "c"}, "/kind must be equal to one of the allowed values"),
        ({"name": "Al", "address": {}}, "/address must have required property 'zip'"),
        ({"name": "Al", "address": {"zip": "1"}}, '/address/zip must match pattern "^[0-9]{5}$"'),
        ({"name": "Al", "extra": 1}, "must NOT have additional properties ('extra')"),
    ],
)
def test_validation_reports_the_first_problem(value: Any, message: str | None) -> None:
    assert schema_problem(PERSON) is None
    error = validate_against_schema(value, PERSON)
    assert (error.describe() if error else None) == message


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        ({"type": ["string", "null"]}, None, None),
        ({"type": ["string", "null"]}, 1, "must be string,null"),
        ({"const": 1}, 1.0, None),
        ({"const": 1}, True, "must be equal to constant"),
        ({"anyOf": [{"type": "string"}, {"type": "number"}]}, [], "must match a schema in anyOf"),
        (
            {"oneOf": [{"type": "number"}, {"type": "integer"}]},
            1,
            "must match exactly one schema in oneOf",
        ),
        ({"not": {"type": "string"}}, "x", "must NOT be valid"),
        ({"allOf": [{"minimum": 1}, {"maximum": 2}]}, 3, "must be <= 2"),
        ({"exclusiveMinimum": 0}, 0, "must be > 0"),
        ({"multipleOf": 0.1}, 0.3, None),
        ({"multipleOf": 2}, 3, "must be multiple of 2"),
        (
            {"items": [{"type": "string"}], "additionalItems": False},
            ["a", 1],
            "must NOT have more than 1 items",
        ),
        ({"prefixItems": [{"type": "string"}], "items": {"type": "number"}}, ["a", 1], None),
        ({"contains": {"type": "number"}}, ["a"], "must contain at least 1 valid item(s)"),
        ({"maxItems": 1}, [1, 2], "must NOT have more than 1 items"),
        ({"minProperties": 1}, {}, "must NOT have fewer than 1 properties"),
        ({"propertyNames": {"maxLength": 2}}, {"abc": 1}, "property name must be valid"),
        (
            {"dependencies": {"a": ["b"]}},
            {"a": 1},
            "must have property b when property a is present",
        ),
        ({"if": {"type": "string"}, "then": {"minLength": 2}}, "x", 'must match "then" schema'),
        ({"patternProperties": {"^x": {"type": "number"}}}, {"xa": "s"}, "/xa must be number"),
        ({"pattern": "^(ab){2}[0-9]+$"}, "abab12", None),  # bounded nesting is fine
        (False, 1, "boolean schema is false"),
        (True, 1, None),
        ({"type": "string", "format": "email"}, "not an email", None),  # formats are not checked
        ({"type": "number", "nullable": True}, None, None),
        ({"$ref": "#"}, 1, None),  # a self-reference ends instead of looping
    ],
)
def test_keywords(schema: Any, value: Any, message: str | None) -> None:
    assert schema_problem(schema) is None
    error = validate_against_schema(value, schema)
    assert (error.describe() if error else None) == message


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "text"}, "/type must be one of"),
        ({"type": []}, "/type must be one of"),
        ({"required": "name"}, "/required must be an array of strings"),
        ({"minLength": -1}, "/minLength must be a non-negative integer"),
        ({"pattern": "("}, "is not a valid regular expression"),
        ({"pattern": "^(a+)+$"}, "catastrophic backtracking"),
        ({"patternProperties": {"(x*)*": {}}}, "catastrophic backtracking"),
        ({"$ref": "#/definitions/missing"}, "can't resolve reference #/definitions/missing"),
        ({"$ref": "http://example.com/schema"}, "only local references are supported"),
        ({"properties": {"a": {"typo": 1}}}, "unknown keyword: 'typo'"),
        ({"properties": []}, "/properties must be an object"),
        ({"anyOf": []}, "/anyOf must be a non-empty array of schemas"),
        ("string", "must be an object or a boolean"),
        ({"enum": list(range(3000))}, "schema exceeds 10000 characters"),
    ],
)
def test_schemas_upstream_would_not_compile(schema: Any, problem: str) -> None:
    found = schema_problem(schema)
    assert found is not None and problem in found


def test_item_schema_problem_names_the_field() -> None:
    now = T0
    dataset = Dataset(
        "d",
        "p",
        "ds",
        now,
        now,
        input_schema={"type": "object", "required": ["q"]},
        expected_output_schema={"type": "string"},
    )
    assert item_schema_problem(dataset, {"q": 1}, "ok") is None
    assert item_schema_problem(dataset, {}, 4) == (
        "Input validation failed: must have required property 'q'; "
        "Expected output validation failed: must be string"
    )
    assert item_schema_problem(dataset, None, "ok", require_input=True) == (
        "Dataset item input cannot be null"
    )
    bare = Dataset("d", "p", "ds", now, now)
    assert item_schema_problem(bare, None, None) is None


def test_json_equality() -> None:
    assert json_equal({"a": [1, {"b": 2.0}]}, {"a": [1.0, {"b": 2}]})
    assert not json_equal(True, 1)
    assert not json_equal([1], [1, 1])
    assert not json_equal("1", 1)
    assert not json_equal({"a": 1}, {"b": 1})
