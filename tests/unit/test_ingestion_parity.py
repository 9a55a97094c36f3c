"""Parity of `POST /api/public/ingestion` and the worker's merge with upstream Langfuse.

One test per upstream rule, named after it: per-event validation (`processEventBatch` with the
ingestion zod schemas), scope checks, ordering and grouping, then `IngestionService`'s merge
(`mergeAndWrite`, `overwriteObject`). Tests whose name ends in `_deliberately` pin a documented
difference (see the docstrings of `core.domain.ingestion` and `core.domain.merge`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fathom.core.domain.ingestion import (
    INVALID_REQUEST_MESSAGE,
    SCORE_TARGET_MESSAGE,
    UNSET,
    EntityKind,
    EventError,
    EventType,
    ParsedEvent,
    group_events,
    is_authorized,
    parse_batch,
    parse_event,
    sort_events,
)
from fathom.core.domain.merge import MergeResult, merge_batch
from fathom.core.domain.scores import ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, ObservationType, Session

PROJECT = "proj-1"
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_envelope_ids = itertools.count(1)


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def raw(event_type: str, body: Any, seconds: float = 0, event_id: str | None = None) -> Any:
    return {
        "id": event_id or f"ev-{next(_envelope_ids)}",
        "timestamp": iso(seconds),
        "type": event_type,
        "body": body,
    }


def ok(event_type: str, body: Any, seconds: float = 0) -> Any:
    parsed = parse_event(raw(event_type, body, seconds))
    assert not isinstance(parsed, EventError), parsed.error
    return parsed


def rejected(event: Any) -> list[dict[str, Any]]:
    """The zod-like issues of a refused event (status 400, upstream's message)."""
    parsed = parse_event(event)
    assert isinstance(parsed, EventError), parsed
    assert (parsed.status, parsed.message) == (400, INVALID_REQUEST_MESSAGE)
    issues: list[dict[str, Any]] = json.loads(parsed.error)
    return issues


def paths(event: Any) -> list[list[Any]]:
    return [issue["path"] for issue in rejected(event)]


def merge(events: list[ParsedEvent], stored: MergeResult | None = None) -> MergeResult:
    traces = {x.id: x for x in stored.traces} if stored else {}
    observations = {x.id: x for x in stored.observations} if stored else {}
    scores = {x.id: x for x in stored.scores} if stored else {}
    return merge_batch(PROJECT, events, traces, observations, scores, NOW)


SCORE = {"id": "sc", "name": "quality", "traceId": "t", "value": 1}

# ============================================================================ envelope


@pytest.mark.parametrize(
    ("event_id", "valid"),
    [("e", True), ("x" * 800, True), ("", False), ("x" * 801, False), ("a\rb", False), (7, False)],
)
def test_envelope_id_is_a_string_of_1_to_800_chars_without_carriage_return(
    event_id: Any, valid: bool
) -> None:
    event = {"id": event_id, "timestamp": iso(0), "type": "trace-create", "body": {"id": "t"}}
    if valid:
        assert not isinstance(parse_event(event), EventError)
    else:
        assert paths(event) == [["id"]]


@pytest.mark.parametrize("timestamp", [None, "2025-03-01", "2025-03-01T10:00:00", "yesterday", 5])
def test_envelope_timestamp_is_an_iso_datetime_with_offset(timestamp: Any) -> None:
    event = {"id": "e", "timestamp": timestamp, "type": "trace-create", "body": {}}
    assert paths(event) == [["timestamp"]]


def test_error_entry_id_is_the_envelope_id_when_a_string_else_unknown() -> None:
    _, errors = parse_batch(
        [
            {"id": "bad-1", "timestamp": "nope", "type": "trace-create", "body": {}},
            {"id": 42, "timestamp": iso(0), "type": "trace-create", "body": {}},
            "not an object",
        ]
    )
    assert [e.id for e in errors] == ["bad-1", "unknown", "unknown"]


def test_error_entry_is_400_invalid_request_data_with_the_issue_list_as_error() -> None:
    event = raw("span-create", {"id": "s", "name": 3}, event_id="e-1")
    parsed = parse_event(event)
    assert isinstance(parsed, EventError)
    entry = parsed.to_dict()
    assert set(entry) == {"id", "status", "message", "error"}
    assert (entry["id"], entry["status"], entry["message"]) == ("e-1", 400, "Invalid request data")
    assert json.loads(entry["error"]) == [
        {
            "code": "invalid_type",
            "path": ["body", "name"],
            "message": "Invalid input: expected string, received number",
        }
    ]


def test_unknown_event_type_is_rejected() -> None:
    assert paths(raw("trace-update", {"id": "t"})) == [["type"]]


@pytest.mark.parametrize(
    ("event_type", "observation_type"),
    [
        ("event-create", ObservationType.EVENT),
        ("span-create", ObservationType.SPAN),
        ("span-update", ObservationType.SPAN),
        ("generation-create", ObservationType.GENERATION),
        ("generation-update", ObservationType.GENERATION),
        ("agent-create", ObservationType.AGENT),
        ("tool-create", ObservationType.TOOL),
        ("chain-create", ObservationType.CHAIN),
        ("retriever-create", ObservationType.RETRIEVER),
        ("evaluator-create", ObservationType.EVALUATOR),
        ("embedding-create", ObservationType.EMBEDDING),
        ("guardrail-create", ObservationType.GUARDRAIL),
    ],
)
def test_every_observation_event_type_maps_to_its_observation_type(
    event_type: str, observation_type: ObservationType
) -> None:
    assert ok(event_type, {"id": "o"}).type is observation_type


def test_body_must_be_an_object() -> None:
    assert paths(raw("trace-create", [1])) == [["body"]]


# ============================================================================ trace-create


def test_trace_name_is_at_most_1000_chars() -> None:
    assert ok("trace-create", {"id": "t", "name": "n" * 1000}).name == "n" * 1000
    assert paths(raw("trace-create", {"id": "t", "name": "n" * 1001})) == [["body", "name"]]


def test_trace_tags_are_an_array_of_strings() -> None:
    assert paths(raw("trace-create", {"id": "t", "tags": "a,b"})) == [["body", "tags"]]
    issues = rejected(raw("trace-create", {"id": "t", "tags": ["a", 1, None]}))
    assert [i["path"] for i in issues] == [["body", "tags", 1], ["body", "tags", 2]]
    assert issues[0]["message"] == "Invalid input: expected string, received number"


def test_trace_public_is_a_boolean() -> None:
    assert paths(raw("trace-create", {"id": "t", "public": "yes"})) == [["body", "public"]]


@pytest.mark.parametrize("key", ["externalId", "sessionId", "userId", "release", "version", "name"])
def test_trace_string_fields_are_strings(key: str) -> None:
    assert paths(raw("trace-create", {"id": "t", key: 1})) == [["body", key]]


def test_trace_body_id_is_optional_but_follows_the_id_rules() -> None:
    assert ok("trace-create", {"name": "no id"}).id is None
    assert paths(raw("trace-create", {"id": ""})) == [["body", "id"]]


# ============================================================================ observations


@pytest.mark.parametrize(
    "event_type", ["event-create", "span-create", "span-update", "generation-update", "tool-create"]
)
def test_observation_body_id_is_required(event_type: str) -> None:
    assert paths(raw(event_type, {"name": "x"})) == [["body", "id"]]


@pytest.mark.parametrize("trace_id", ["", "a\rb", "x" * 801])
def test_observation_trace_id_follows_the_id_rules(trace_id: str) -> None:
    assert paths(raw("span-create", {"id": "s", "traceId": trace_id})) == [["body", "traceId"]]


def test_fields_foreign_to_the_event_type_are_stripped_not_checked() -> None:
    # An event has no endTime, a span no generation fields: zod drops unknown keys.
    event = ok("event-create", {"id": "e", "endTime": "bad", "model": 5})
    assert event.end_time is None and event.model is UNSET
    span = ok("span-create", {"id": "s", "completionStartTime": "bad", "usage": "x"})
    assert span.completion_start_time is None and span.usage is None


def test_level_is_a_case_sensitive_enum() -> None:
    assert ok("span-create", {"id": "s", "level": "WARNING"}).level is Level.WARNING
    issues = rejected(raw("span-create", {"id": "s", "level": "warn"}))
    assert issues[0]["message"] == (
        'Invalid option: expected one of "DEBUG"|"DEFAULT"|"WARNING"|"ERROR"'
    )


@pytest.mark.parametrize(
    "key", ["name", "statusMessage", "parentObservationId", "version", "model"]
)
def test_observation_string_fields_are_strings(key: str) -> None:
    assert paths(raw("generation-create", {"id": "g", key: 1})) == [["body", key]]


@pytest.mark.parametrize("key", ["startTime", "endTime", "completionStartTime"])
def test_observation_times_are_iso_datetimes_with_offset(key: str) -> None:
    assert paths(raw("generation-create", {"id": "g", key: "2025-03-01T10:00:00"})) == [
        ["body", key]
    ]


def test_model_parameters_are_scalars_string_lists_or_string_maps() -> None:
    params = {"t": 0.2, "stop": ["\n"], "extra": {"k": "v"}, "n": None, "stream": True}
    assert ok("generation-create", {"id": "g", "modelParameters": params}).model_parameters
    assert paths(raw("generation-create", {"id": "g", "modelParameters": {"a": {"b": 1}}})) == [
        ["body", "modelParameters", "a"]
    ]


def test_legacy_model_parameters_are_scalars_only() -> None:
    body = {"id": "o", "type": "GENERATION", "modelParameters": {"stop": ["\n"]}}
    assert paths(raw("observation-create", body)) == [["body", "modelParameters", "stop"]]


@pytest.mark.parametrize(
    ("prompt", "valid"),
    [
        ({"promptName": "p", "promptVersion": 2}, True),
        ({}, True),
        ({"promptName": "p"}, False),
        ({"promptVersion": 2}, False),
        ({"promptName": "p", "promptVersion": 0}, False),
    ],
)
def test_prompt_name_and_version_come_together(prompt: dict[str, Any], valid: bool) -> None:
    event = raw("generation-create", {"id": "g", **prompt})
    if valid:
        assert not isinstance(parse_event(event), EventError)
    else:
        assert paths(event) == [["body"]]


def test_prompt_version_is_an_integer() -> None:
    issues = rejected(
        raw("generation-create", {"id": "g", "promptName": "p", "promptVersion": 1.5})
    )
    assert issues[0]["message"] == "Invalid input: expected int, received number"


@pytest.mark.parametrize(
    ("usage", "path", "message"),
    [
        (
            {"input": 1.5},
            ["body", "usage", "input"],
            "Invalid input: expected int, received number",
        ),
        (
            {"totalTokens": "9"},
            ["body", "usage", "totalTokens"],
            "Invalid input: expected number, received string",
        ),
        (
            {"inputCost": True},
            ["body", "usage", "inputCost"],
            "Invalid input: expected number, received boolean",
        ),
        (
            {"unit": "BANANAS"},
            ["body", "usage", "unit"],
            'Invalid option: expected one of "CHARACTERS"|"TOKENS"|"MILLISECONDS"|"SECONDS"'
            '|"IMAGES"|"REQUESTS"',
        ),
        ([1, 2], ["body", "usage"], "Invalid input: expected object, received array"),
    ],
)
def test_legacy_usage_object_is_typed(usage: Any, path: list[Any], message: str) -> None:
    issues = rejected(raw("generation-create", {"id": "g", "usage": usage}))
    assert [(i["path"], i["message"]) for i in issues] == [(path, message)]


def test_legacy_usage_object_accepts_both_shapes_and_unknown_keys() -> None:
    for usage in (
        {"input": 10, "output": 2.0, "total": None, "unit": "TOKENS", "inputCost": 0.5},
        {"promptTokens": 10, "completionTokens": 2, "totalTokens": 12},
        {"somethingElse": "ignored"},
    ):
        assert ok("generation-create", {"id": "g", "usage": usage}).usage == usage


def test_usage_details_and_cost_details_entries_are_filtered_not_refused() -> None:
    body = {"id": "g", "usageDetails": {"input": -1, "x": "7"}, "costDetails": {"input": "x"}}
    assert not isinstance(parse_event(raw("generation-create", body)), EventError)


@pytest.mark.parametrize("observation_type", ["GENERATION", "SPAN", "EVENT"])
def test_legacy_observation_type_is_generation_span_or_event(observation_type: str) -> None:
    event = ok("observation-create", {"id": "o", "type": observation_type})
    assert event.type is ObservationType(observation_type)
    assert event.is_update is False
    assert ok("observation-update", {"id": "o", "type": observation_type}).is_update is True


@pytest.mark.parametrize("observation_type", ["AGENT", "TOOL", "span", None])
def test_legacy_observation_refuses_other_types(observation_type: Any) -> None:
    issues = rejected(raw("observation-create", {"id": "o", "type": observation_type}))
    assert issues[0]["path"] == ["body", "type"]
    assert issues[0]["message"] == 'Invalid option: expected one of "GENERATION"|"SPAN"|"EVENT"'


def test_legacy_observation_body_id_is_optional() -> None:
    assert ok("observation-create", {"type": "SPAN"}).id is None


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (None, "default"),
        ("Production", "production"),
        ("langfuse-prod", "prod"),
        ("has space", "default"),
        ("e" * 50, "e" * 40),
    ],
)
def test_environment_is_normalised_with_default(environment: Any, expected: str) -> None:
    body = {"id": "t"} if environment is None else {"id": "t", "environment": environment}
    assert ok("trace-create", body).environment == expected


