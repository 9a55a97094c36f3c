"""Parsing and validation of legacy ingestion events (core/domain/ingestion.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.ingestion import (
    SCORE_TARGET_MESSAGE,
    UNSET,
    EntityKind,
    EventError,
    EventType,
    InvalidEvent,
    ObservationEvent,
    ScoreEvent,
    SdkLogEvent,
    TraceEvent,
    group_events,
    is_authorized,
    parse_batch,
    parse_datetime,
    parse_event,
    parse_score_request,
    sort_events,
)
from fathom.core.domain.scores import ScoreDataType, ScoreSource
from fathom.core.domain.tracing import Level, ObservationType

TS = "2025-03-01T10:00:00.000Z"
TS_DT = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def envelope(
    event_type: str, body: Any, *, event_id: str = "ev-1", timestamp: Any = TS
) -> dict[str, Any]:
    return {"id": event_id, "timestamp": timestamp, "type": event_type, "body": body}


def ok(event_type: str, body: dict[str, Any], **kwargs: Any) -> Any:
    result = parse_event(envelope(event_type, body, **kwargs))
    assert not isinstance(result, EventError), result.error
    return result


def err(raw: Any, **kwargs: Any) -> EventError:
    result = parse_event(raw, **kwargs)
    assert isinstance(result, EventError), result
    return result


def issue_paths(error: EventError) -> list[list[Any]]:
    return [issue["path"] for issue in json.loads(error.error)]


def score(body: dict[str, Any]) -> ScoreEvent | EventError:
    return parse_event(envelope("score-create", {"id": "s-1", "name": "quality", **body}))


# ---------------------------------------------------------------------------- every event type

OBSERVATION_CASES = [
    ("event-create", ObservationType.EVENT, False),
    ("span-create", ObservationType.SPAN, False),
    ("span-update", ObservationType.SPAN, True),
    ("generation-create", ObservationType.GENERATION, False),
    ("generation-update", ObservationType.GENERATION, True),
    ("agent-create", ObservationType.AGENT, False),
    ("tool-create", ObservationType.TOOL, False),
    ("chain-create", ObservationType.CHAIN, False),
    ("retriever-create", ObservationType.RETRIEVER, False),
    ("evaluator-create", ObservationType.EVALUATOR, False),
    ("embedding-create", ObservationType.EMBEDDING, False),
    ("guardrail-create", ObservationType.GUARDRAIL, False),
]


@pytest.mark.parametrize(("event_type", "obs_type", "is_update"), OBSERVATION_CASES)
def test_observation_event_types_parse(
    event_type: str, obs_type: ObservationType, is_update: bool
) -> None:
    event = ok(
        event_type,
        {
            "id": "obs-1",
            "traceId": "trace-1",
            "name": "step",
            "startTime": "2025-03-01T09:59:59.500Z",
            "input": {"q": "hi"},
            "output": "there",
            "metadata": {"k": "v"},
            "level": "WARNING",
            "statusMessage": "slow",
            "parentObservationId": "obs-0",
            "version": "v1",
            "environment": "staging",
        },
    )
    assert isinstance(event, ObservationEvent)
    assert event.kind is EntityKind.OBSERVATION
    assert (event.event_id, event.event_type, event.timestamp) == ("ev-1", event_type, TS_DT)
    assert (event.id, event.type, event.is_update) == ("obs-1", obs_type, is_update)
    assert event.trace_id == "trace-1"
    assert event.name == "step"
    assert event.start_time == datetime(2025, 3, 1, 9, 59, 59, 500000, tzinfo=UTC)
    assert (event.input, event.output, event.metadata) == ({"q": "hi"}, "there", {"k": "v"})
    assert event.level is Level.WARNING
    assert (event.status_message, event.parent_observation_id, event.version) == (
        "slow",
        "obs-0",
        "v1",
    )
    assert event.environment == "staging"


def test_generation_fields_parse() -> None:
    event = ok(
        "generation-create",
        {
            "id": "gen-1",
            "endTime": "2025-03-01T10:00:02Z",
            "completionStartTime": "2025-03-01T10:00:01+00:00",
            "model": "gpt-4o",
            "modelParameters": {
                "temperature": 0.2,
                "max_tokens": 10,
                "stream": False,
                "stop": ["\n"],
                "extra": {"a": "b"},
                "seed": None,
            },
            "usage": {"input": 1, "output": 2},
            "usageDetails": {"input": 1, "output": 2, "cache_read": 3},
            "costDetails": {"input": 0.1},
            "promptName": "chat",
            "promptVersion": 3,
        },
    )
    assert event.end_time == datetime(2025, 3, 1, 10, 0, 2, tzinfo=UTC)
    assert event.completion_start_time == datetime(2025, 3, 1, 10, 0, 1, tzinfo=UTC)
    assert event.model == "gpt-4o"
    assert event.model_parameters["stop"] == ["\n"]
    # Usage stays raw: the usage module normalises it at merge time.
    assert event.usage == {"input": 1, "output": 2}
    assert event.usage_details == {"input": 1, "output": 2, "cache_read": 3}
    assert event.cost_details == {"input": 0.1}
    assert (event.prompt_name, event.prompt_version) == ("chat", 3)


def test_trace_create_parses() -> None:
    event = ok(
        "trace-create",
        {
            "id": "trace-1",
            "timestamp": "2025-03-01T09:00:00Z",
            "name": "chat",
            "userId": "u1",
            "sessionId": "s1",
            "release": "r1",
            "version": "v1",
            "input": [1, 2],
            "output": {"a": 1},
            "metadata": {"m": {"n": 1}},
            "tags": ["b", "a"],
            "public": True,
            "environment": "prod",
            "externalId": "x",
        },
    )
    assert isinstance(event, TraceEvent)
    assert event.kind is EntityKind.TRACE and not event.is_update
    assert event.id == "trace-1"
    assert event.body_timestamp == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert (event.name, event.user_id, event.session_id) == ("chat", "u1", "s1")
    assert (event.release, event.version, event.public) == ("r1", "v1", True)
    assert (event.input, event.output) == ([1, 2], {"a": 1})
    assert event.metadata == {"m": {"n": 1}}
    assert event.tags == ["b", "a"]
    assert event.environment == "prod"


def test_trace_absent_and_null_fields_differ() -> None:
    absent = ok("trace-create", {"id": "t"})
    nulls = ok(
        "trace-create",
        {"id": "t", "name": None, "userId": None, "sessionId": None, "release": None},
    )
    assert absent.name is UNSET and absent.user_id is UNSET and absent.version is UNSET
    assert nulls.name is None and nulls.user_id is None and nulls.session_id is None
    assert nulls.release is None and nulls.version is UNSET


def test_observation_null_vs_absent_for_verbatim_fields() -> None:
    absent = ok("generation-update", {"id": "g"})
    nulls = ok("generation-update", {"id": "g", "name": None, "level": None, "model": None})
    assert (absent.name, absent.level, absent.model) == (UNSET, UNSET, UNSET)
    assert (nulls.name, nulls.level, nulls.model) == (None, None, None)


def test_trace_without_body_id_is_accepted_but_ungrouped() -> None:
    event = ok("trace-create", {"name": "x"})
    assert event.id is None
    assert group_events([event]) == {}


def test_score_create_parses() -> None:
    event = score(
        {
            "traceId": "t1",
            "observationId": "o1",
            "value": 0.8,
            "comment": "ok",
            "metadata": {"m": 1},
            "environment": "staging",
            "source": "EVAL",
            "configId": "cfg",
            "queueId": "q",
            "executionTraceId": "x",
        }
    )
    assert isinstance(event, ScoreEvent)
    assert event.kind is EntityKind.SCORE
    assert (event.id, event.name, event.timestamp) == ("s-1", "quality", TS_DT)
    assert (event.data_type, event.value, event.string_value) == (ScoreDataType.NUMERIC, 0.8, None)
    assert (event.trace_id, event.observation_id) == ("t1", "o1")
    assert (event.comment, event.metadata, event.environment) == ("ok", {"m": 1}, "staging")
    assert event.source is ScoreSource.EVAL
    assert (event.config_id, event.queue_id, event.execution_trace_id) == ("cfg", "q", "x")


def test_sdk_log_parses() -> None:
    event = ok("sdk-log", {"log": {"msg": "hello"}})
    assert isinstance(event, SdkLogEvent)
    assert event.kind is EntityKind.SDK_LOG and event.log == {"msg": "hello"}
    assert group_events([event]) == {}
    error = err(envelope("sdk-log", {}))
    assert issue_paths(error) == [["body", "log"]]


@pytest.mark.parametrize(
    ("event_type", "obs_type", "is_update"),
    [("observation-create", "GENERATION", False), ("observation-update", "EVENT", True)],
)
def test_legacy_observation_events_take_type_from_body(
    event_type: str, obs_type: str, is_update: bool
) -> None:
    event = ok(
        event_type,
        {
            "id": "o",
            "type": obs_type,
            "model": "m",
            "usage": {"promptTokens": 1},
            "modelParameters": {"t": 1},
        },
    )
    assert event.type == ObservationType(obs_type) and event.is_update is is_update
    assert event.model == "m" and event.usage == {"promptTokens": 1}


def test_legacy_observation_rules() -> None:
    # Legacy bodies may omit the id (accepted, never processed) but need a known type.
    assert ok("observation-create", {"type": "SPAN"}).id is None
    assert issue_paths(err(envelope("observation-create", {"id": "o"}))) == [["body", "type"]]
    assert issue_paths(err(envelope("observation-create", {"id": "o", "type": "FOO"}))) == [
        ["body", "type"]
    ]
    # Legacy model parameters are scalars only.
    bad = envelope("observation-create", {"type": "SPAN", "modelParameters": {"stop": ["x"]}})
    assert issue_paths(err(bad)) == [["body", "modelParameters", "stop"]]


def test_fields_foreign_to_the_event_type_are_ignored() -> None:
    # zod strips unknown keys: a span carries no model, an event no end time.
    span = ok("span-create", {"id": "s", "model": 12, "usage": "bad"})
    assert span.model is UNSET and span.usage is None
    event = ok("event-create", {"id": "e", "endTime": "garbage"})
    assert event.end_time is None


def test_experiment_attributes_are_kept() -> None:
    experiment = {"id": "run-1", "item_id": "item-1"}
    event = ok("span-create", {"id": "s", "experiment": experiment})
    assert event.experiment == experiment
    assert ok("span-create", {"id": "s", "experiment": {}}).experiment is None


# ---------------------------------------------------------------------------- envelope errors


def test_error_shape_matches_langfuse() -> None:
    error = err(envelope("span-create", {"id": "s", "name": 3}))
    assert error.to_dict() == {
        "id": "ev-1",
        "status": 400,
        "message": "Invalid request data",
        "error": error.error,
    }
    issues = json.loads(error.error)
    assert issues == [
        {
            "code": "invalid_type",
            "path": ["body", "name"],
            "message": "Invalid input: expected string, received number",
        }
    ]


@pytest.mark.parametrize(
    ("raw", "report_id", "path"),
    [
        ({"timestamp": TS, "type": "span-create", "body": {"id": "s"}}, "unknown", ["id"]),
        (envelope("span-create", {"id": "s"}, event_id=""), "", ["id"]),
        (envelope("span-create", {"id": "s"}, event_id="x" * 801), "x" * 801, ["id"]),
        (envelope("span-create", {"id": "s"}, event_id="a\rb"), "a\rb", ["id"]),
        ({"id": 7, "timestamp": TS, "type": "span-create", "body": {"id": "s"}}, "unknown", ["id"]),
        ({"id": "e", "type": "span-create", "body": {"id": "s"}}, "e", ["timestamp"]),
        (
            envelope("span-create", {"id": "s"}, timestamp="2025-03-01T10:00:00"),
            "ev-1",
            ["timestamp"],
        ),
        (envelope("span-create", {"id": "s"}, timestamp="yesterday"), "ev-1", ["timestamp"]),
        (envelope("span-create", {"id": "s"}, timestamp=1700000000), "ev-1", ["timestamp"]),
        (envelope("span-explode", {"id": "s"}), "ev-1", ["type"]),
        ({"id": "e", "timestamp": TS, "body": {}}, "e", ["type"]),
        (envelope("span-create", "not an object"), "ev-1", ["body"]),
        ({"id": "e", "timestamp": TS, "type": "span-create"}, "e", ["body"]),
    ],
)
def test_envelope_errors(raw: dict[str, Any], report_id: str, path: list[Any]) -> None:
    error = err(raw)
    assert (error.id, error.status, error.message) == (report_id, 400, "Invalid request data")
    assert issue_paths(error) == [path]


def test_id_of_exactly_800_chars_is_fine() -> None:
    assert ok("span-create", {"id": "s"}, event_id="x" * 800).event_id == "x" * 800


def test_non_object_event_is_reported_as_unknown() -> None:
    error = err(["not", "an", "event"])
    assert (error.id, error.status) == ("unknown", 400)


def test_unknown_type_message_names_the_type() -> None:
    error = err(envelope("span-explode", {}))
    message = json.loads(error.error)[0]["message"]
    assert '"span-explode"' in message and '"span-create"' in message


def test_all_body_issues_are_reported_together() -> None:
    error = err(
        envelope(
            "generation-create",
            {"name": 1, "startTime": "nope", "level": "LOUD", "modelParameters": []},
            timestamp=None,
        )
    )
    assert issue_paths(error) == [
        ["timestamp"],
        ["body", "id"],
        ["body", "name"],
        ["body", "startTime"],
        ["body", "level"],
        ["body", "modelParameters"],
    ]


@pytest.mark.parametrize(
    ("event_type", "body", "path"),
    [
        ("span-create", {}, ["body", "id"]),  # required for non-legacy observations
        ("span-update", {"id": ""}, ["body", "id"]),
        ("span-create", {"id": "s", "traceId": "t\r"}, ["body", "traceId"]),
        ("span-create", {"id": "s", "endTime": "2025-03-01"}, ["body", "endTime"]),
        ("span-create", {"id": "s", "statusMessage": 5}, ["body", "statusMessage"]),
        ("span-create", {"id": "s", "parentObservationId": ["x"]}, ["body", "parentObservationId"]),
        ("span-create", {"id": "s", "environment": 5}, ["body", "environment"]),
        ("generation-create", {"id": "g", "usage": [1]}, ["body", "usage"]),
        ("generation-create", {"id": "g", "usageDetails": 3}, ["body", "usageDetails"]),
        ("generation-create", {"id": "g", "costDetails": "x"}, ["body", "costDetails"]),
        ("generation-create", {"id": "g", "model": 4}, ["body", "model"]),
        (
            "generation-create",
            {"id": "g", "modelParameters": {"s": [1]}},
            ["body", "modelParameters", "s"],
        ),
        (
            "generation-create",
            {"id": "g", "modelParameters": {"s": {"a": 1}}},
            ["body", "modelParameters", "s"],
        ),
        (
            "generation-create",
            {"id": "g", "promptVersion": 1.5, "promptName": "p"},
            ["body", "promptVersion"],
        ),
        ("trace-create", {"id": "t", "name": "x" * 1001}, ["body", "name"]),
        ("trace-create", {"id": "t", "tags": "a,b"}, ["body", "tags"]),
        ("trace-create", {"id": "t", "tags": ["a", 1]}, ["body", "tags", 1]),
        ("trace-create", {"id": "t", "public": "yes"}, ["body", "public"]),
        ("trace-create", {"id": "t", "timestamp": "2025-03-01T10:00:00"}, ["body", "timestamp"]),
        ("trace-create", {"id": "t", "userId": 1}, ["body", "userId"]),
        ("trace-create", {"id": 5}, ["body", "id"]),
    ],
)
def test_body_field_errors(event_type: str, body: dict[str, Any], path: list[Any]) -> None:
    assert issue_paths(err(envelope(event_type, body))) == [path]


def test_trace_name_of_1000_chars_is_fine() -> None:
    assert ok("trace-create", {"id": "t", "name": "x" * 1000}).name == "x" * 1000


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"promptName": "p", "promptVersion": 2}, True),
        ({}, True),
        ({"promptName": None, "promptVersion": None}, True),
        ({"promptName": "p"}, False),
        ({"promptVersion": 2}, False),
        ({"promptName": "", "promptVersion": 2}, False),
    ],
)
def test_prompt_name_and_version_come_together(body: dict[str, Any], valid: bool) -> None:
    result = parse_event(envelope("generation-create", {"id": "g", **body}))
    assert isinstance(result, ObservationEvent) is valid
    if not valid:
        assert issue_paths(result) == [["body"]]


def test_a_bad_event_does_not_affect_the_others() -> None:
    batch = [
        envelope("span-create", {"id": "a"}, event_id="e1"),
        envelope("span-create", {"id": 1}, event_id="e2"),
        envelope("nope", {}, event_id="e3"),
        envelope("trace-create", {"id": "t"}, event_id="e4"),
    ]
    events, errors = parse_batch(batch)
    assert [e.event_id for e in events] == ["e1", "e4"]
    assert [(e.id, e.status) for e in errors] == [("e2", 400), ("e3", 400)]


# ---------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "default"),
        ("", "default"),
        ("Production", "production"),
        ("staging_eu-1", "staging_eu-1"),
        ("langfuse-prod", "prod"),
        ("langfuse_langfuse-x", "x"),
        ("langfuse", "default"),
        ("has space", "default"),
        ("é", "default"),
        ("a" * 45, "a" * 40),
    ],
)
def test_environment_normalisation(raw: str | None, expected: str) -> None:
    assert ok("span-create", {"id": "s", "environment": raw}).environment == expected
    assert ok("trace-create", {"id": "t", "environment": raw}).environment == expected
    assert score({"traceId": "t", "value": 1, "environment": raw}).environment == expected


def test_missing_environment_is_default() -> None:
    assert ok("span-create", {"id": "s"}).environment == "default"


def test_internal_events_keep_langfuse_environments() -> None:
    raw = envelope("trace-create", {"id": "t", "environment": "langfuse-prompt-experiment"})
    assert parse_event(raw, internal=True).environment == "langfuse-prompt-experiment"
    assert parse_event(raw).environment == "prompt-experiment"


@pytest.mark.parametrize("level", list(Level))
def test_level_enum(level: Level) -> None:
    assert ok("span-update", {"id": "s", "level": level.value}).level is level


# The batch schema is a case-sensitive enum: aliases are for OTLP span attributes only.
@pytest.mark.parametrize("raw", ["LOUD", 3, True, "error", "warn", "INFO", "CRITICAL"])
def test_unknown_level_is_rejected(raw: Any) -> None:
    error = err(envelope("span-update", {"id": "s", "level": raw}))
    assert issue_paths(error) == [["body", "level"]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ({}, None),
        (None, None),
        ("note", {"metadata": "note"}),
        (3, {"metadata": "3"}),
        (2.0, {"metadata": "2"}),
        (True, {"metadata": "true"}),
        ([1, "a"], {"metadata": '[1,"a"]'}),
    ],
)
def test_metadata_becomes_an_object(raw: Any, expected: Any) -> None:
    assert ok("span-create", {"id": "s", "metadata": raw}).metadata == expected
    assert ok("trace-create", {"id": "t", "metadata": raw}).metadata == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-01T10:00:00Z", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00.123Z", datetime(2025, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2025-03-01T10:00:00.123456789Z", datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T12:30:00+02:30", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T05:00:00-05:00", datetime(2025, 3, 1, 10, tzinfo=UTC)),
        ("2025-03-01T10:00:00.5+00:00", datetime(2025, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2025-03-01T10:00:00", None),  # no offset
        ("2025-03-01 10:00:00Z", None),  # no T
        ("2025-03-01", None),
        ("20250301T100000Z", None),
        ("2025-03-01T25:00:00Z", None),
        (1700000000, None),
        (None, None),
    ],
)
def test_parse_datetime(raw: Any, expected: datetime | None) -> None:
    parsed = parse_datetime(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


def test_envelope_timestamp_is_utc() -> None:
    event = ok("span-create", {"id": "s"}, timestamp="2025-03-01T11:00:00+01:00")
    assert event.timestamp == TS_DT and event.timestamp.utcoffset() == timedelta(0)
    assert event.timestamp.tzinfo is UTC
    assert datetime(2025, 3, 1, 11, tzinfo=timezone(timedelta(hours=1))) == event.timestamp


# ---------------------------------------------------------------------------- score rules

TARGET_CASES = [
    ({"traceId": "t"}, True),
    ({"traceId": "t", "observationId": "o"}, True),
    ({"sessionId": "s"}, True),
    ({"datasetRunId": "d"}, True),
    ({}, False),
    ({"observationId": "o"}, False),
    ({"traceId": "t", "sessionId": "s"}, False),
    ({"traceId": "t", "datasetRunId": "d"}, False),
    ({"sessionId": "s", "datasetRunId": "d"}, False),
    ({"sessionId": "s", "observationId": "o"}, False),
    ({"datasetRunId": "d", "observationId": "o"}, False),
    ({"traceId": "", "sessionId": "s"}, True),  # empty strings count as absent
]


@pytest.mark.parametrize(("target", "valid"), TARGET_CASES)
def test_score_targets(target: dict[str, Any], valid: bool) -> None:
    result = score({"value": 1, **target})
    if valid:
        assert isinstance(result, ScoreEvent)
        assert result.trace_id == (target.get("traceId") or None)
        assert result.session_id == target.get("sessionId")
    else:
        assert isinstance(result, EventError) and result.status == 400
        assert [i["message"] for i in json.loads(result.error)] == [SCORE_TARGET_MESSAGE]


VALUE_CASES = [
    # (dataType, value, expected data type, value, string value) — None expected: 400
    ("NUMERIC", 0.5, ScoreDataType.NUMERIC, 0.5, None),
    ("NUMERIC", 3, ScoreDataType.NUMERIC, 3.0, None),
    ("NUMERIC", True, None, None, None),
    ("NUMERIC", "0.5", None, None, None),
    ("NUMERIC", float("nan"), None, None, None),
    ("NUMERIC", float("inf"), None, None, None),
    ("CATEGORICAL", "good", ScoreDataType.CATEGORICAL, None, "good"),
    ("CATEGORICAL", 1, None, None, None),
    ("BOOLEAN", 1, ScoreDataType.BOOLEAN, 1.0, "True"),
    ("BOOLEAN", 0.0, ScoreDataType.BOOLEAN, 0.0, "False"),
    ("BOOLEAN", False, None, None, None),
    ("BOOLEAN", 0.5, None, None, None),
    ("BOOLEAN", "true", None, None, None),
    ("TEXT", "free text", ScoreDataType.TEXT, None, "free text"),
    ("TEXT", "x" * 500, ScoreDataType.TEXT, None, "x" * 500),
    ("TEXT", "", None, None, None),
    ("TEXT", "x" * 501, None, None, None),
    ("TEXT", 5, None, None, None),
    ("CORRECTION", "better answer", ScoreDataType.CORRECTION, None, "better answer"),
    ("CORRECTION", 1, None, None, None),
    (None, 4.5, ScoreDataType.NUMERIC, 4.5, None),
    (None, 2, ScoreDataType.NUMERIC, 2.0, None),
    (None, True, None, None, None),
    (None, "good", ScoreDataType.CATEGORICAL, None, "good"),
    (None, None, None, None, None),
    (None, [1], None, None, None),
    ("PERCENT", 1, None, None, None),
]


@pytest.mark.parametrize(("data_type", "value", "exp_type", "exp_value", "exp_string"), VALUE_CASES)
def test_score_values(
    data_type: str | None,
    value: Any,
    exp_type: ScoreDataType | None,
    exp_value: float | None,
    exp_string: str | None,
) -> None:
    body: dict[str, Any] = {"traceId": "t", "value": value}
    if data_type is not None:
        body["dataType"] = data_type
    result = score(body)
    if exp_type is None:
        assert isinstance(result, EventError)
        assert result.status == 400
        assert issue_paths(result) in ([["body", "value"]], [["body", "dataType"]])
    else:
        assert isinstance(result, ScoreEvent)
        assert (result.data_type, result.value, result.string_value) == (
            exp_type,
            exp_value,
            exp_string,
        )
        assert type(result.value) in (float, type(None))


def test_missing_score_value_is_rejected() -> None:
    result = parse_event(envelope("score-create", {"id": "s", "name": "n", "traceId": "t"}))
    assert issue_paths(result) == [["body", "value"]]


def test_correction_score_rules() -> None:
    event = score({"traceId": "t", "dataType": "CORRECTION", "value": "fixed"})
    assert event.name == "output"
    with_config = score(
        {"traceId": "t", "dataType": "CORRECTION", "value": "fixed", "configId": "c"}
    )
    assert issue_paths(with_config) == [["body", "configId"]]
    on_session = score({"sessionId": "s", "dataType": "CORRECTION", "value": "fixed"})
    assert isinstance(on_session, EventError)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"name": ""}, ["body", "name"]),
        ({"name": None}, ["body", "name"]),
        ({"name": 3}, ["body", "name"]),
        ({"source": "HUMAN"}, ["body", "source"]),
        ({"comment": 3}, ["body", "comment"]),
        ({"id": ""}, ["body", "id"]),
    ],
)
def test_score_field_errors(body: dict[str, Any], path: list[Any]) -> None:
    raw = {"id": "s", "name": "n", "traceId": "t", "value": 1, **body}
    assert issue_paths(err(envelope("score-create", raw))) == [path]


def test_score_name_missing() -> None:
    raw = envelope("score-create", {"traceId": "t", "value": 1})
    assert issue_paths(err(raw)) == [["body", "name"]]


def test_score_defaults() -> None:
    event = score({"traceId": "t", "value": 1})
    assert event.source is ScoreSource.API and event.environment == "default"
    assert event.metadata is None and event.comment is None and event.body_timestamp is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)), ("garbage", None)],
)
def test_score_body_timestamp_is_optional_and_lenient(raw: str, expected: datetime | None) -> None:
    # Not in the schema, so a bad value is ignored like any unknown key.
    event = score({"traceId": "t", "value": 1, "timestamp": raw})
    assert isinstance(event, ScoreEvent) and event.body_timestamp == expected


# ---------------------------------------------------------------------------- POST /scores


def ids() -> Any:
    counter = iter(range(1, 100))
    return lambda: f"gen-{next(counter)}"


NOW = datetime(2025, 5, 5, tzinfo=UTC)


def test_score_request_generates_an_id() -> None:
    event = parse_score_request(
        {"traceId": "t", "name": "n", "value": "good", "dataType": "CATEGORICAL"},
        now=NOW,
        new_id=ids(),
    )
    assert isinstance(event, ScoreEvent)
    assert (event.id, event.event_id, event.timestamp) == ("gen-1", "gen-1", NOW)
    assert (event.data_type, event.string_value) == (ScoreDataType.CATEGORICAL, "good")


def test_score_request_keeps_given_id_and_sdk_timestamp() -> None:
    event = parse_score_request(
        {
            "id": "fixed-score-id",
            "traceId": "t",
            "name": "text-score",
            "value": "free text",
            "dataType": "TEXT",
            "timestamp": "2025-05-05T00:00:01Z",
            "environment": "staging",
        },
        now=NOW,
        new_id=ids(),
    )
    assert event.id == "fixed-score-id"
    assert event.timestamp == NOW
    assert event.body_timestamp == datetime(2025, 5, 5, 0, 0, 1, tzinfo=UTC)
    assert event.environment == "staging"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"sessionId": "s"}, ["traceId"]),
        ({"source": "EVAL"}, ["source"]),
        ({"source": "ANNOTATION"}, ["configId"]),
        ({"metadata": "text"}, ["metadata"]),
        ({"value": "x", "dataType": "NUMERIC"}, ["value"]),
    ],
)
def test_score_request_errors(body: dict[str, Any], path: list[Any]) -> None:
    raw = {"traceId": "t", "name": "n", "value": 1, **body}
    with pytest.raises(InvalidEvent) as caught:
        parse_score_request(raw, now=NOW, new_id=ids())
    assert isinstance(caught.value, InvalidInput)
    assert [list(issue.path) for issue in caught.value.issues] == [path]


def test_score_request_annotation_rules() -> None:
    with_config = parse_score_request(
        {"traceId": "t", "name": "n", "value": 1, "source": "ANNOTATION", "configId": "c"},
        now=NOW,
        new_id=ids(),
    )
    assert with_config.source is ScoreSource.ANNOTATION
    correction = parse_score_request(
        {
            "traceId": "t",
            "name": "n",
            "value": "x",
            "source": "ANNOTATION",
            "dataType": "CORRECTION",
        },
        now=NOW,
        new_id=ids(),
    )
    assert correction.data_type is ScoreDataType.CORRECTION and correction.name == "output"


def test_score_request_must_be_an_object() -> None:
    with pytest.raises(InvalidEvent):
        parse_score_request([1], now=NOW, new_id=ids())


# ------------------------------------------------------------------ scope, sorting, grouping


@pytest.mark.parametrize(
    ("event_type", "body", "project", "scores"),
    [
        ("sdk-log", {"log": "x"}, True, True),
        ("score-create", {"id": "s", "name": "n", "traceId": "t", "value": 1}, True, True),
        ("trace-create", {"id": "t"}, True, False),
        ("span-create", {"id": "s"}, True, False),
    ],
)
def test_is_authorized(event_type: str, body: dict[str, Any], project: bool, scores: bool) -> None:
    event = ok(event_type, body)
    assert is_authorized(event, "project") is project
    assert is_authorized(event, "scores") is scores
    assert is_authorized(event, "organization") is (event_type == "sdk-log")
    assert EventError.access_denied("e").to_dict() == {
        "id": "e",
        "status": 401,
        "message": "Authentication error",
        "error": "Access Scope Denied",
    }


def at(seconds: int) -> str:
    return (TS_DT + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_sort_events_puts_updates_last() -> None:
    raw = [
        envelope("span-update", {"id": "a"}, event_id="u-late", timestamp=at(1)),
        envelope("span-create", {"id": "a"}, event_id="c-late", timestamp=at(5)),
        envelope("generation-update", {"id": "b"}, event_id="u-early", timestamp=at(0)),
        envelope("trace-create", {"id": "t"}, event_id="t-mid", timestamp=at(3)),
        envelope(
            "observation-update", {"id": "c", "type": "SPAN"}, event_id="u-mid", timestamp=at(2)
        ),
        envelope("span-create", {"id": "b"}, event_id="c-early", timestamp=at(-1)),
        envelope(
            "score-create",
            {"id": "s", "name": "n", "traceId": "t", "value": 1},
            event_id="s-tie",
            timestamp=at(3),
        ),
    ]
    events, errors = parse_batch(raw)
    assert not errors
    assert [e.event_id for e in sort_events(events)] == [
        "c-early",
        "t-mid",
        "s-tie",  # ties keep input order
        "c-late",
        "u-early",
        "u-late",
        "u-mid",
    ]


def test_group_events_by_entity_and_body_id() -> None:
    raw = [
        envelope("trace-create", {"id": "x"}, event_id="1"),
        envelope("span-create", {"id": "x"}, event_id="2"),
        envelope("span-update", {"id": "x"}, event_id="3"),
        envelope(
            "score-create", {"id": "x", "name": "n", "traceId": "x", "value": 1}, event_id="4"
        ),
        envelope("sdk-log", {"log": 1}, event_id="5"),
        envelope("trace-create", {}, event_id="6"),
        envelope("generation-create", {"id": "y"}, event_id="7"),
    ]
    events, _ = parse_batch(raw)
    groups = group_events(events)
    assert {key: [e.event_id for e in group] for key, group in groups.items()} == {
        (EntityKind.TRACE, "x"): ["1"],
        (EntityKind.OBSERVATION, "x"): ["2", "3"],
        (EntityKind.SCORE, "x"): ["4"],
        (EntityKind.OBSERVATION, "y"): ["7"],
    }


def test_event_type_vocabulary_is_complete() -> None:
    parsed_types = {case[0] for case in OBSERVATION_CASES} | {
        "trace-create",
        "score-create",
        "sdk-log",
        "observation-create",
        "observation-update",
    }
    assert parsed_types == {t.value for t in EventType}