# ============================================================================ score-create


def test_score_name_is_a_required_non_empty_string() -> None:
    assert paths(raw("score-create", {**SCORE, "name": ""})) == [["body", "name"]]
    body = dict(SCORE)
    del body["name"]
    assert paths(raw("score-create", body)) == [["body", "name"]]


@pytest.mark.parametrize(
    ("target", "valid"),
    [
        ({"traceId": "t"}, True),
        ({"traceId": "t", "observationId": "o"}, True),
        ({"sessionId": "s"}, True),
        ({"datasetRunId": "r"}, True),
        ({}, False),
        ({"observationId": "o"}, False),
        ({"traceId": "t", "sessionId": "s"}, False),
        ({"sessionId": "s", "observationId": "o"}, False),
    ],
)
def test_score_targets_exactly_one_of_trace_session_or_dataset_run(
    target: dict[str, Any], valid: bool
) -> None:
    event = raw("score-create", {"id": "sc", "name": "n", "value": 1, **target})
    if valid:
        assert not isinstance(parse_event(event), EventError)
    else:
        assert [i["message"] for i in rejected(event)] == [SCORE_TARGET_MESSAGE]


@pytest.mark.parametrize(
    ("data_type", "value", "valid"),
    [
        ("NUMERIC", 0.5, True),
        ("NUMERIC", "0.5", False),
        ("CATEGORICAL", "good", True),
        ("CATEGORICAL", 1, False),
        ("BOOLEAN", 1, True),
        ("BOOLEAN", 2, False),
        ("TEXT", "free", True),
        ("TEXT", "", False),
        (None, 3, True),
        (None, "label", True),
        (None, None, False),
    ],
)
def test_score_value_matches_its_data_type(data_type: Any, value: Any, valid: bool) -> None:
    body: dict[str, Any] = {**SCORE, "value": value}
    if data_type is not None:
        body["dataType"] = data_type
    event = raw("score-create", body)
    assert (not isinstance(parse_event(event), EventError)) is valid


@pytest.mark.parametrize("data_type", [None, "NUMERIC", "BOOLEAN"])
def test_score_value_is_never_a_json_boolean(data_type: Any) -> None:
    body: dict[str, Any] = {**SCORE, "value": True}
    if data_type is not None:
        body["dataType"] = data_type
    assert paths(raw("score-create", body)) == [["body", "value"]]


def test_score_without_data_type_infers_numeric_or_categorical() -> None:
    assert ok("score-create", SCORE).data_type is ScoreDataType.NUMERIC
    categorical = ok("score-create", {**SCORE, "value": "good"})
    assert (categorical.data_type, categorical.string_value) == (ScoreDataType.CATEGORICAL, "good")


def test_score_source_is_an_enum_defaulting_to_api() -> None:
    assert ok("score-create", SCORE).source is ScoreSource.API
    assert ok("score-create", {**SCORE, "source": "EVAL"}).source is ScoreSource.EVAL
    assert paths(raw("score-create", {**SCORE, "source": "SDK"})) == [["body", "source"]]


# ============================================================================ sdk-log, scope


def test_sdk_log_needs_a_log_value() -> None:
    assert ok("sdk-log", {"log": {"msg": "x"}}).kind is EntityKind.SDK_LOG
    assert paths(raw("sdk-log", {})) == [["body", "log"]]


@pytest.mark.parametrize(
    ("event_type", "body", "project", "scores"),
    [
        ("trace-create", {"id": "t"}, True, False),
        ("span-create", {"id": "s"}, True, False),
        ("score-create", SCORE, True, True),
        ("sdk-log", {"log": "x"}, True, True),
    ],
)
def test_scope_check_scores_keys_write_scores_and_logs_only(
    event_type: str, body: dict[str, Any], project: bool, scores: bool
) -> None:
    event = ok(event_type, body)
    assert is_authorized(event, "project") is project
    assert is_authorized(event, "scores") is scores
    assert is_authorized(event, "organization") is (event_type == "sdk-log")


def test_scope_denial_is_a_401_authentication_error() -> None:
    entry = EventError.access_denied("e-1").to_dict()
    assert entry == {
        "id": "e-1",
        "status": 401,
        "message": "Authentication error",
        "error": "Access Scope Denied",
    }


def test_a_bad_event_never_rejects_its_neighbours() -> None:
    events, errors = parse_batch(
        [raw("trace-create", {"id": "t"}), raw("span-create", {}), raw("trace-create", {"id": "u"})]
    )
    assert [e.id for e in events] == ["t", "u"] and len(errors) == 1


# ============================================================================ ordering, grouping


def test_batch_sorts_non_updates_by_timestamp_then_updates_by_timestamp() -> None:
    events = [
        ok("span-update", {"id": "s"}, seconds=1),
        ok("trace-create", {"id": "t"}, seconds=5),
        ok("observation-update", {"id": "o", "type": "SPAN"}, seconds=0),
        ok("span-create", {"id": "s"}, seconds=3),
    ]
    ordered = sort_events(events)
    assert [(e.event_type, e.timestamp) for e in ordered] == [
        ("span-create", at(3)),
        ("trace-create", at(5)),
        ("observation-update", at(0)),
        ("span-update", at(1)),
    ]


def test_events_group_by_entity_type_and_body_id() -> None:
    events = [
        ok("trace-create", {"id": "x"}),
        ok("span-create", {"id": "x"}),
        ok("generation-update", {"id": "x"}),
        ok("score-create", {**SCORE, "id": "x"}),
        ok("sdk-log", {"log": "ignored"}),
        ok("trace-create", {"name": "no body id"}),
    ]
    groups = group_events(events)
    assert {key: len(group) for key, group in groups.items()} == {
        (EntityKind.TRACE, "x"): 1,
        (EntityKind.OBSERVATION, "x"): 2,
        (EntityKind.SCORE, "x"): 1,
    }


def test_events_without_body_id_are_accepted_but_never_processed() -> None:
    event = ok("trace-create", {"name": "orphan"})
    assert not merge([event]).traces


# ============================================================================ merge: order


def test_merge_sorts_by_envelope_time_with_creates_first_on_ties() -> None:
    events = [
        ok("span-update", {"id": "s", "name": "update"}, seconds=0),
        ok("span-create", {"id": "s", "name": "create"}, seconds=0),
    ]
    assert merge(events).observations[0].name == "update"
    later_create = [
        ok("span-create", {"id": "s", "name": "create"}, seconds=1),
        ok("span-update", {"id": "s", "name": "update"}, seconds=0),
    ]
    assert merge(later_create).observations[0].name == "create"


def test_repeated_body_ids_fold_into_one_row() -> None:
    result = merge(
        [
            ok("trace-create", {"id": "t", "name": "a"}, seconds=0),
            ok("trace-create", {"id": "t", "userId": "u"}, seconds=1),
            ok("trace-create", {"id": "t", "name": "b"}, seconds=2),
        ]
    )
    assert [(t.name, t.user_id) for t in result.traces] == [("b", "u")]


# ============================================================================ merge: traces


def test_trace_immutable_keys_keep_the_first_defined_value() -> None:
    first = merge(
        [ok("trace-create", {"id": "t", "timestamp": iso(10), "environment": "prod"}, seconds=10)]
    )
    second = merge(
        [ok("trace-create", {"id": "t", "timestamp": iso(0), "environment": "dev"}, seconds=20)],
        stored=first,
    )
    trace = second.traces[0]
    assert (trace.timestamp, trace.environment, trace.created_at) == (at(10), "prod", NOW)


def test_trace_timestamp_is_the_body_timestamp_else_the_envelope_time() -> None:
    assert merge([ok("trace-create", {"id": "t", "timestamp": iso(3)}, 9)]).traces[
        0
    ].timestamp == at(3)
    assert merge([ok("trace-create", {"id": "t"}, 9)]).traces[0].timestamp == at(9)


def test_trace_explicit_null_erases_name_user_session_release_version() -> None:
    body = {"id": "t", "name": "n", "userId": "u", "sessionId": "s", "release": "r", "version": "v"}
    first = merge([ok("trace-create", body)])
    nulls = {key: None for key in body if key != "id"}
    erased = merge([ok("trace-create", {"id": "t", **nulls}, 1)], stored=first).traces[0]
    assert (erased.name, erased.user_id, erased.session_id, erased.release, erased.version) == (
        None,
        None,
        None,
        None,
        None,
    )
    kept = merge([ok("trace-create", {"id": "t"}, 1)], stored=first).traces[0]
    assert (kept.name, kept.user_id, kept.session_id) == ("n", "u", "s")


def test_trace_metadata_is_deep_merged() -> None:
    result = merge(
        [
            ok("trace-create", {"id": "t", "metadata": {"a": {"x": 1}, "b": 1}}, 0),
            ok("trace-create", {"id": "t", "metadata": {"a": {"y": 2}}}, 1),
            ok("trace-create", {"id": "t", "metadata": {}}, 2),
        ]
    )
    assert result.traces[0].metadata == {"a": {"x": 1, "y": 2}, "b": 1}


def test_non_object_metadata_lands_under_key_metadata() -> None:
    trace = merge([ok("trace-create", {"id": "t", "metadata": [1, 2]})]).traces[0]
    assert trace.metadata == {"metadata": "[1,2]"}


def test_trace_tags_are_the_sorted_union() -> None:
    first = merge([ok("trace-create", {"id": "t", "tags": ["b", "a"]})])
    second = merge([ok("trace-create", {"id": "t", "tags": ["c", "a"]}, 1)], stored=first)
    assert second.traces[0].tags == ["a", "b", "c"]


def test_input_output_are_the_last_truthy_value_of_the_batch_else_the_stored_one() -> None:
    first = merge([ok("trace-create", {"id": "t", "input": "stored", "output": {"o": 1}})])
    second = merge(
        [
            ok("trace-create", {"id": "t", "input": "new"}, 1),
            ok("trace-create", {"id": "t", "input": "", "output": 0}, 2),
        ],
        stored=first,
    )
    assert (second.traces[0].input, second.traces[0].output) == ("new", {"o": 1})


def test_trace_public_absent_keeps_the_stored_flag_deliberately() -> None:
    first = merge([ok("trace-create", {"id": "t", "public": True})])
    assert merge([ok("trace-create", {"id": "t"}, 1)], stored=first).traces[0].public is True
    off = merge([ok("trace-create", {"id": "t", "public": False}, 1)], stored=first)
    assert off.traces[0].public is False


def test_session_is_upserted_from_the_last_trace_event_naming_one() -> None:
    result = merge(
        [
            ok("trace-create", {"id": "t", "sessionId": "s1", "environment": "prod"}, 0),
            ok("trace-create", {"id": "t", "sessionId": "s2", "environment": "dev"}, 1),
            ok("trace-create", {"id": "t", "sessionId": None}, 2),
        ]
    )
    assert result.traces[0].session_id is None
    # Upstream reads the session from the events (with the event's environment), not the row.
    assert result.sessions == [Session("s2", PROJECT, NOW, "dev")]


def test_created_at_is_the_stored_value_else_the_processing_time() -> None:
    stored = dataclasses.replace(merge([ok("trace-create", {"id": "t"})]).traces[0])
    stored.created_at = at(-100)
    again = merge_batch(PROJECT, [ok("trace-create", {"id": "t"}, 1)], {"t": stored}, {}, {}, NOW)
    assert again.traces[0].created_at == at(-100)
    assert merge([ok("trace-create", {"id": "u"})]).traces[0].created_at == NOW


# ============================================================================ merge: observations


def test_observation_immutable_keys_keep_the_first_defined_value() -> None:
    first = merge(
        [ok("span-create", {"id": "s", "traceId": "t1", "startTime": iso(1), "environment": "a"})]
    )
    second = merge(
        [
            ok(
                "span-update",
                {"id": "s", "traceId": "t2", "startTime": iso(5), "environment": "b"},
                9,
            )
        ],
        stored=first,
    )
    obs = second.observations[0]
    assert (obs.trace_id, obs.start_time, obs.environment) == ("t1", at(1), "a")


def test_observation_start_time_is_the_body_start_time_else_the_envelope_time() -> None:
    assert merge([ok("span-create", {"id": "s", "startTime": iso(2)}, 7)]).observations[
        0
    ].start_time == at(2)
    assert merge([ok("span-create", {"id": "s"}, 7)]).observations[0].start_time == at(7)


def test_observation_explicit_null_erases_name_level_and_model() -> None:
    first = merge(
        [ok("generation-create", {"id": "g", "name": "n", "level": "ERROR", "model": "m"})]
    )
    obs = merge(
        [ok("generation-update", {"id": "g", "name": None, "level": None, "model": None}, 1)],
        stored=first,
    ).observations[0]
    assert (obs.name, obs.level, obs.model) == (None, Level.DEFAULT, None)


def test_observation_null_never_erases_status_parent_version_and_times() -> None:
    body = {
        "id": "g",
        "statusMessage": "s",
        "parentObservationId": "p",
        "version": "v",
        "endTime": iso(5),
        "completionStartTime": iso(2),
    }
    first = merge([ok("generation-create", body)])
    nulls = {key: None for key in body if key != "id"}
    obs = merge([ok("generation-update", {"id": "g", **nulls}, 1)], stored=first).observations[0]
    assert (obs.status_message, obs.parent_observation_id, obs.version) == ("s", "p", "v")
    assert (obs.end_time, obs.completion_start_time) == (at(5), at(2))


def test_empty_usage_and_cost_maps_never_erase() -> None:
    first = merge(
        [
            ok(
                "generation-create",
                {"id": "g", "usageDetails": {"input": 3}, "costDetails": {"input": 1.0}},
            )
        ]
    )
    obs = merge(
        [ok("generation-update", {"id": "g", "usageDetails": {}, "costDetails": {}}, 1)],
        stored=first,
    ).observations[0]
    assert obs.provided_usage_details and obs.provided_usage_details["input"] == 3
    assert obs.provided_cost_details and obs.provided_cost_details["input"] == 1.0


def test_end_time_before_start_time_is_clamped_to_start_time() -> None:
    obs = merge([ok("span-create", {"id": "s", "startTime": iso(5), "endTime": iso(1)})])
    assert obs.observations[0].end_time == at(5)


def test_level_defaults_to_default() -> None:
    assert merge([ok("span-create", {"id": "s"})]).observations[0].level is Level.DEFAULT


def test_missing_trace_id_creates_a_wrapper_trace_with_the_observation_id() -> None:
    result = merge([ok("span-create", {"id": "s", "startTime": iso(4), "environment": "prod"})])
    assert result.observations[0].trace_id == "s"
    wrapper = result.traces[0]
    assert (wrapper.id, wrapper.timestamp, wrapper.environment) == ("s", at(4), "prod")


def test_prompt_follows_the_last_event_with_name_and_version() -> None:
    obs = merge(
        [
            ok("generation-create", {"id": "g", "promptName": "a", "promptVersion": 1}, 0),
            ok("generation-update", {"id": "g", "promptName": "b", "promptVersion": 2}, 1),
            ok("generation-update", {"id": "g"}, 2),
        ]
    ).observations[0]
    assert (obs.prompt_name, obs.prompt_version) == ("b", 2)


def test_update_types_never_retype_a_created_observation_deliberately() -> None:
    obs = merge(
        [ok("agent-create", {"id": "a"}, 0), ok("span-update", {"id": "a", "name": "x"}, 1)]
    ).observations[0]
    assert (obs.type, obs.name) == (ObservationType.AGENT, "x")


# ============================================================================ merge: scores


def test_score_immutable_keys_keep_the_first_defined_value() -> None:
    first = merge([ok("score-create", {**SCORE, "traceId": "t1", "environment": "a"})])
    second = merge(
        [ok("score-create", {**SCORE, "traceId": "t2", "environment": "b", "value": 2}, 1)],
        stored=first,
    )
    score = second.scores[0]
    assert (score.trace_id, score.environment, score.value) == ("t1", "a", 2.0)


def test_score_later_values_win() -> None:
    result = merge(
        [
            ok("score-create", {**SCORE, "comment": "first", "source": "EVAL"}, 0),
            ok("score-create", {**SCORE, "value": 0, "comment": "second"}, 1),
        ]
    )
    score = result.scores[0]
    assert (score.value, score.comment, score.source) == (0.0, "second", ScoreSource.API)


def test_score_queue_id_is_cleared_by_an_event_without_one() -> None:
    first = merge([ok("score-create", {**SCORE, "queueId": "q"})])
    assert first.scores[0].queue_id == "q"
    assert merge([ok("score-create", SCORE, 1)], stored=first).scores[0].queue_id is None


def test_score_metadata_is_deep_merged() -> None:
    result = merge(
        [
            ok("score-create", {**SCORE, "metadata": {"a": {"x": 1}}}, 0),
            ok("score-create", {**SCORE, "metadata": {"a": {"y": 2}}}, 1),
        ]
    )
    assert result.scores[0].metadata == {"a": {"x": 1, "y": 2}}


def test_every_event_type_is_covered_by_these_rules() -> None:
    assert {t.value for t in EventType} == {
        "trace-create",
        "score-create",
        "event-create",
        "span-create",
        "span-update",
        "generation-create",
        "generation-update",
        "agent-create",
        "tool-create",
        "chain-create",
        "retriever-create",
        "evaluator-create",
        "embedding-create",
        "guardrail-create",
        "sdk-log",
        "observation-create",
        "observation-update",
    }
