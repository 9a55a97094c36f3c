"""OpenTelemetry spans → Langfuse ingestion events (upstream's OtelIngestionProcessor rules)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fathom.core.domain.otel import (
    ResourceSpans,
    Span,
    datetime_to_iso,
    nanos_to_iso,
    spans_to_ingestion_events,
)
from fathom.entrypoints.http.otlp_decode import decode_protobuf

TRACE = "bf0194354e6d2b0cb0834aba2f9bd38b"
ROOT = "378af972d876acf0"
CHILD = "3cc7274a4a5cfb27"
OTHER = "98fa8a61c52989c2"
START = 1_795_337_479_380_233_506
END = 1_795_337_479_380_554_543
START_ISO = "2026-11-22T08:51:19.380233Z"
END_ISO = "2026-11-22T08:51:19.380554Z"
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
RECEIVED_ISO = "2026-11-22T09:00:00.000000Z"
SDK_RESOURCE = {
    "telemetry.sdk.language": "python",
    "telemetry.sdk.name": "opentelemetry",
    "service.name": "unknown_service:python",
}


def span(
    attributes: dict[str, Any] | None = None,
    *,
    span_id: str = ROOT,
    parent: str | None = None,
    trace_id: str = TRACE,
    name: str = "op",
    start: int = START,
    end: int = END,
    status: tuple[int, str] = (0, ""),
    events: list[Any] | None = None,
) -> Span:
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": 1,
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "attributes": attributes or {},
        "events": events or [],
        "status": {"code": status[0], "message": status[1]},
    }


def export(
    *spans: Span,
    scope: str = "langfuse-sdk",
    scope_version: str = "5.0.4",
    resource: dict[str, Any] | None = None,
) -> list[ResourceSpans]:
    return [
        {
            "resource_attributes": SDK_RESOURCE if resource is None else resource,
            "scope_spans": [
                {
                    "scope": {
                        "name": scope,
                        "version": scope_version,
                        "attributes": {"public_key": "pk-lf-1"},
                    },
                    "spans": list(spans),
                }
            ],
        }
    ]


def convert(
    resource_spans: list[ResourceSpans], sdk_version: str | None = "5.0.4"
) -> list[dict[str, Any]]:
    ids = itertools.count()
    return spans_to_ingestion_events(
        resource_spans,
        sdk_version=sdk_version,
        received_at=RECEIVED,
        new_id=lambda: f"event-{next(ids)}",
    )


def observations(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] != "trace-create"]


def traces(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["body"] for event in events if event["type"] == "trace-create"]


def only_observation(events: list[dict[str, Any]]) -> dict[str, Any]:
    [event] = observations(events)
    return event["body"]


# --------------------------------------------------------------------------------------------
# Envelope and times


def test_envelope_ids_and_timestamps() -> None:
    events = convert(export(span({"langfuse.observation.type": "span"})))
    assert [event["id"] for event in events] == ["event-0", "event-1"]
    assert {event["timestamp"] for event in events} == {RECEIVED_ISO}
    assert [event["type"] for event in events] == ["trace-create", "span-create"]
    body = events[1]["body"]
    assert body["startTime"] == START_ISO
    assert body["endTime"] == END_ISO


def test_time_formatting() -> None:
    assert nanos_to_iso(0) == "1970-01-01T00:00:00.000000Z"
    assert nanos_to_iso(1_500_000_999) == "1970-01-01T00:00:01.500000Z"
    assert datetime_to_iso(datetime(2025, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-01-01T12:00:00.000000Z"
    )
    assert datetime_to_iso(datetime(2025, 1, 1)) == "2025-01-01T00:00:00.000000Z"


def test_missing_times_fall_back_to_the_other_edge_then_to_received_at() -> None:
    no_start = only_observation(convert(export(span(start=0))))
    assert (no_start["startTime"], no_start["endTime"]) == (END_ISO, END_ISO)
    no_end = only_observation(convert(export(span(end=0))))
    assert (no_end["startTime"], no_end["endTime"]) == (START_ISO, START_ISO)
    neither = only_observation(convert(export(span(start=0, end=0))))
    assert (neither["startTime"], neither["endTime"]) == (RECEIVED_ISO, RECEIVED_ISO)


# --------------------------------------------------------------------------------------------
# Observation types


@pytest.mark.parametrize(
    ("declared", "event_type"),
    [
        ("span", "span-create"),
        ("generation", "generation-create"),
        ("event", "event-create"),
        ("agent", "agent-create"),
        ("tool", "tool-create"),
        ("chain", "chain-create"),
        ("retriever", "retriever-create"),
        ("evaluator", "evaluator-create"),
        ("guardrail", "guardrail-create"),
        ("embedding", "embedding-create"),
    ],
)
def test_every_langfuse_observation_type(declared: str, event_type: str) -> None:
    attributes = {
        "langfuse.observation.type": declared,
        "langfuse.observation.model.name": "gpt-4o",
        "langfuse.observation.usage_details": '{"input": 1}',
    }
    [event] = observations(convert(export(span(attributes))))
    assert event["type"] == event_type
    body = event["body"]
    # Each body carries only its event type's fields, as the ingestion schemas define them.
    generation_like = declared not in ("span", "event")
    assert ("model" in body) is generation_like
    assert ("usageDetails" in body) is generation_like
    assert ("endTime" in body) is (declared != "event")


@pytest.mark.parametrize(
    ("attributes", "event_type"),
    [
        # Upstream maps the lowercase names only; other spellings fall through.
        ({"langfuse.observation.type": "GENERATION"}, "span-create"),
        ({"openinference.span.kind": "LLM"}, "generation-create"),
        ({"openinference.span.kind": "CHAIN"}, "chain-create"),
        ({"openinference.span.kind": "RETRIEVER"}, "retriever-create"),
        ({"openinference.span.kind": "EMBEDDING"}, "embedding-create"),
        ({"openinference.span.kind": "AGENT"}, "agent-create"),
        ({"openinference.span.kind": "TOOL"}, "tool-create"),
        ({"gen_ai.operation.name": "chat"}, "generation-create"),
        ({"gen_ai.operation.name": "text_completion"}, "generation-create"),
        ({"gen_ai.operation.name": "embeddings"}, "embedding-create"),
        ({"gen_ai.operation.name": "invoke_agent"}, "agent-create"),
        ({"gen_ai.operation.name": "execute_tool"}, "tool-create"),
        ({"gen_ai.tool.name": "search"}, "tool-create"),
        ({"gen_ai.tool.call.id": "call_1"}, "tool-create"),
        ({"gen_ai.request.model": "gpt-4o"}, "generation-create"),
        ({"gen_ai.response.model": "gpt-4o-2024"}, "generation-create"),
        ({"llm.model_name": "claude"}, "generation-create"),
        ({"model": "mistral"}, "generation-create"),
        ({"http.method": "GET"}, "span-create"),
        ({}, "span-create"),
        # An unknown declared type falls through to the next mappers.
        ({"langfuse.observation.type": "weird", "gen_ai.request.model": "x"}, "generation-create"),
        # The explicit Langfuse type wins over every inferred one.
        ({"langfuse.observation.type": "span", "gen_ai.request.model": "x"}, "span-create"),
        ({"openinference.span.kind": "CHAIN", "llm.model_name": "x"}, "chain-create"),
        ({"gen_ai.operation.name": "chat", "gen_ai.tool.name": "t"}, "generation-create"),
    ],
)
def test_type_inference(attributes: dict[str, Any], event_type: str) -> None:
    [event] = observations(convert(export(span(attributes), scope="some-instrumentation")))
    assert event["type"] == event_type


def test_python_sdk_up_to_3_3_sent_generations_as_spans() -> None:
    attributes = {"langfuse.observation.type": "span", "langfuse.observation.model.name": "m"}
    [old] = observations(convert(export(span(attributes), scope_version="3.2.1"), None))
    [new] = observations(convert(export(span(attributes), scope_version="3.4.0"), None))
    assert (old["type"], new["type"]) == ("generation-create", "span-create")


def test_tool_spans_are_named_after_the_tool() -> None:
    body = only_observation(convert(export(span({"gen_ai.tool.name": "search"}, name="x"))))
    assert body["name"] == "search"


# --------------------------------------------------------------------------------------------
# Traces: full, partial, shallow


def test_root_span_makes_a_full_trace() -> None:
    attributes = {
        "langfuse.observation.type": "span",
        "langfuse.observation.input": '{"q": "root-in"}',
        "langfuse.observation.output": '{"a": "root-out"}',
        "langfuse.observation.metadata.rm": '"x"',
        "langfuse.version": "tv2",
        "langfuse.release": "rel-1.2.3",
    }
    [trace] = traces(convert(export(span(attributes, name="root-span"))))
    assert trace == {
        "id": TRACE,
        "timestamp": START_ISO,
        "name": "root-span",
        "metadata": {
            "rm": "x",
            "resourceAttributes": SDK_RESOURCE,
            "scope": {
                "name": "langfuse-sdk",
                "version": "5.0.4",
                "attributes": {"public_key": "pk-lf-1"},
            },
        },
        "version": "tv2",
        "release": "rel-1.2.3",
        "environment": "default",
        "input": {"q": "root-in"},
        "output": {"a": "root-out"},
    }


def test_trace_name_and_io_attributes_win_on_the_root() -> None:
    attributes = {
        "langfuse.trace.name": "cm-trace",
        "langfuse.trace.input": '"trace-in"',
        "langfuse.observation.input": "obs-in",
        "langfuse.observation.output": "obs-out",
    }
    events = convert(export(span(attributes, name="root-span")))
    [trace] = traces(events)
    assert (trace["name"], trace["input"], trace["output"]) == ("cm-trace", "trace-in", "obs-out")
    body = only_observation(events)
    assert (body["name"], body["input"], body["output"]) == ("root-span", "obs-in", "obs-out")


def test_non_root_span_with_trace_attributes_makes_a_partial_trace() -> None:
    attributes = {
        "user.id": "user-2",
        "session.id": "sess-2",
        "langfuse.observation.input": "child-in",
        "langfuse.environment": "staging",
    }
    [trace] = traces(convert(export(span(attributes, span_id=CHILD, parent=ROOT))))
    assert trace == {
        "id": TRACE,
        "timestamp": START_ISO,
        "metadata": {
            "resourceAttributes": SDK_RESOURCE,
            "scope": {
                "name": "langfuse-sdk",
                "version": "5.0.4",
                "attributes": {"public_key": "pk-lf-1"},
            },
        },
        "userId": "user-2",
        "sessionId": "sess-2",
        "environment": "staging",
    }


def test_partial_trace_takes_io_only_from_trace_attributes() -> None:
    attributes = {"langfuse.trace.output": '{"done": true}', "langfuse.observation.input": "x"}
    [trace] = traces(convert(export(span(attributes, span_id=CHILD, parent=ROOT))))
    assert trace["output"] == {"done": True}
    assert "input" not in trace and "name" not in trace


def test_span_without_trace_attributes_makes_a_shallow_trace_once() -> None:
    events = convert(
        export(
            span({"langfuse.environment": "prod"}, span_id=CHILD, parent=ROOT),
            span({}, span_id=OTHER, parent=ROOT),
        )
    )
    assert traces(events) == [{"id": TRACE, "timestamp": START_ISO, "environment": "prod"}]
    assert len(observations(events)) == 2


@pytest.mark.parametrize("root_first", [True, False])
def test_shallow_trace_is_dropped_when_the_call_has_a_fuller_one(root_first: bool) -> None:
    child = span({}, span_id=CHILD, parent=ROOT)
    root = span({"langfuse.observation.type": "span"}, name="root")
    events = convert(export(*([root, child] if root_first else [child, root])))
    [trace] = traces(events)
    assert trace["name"] == "root"
    assert len(observations(events)) == 2


def test_shallow_traces_are_per_trace_id() -> None:
    other_trace = "0" * 31 + "1"
    events = convert(
        export(
            span({}, span_id=CHILD, parent=ROOT),
            span({}, span_id=OTHER, parent=ROOT, trace_id=other_trace),
        )
    )
    assert [trace["id"] for trace in traces(events)] == [TRACE, other_trace]


def test_identical_partial_updates_are_sent_once() -> None:
    propagated = {"user.id": "u", "langfuse.trace.tags": ["a"]}
    events = convert(
        export(
            span({**propagated, "langfuse.observation.input": "1"}, span_id=CHILD, parent=ROOT),
            span({**propagated, "langfuse.observation.input": "2"}, span_id=OTHER, parent=ROOT),
            span({**propagated, "user.id": "v"}, span_id="1" * 16, parent=ROOT),
        )
    )
    assert [trace.get("userId") for trace in traces(events)] == ["u", "v"]
    assert len(observations(events)) == 3


def test_partial_updates_from_different_scopes_are_both_sent() -> None:
    propagated = {"user.id": "u"}
    [first] = export(span(propagated, span_id=CHILD, parent=ROOT), scope="langfuse-sdk")
    [second] = export(span(propagated, span_id=OTHER, parent=ROOT), scope="openai-instrumentation")
    resource_spans: list[ResourceSpans] = [
        {
            "resource_attributes": SDK_RESOURCE,
            "scope_spans": first["scope_spans"] + second["scope_spans"],
        }
    ]
    scopes = [trace["metadata"]["scope"]["name"] for trace in traces(convert(resource_spans))]
    assert scopes == ["langfuse-sdk", "openai-instrumentation"]


def test_every_trace_body_gets_the_earliest_start_of_its_trace() -> None:
    # Children are exported before their parents; the consumer keeps the first timestamp.
    child = span({"user.id": "u"}, span_id=CHILD, parent=ROOT, start=START + 5_000_000)
    root = span({}, name="root")
    trace_bodies = traces(convert(export(child, root)))
    assert [trace["timestamp"] for trace in trace_bodies] == [START_ISO, START_ISO]


def test_as_root_span_with_an_unexported_parent_is_the_trace_root() -> None:
    attributes = {"langfuse.internal.as_root": True, "langfuse.observation.input": "in"}
    events = convert(export(span(attributes, span_id=CHILD, parent=OTHER, name="seeded")))
    [trace] = traces(events)
    assert (trace["name"], trace["input"]) == ("seeded", "in")
    assert "parentObservationId" not in only_observation(events)

    string_flag = {"langfuse.internal.as_root": "true"}
    events = convert(export(span(string_flag, span_id=CHILD, parent=OTHER, name="seeded")))
    assert traces(events)[0]["name"] == "seeded"


def test_child_keeps_its_parent() -> None:
    body = only_observation(convert(export(span({}, span_id=CHILD, parent=ROOT))))
    assert (body["id"], body["traceId"], body["parentObservationId"]) == (CHILD, TRACE, ROOT)


# --------------------------------------------------------------------------------------------
# Trace fields


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["alpha", "beta"], ["alpha", "beta"]),
        ('["a", "b"]', ["a", "b"]),
        ("a, b", ["a", "b"]),
        ("solo", ["solo"]),
        ([], None),
    ],
)
def test_tags(tags: Any, expected: list[str] | None) -> None:
    [trace] = traces(convert(export(span({"langfuse.trace.tags": tags}))))
    assert trace.get("tags") == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("true", True), (False, False), ("no", False)]
)
def test_public(value: Any, expected: bool) -> None:
    [trace] = traces(convert(export(span({"langfuse.trace.public": value}))))
    assert trace["public"] is expected


def test_public_is_left_out_when_not_sent() -> None:
    [trace] = traces(convert(export(span({}))))
    assert "public" not in trace


@pytest.mark.parametrize(
    ("span_attributes", "resource", "expected"),
    [
        ({}, {}, "default"),
        ({"langfuse.environment": "staging"}, {}, "staging"),
        ({}, {"langfuse.environment": "from-resource"}, "from-resource"),
        ({"langfuse.environment": "span"}, {"langfuse.environment": "resource"}, "span"),
        ({"deployment.environment.name": "dep-name"}, {}, "dep-name"),
        ({}, {"deployment.environment": "dep"}, "dep"),
        # Key priority beats span-before-resource: langfuse.environment on the resource wins
        # over deployment.environment on the span.
        ({"deployment.environment": "dep"}, {"langfuse.environment": "lf"}, "lf"),
    ],
)
def test_environment(
    span_attributes: dict[str, Any], resource: dict[str, Any], expected: str
) -> None:
    events = convert(export(span(span_attributes), resource=resource))
    assert {event["body"]["environment"] for event in events} == {expected}


def test_release_and_version_fall_back_to_resource_attributes() -> None:
    resource = {"langfuse.release": "r-res", "service.version": "1.0.0"}
    events = convert(export(span({}), resource=resource))
    [trace] = traces(events)
    assert (trace["release"], trace["version"]) == ("r-res", "1.0.0")
    assert only_observation(events)["version"] == "1.0.0"
    events = convert(
        export(span({"langfuse.release": "r", "langfuse.version": "v"}), resource=resource)
    )
    assert (traces(events)[0]["release"], traces(events)[0]["version"]) == ("r", "v")


def test_user_and_session_fallbacks() -> None:
    [trace] = traces(
        convert(
            export(
                span(
                    {
                        "langfuse.user.id": "lf-user",
                        "user.id": "otel-user",
                        "gen_ai.conversation.id": "conv-1",
                    }
                )
            )
        )
    )
    assert (trace["userId"], trace["sessionId"]) == ("lf-user", "conv-1")

    integration = {
        "langfuse.observation.metadata.langfuse_user_id": '"meta-user"',
        "langfuse.trace.metadata.langfuse_session_id": '"meta-session"',
        "langfuse.observation.metadata.langfuse_tags": '["t1"]',
    }
    [trace] = traces(convert(export(span(integration, span_id=CHILD, parent=ROOT))))
    assert (trace["userId"], trace["sessionId"], trace["tags"]) == (
        "meta-user",
        "meta-session",
        ["t1"],
    )


# --------------------------------------------------------------------------------------------
# Metadata


def test_sdk5_metadata_values_are_json_decoded() -> None:
    attributes = {
        "langfuse.observation.metadata.tier": '"gold"',
        "langfuse.observation.metadata.n": "1",
        "langfuse.observation.metadata.text_number": '"123"',
        "langfuse.observation.metadata.obj": '{"x":1}',
        "langfuse.observation.metadata.arr": '[1,"a"]',
        "langfuse.observation.metadata.flag": "true",
        "langfuse.observation.metadata.escaped": '"say \\"hi\\""',
        "langfuse.trace.metadata.plan": '"pro"',
    }
    events = convert(export(span(attributes, span_id=CHILD, parent=ROOT)), "5.0.4")
    metadata = only_observation(events)["metadata"]
    assert {key: metadata[key] for key in attributes_suffixes(attributes, "observation")} == {
        "tier": "gold",
        "n": 1,
        "text_number": "123",
        "obj": {"x": 1},
        "arr": [1, "a"],
        "flag": True,
        "escaped": 'say "hi"',
    }
    [trace] = traces(events)
    assert trace["metadata"]["plan"] == "pro"


def attributes_suffixes(attributes: dict[str, Any], domain: str) -> list[str]:
    prefix = f"langfuse.{domain}.metadata."
    return [key[len(prefix) :] for key in attributes if key.startswith(prefix)]


def test_sdk5_is_also_recognised_from_the_scope_version() -> None:
    attributes = {"langfuse.observation.metadata.tier": '"gold"'}
    metadata = only_observation(convert(export(span(attributes)), None))["metadata"]
    assert metadata["tier"] == "gold"


def test_sdk4_metadata_strings_stay_raw() -> None:
    attributes = {
        "langfuse.observation.metadata.tier": "gold",
        "langfuse.observation.metadata.n": "1",
        "langfuse.observation.metadata.quoted": '"gold"',
        "langfuse.observation.metadata.obj": '{"x": 1}',
        "langfuse.observation.metadata.arr": "[1, 2]",
        "langfuse.observation.metadata.typed": 5,
    }
    events = convert(export(span(attributes), scope_version="4.2.0"), "4.2.0")
    metadata = only_observation(events)["metadata"]
    assert {key: metadata[key] for key in attributes_suffixes(attributes, "observation")} == {
        "tier": "gold",
        "n": "1",
        "quoted": '"gold"',
        "obj": {"x": 1},
        "arr": [1, 2],
        "typed": 5,
    }


def test_whole_metadata_attribute() -> None:
    as_object = {"langfuse.observation.metadata": '{"a": 1, "b": "x"}'}
    assert only_observation(convert(export(span(as_object))))["metadata"]["a"] == 1
    # SDK 5 sends non-dict metadata as one JSON value; upstream drops it (and counts it).
    as_string = {"langfuse.observation.metadata": '"just a string"'}
    assert set(only_observation(convert(export(span(as_string))))["metadata"]) == {
        "resourceAttributes",
        "scope",
    }
    # Per-key attributes win over the whole-object attribute.
    both = {**as_object, "langfuse.observation.metadata.a": "2"}
    assert only_observation(convert(export(span(both))))["metadata"]["a"] == 2


def test_observation_metadata_carries_resource_and_scope() -> None:
    resource = {**SDK_RESOURCE, "langfuse.trace.metadata.from_resource": '"r"'}
    body = only_observation(convert(export(span({}), resource=resource)))
    assert body["metadata"] == {
        "from_resource": "r",
        "resourceAttributes": resource,
        "scope": {
            "name": "langfuse-sdk",
            "version": "5.0.4",
            "attributes": {"public_key": "pk-lf-1"},
        },
    }


def test_foreign_scopes_keep_their_other_attributes_under_attributes() -> None:
    attributes = {
        "http.method": "GET",
        "http.status_code": 200,
        "input.value": "question",
        "gen_ai.prompt.0.content": "hi",
        "langfuse.observation.metadata.k": "v",
        "tags": ["a"],
    }
    events = convert(export(span(attributes), scope="openinference.instrumentation.x"), None)
    body = only_observation(events)
    # Input/output and metadata keys are mapped elsewhere; non-strings are JSON text.
    assert body["metadata"]["attributes"] == {
        "http.method": "GET",
        "http.status_code": "200",
        "tags": '["a"]',
    }
    assert body["metadata"]["k"] == "v"
    assert traces(events)[0]["metadata"]["attributes"] == body["metadata"]["attributes"]


def test_langfuse_sdk_spans_have_no_attributes_entry() -> None:
    body = only_observation(convert(export(span({"http.method": "GET"}))))
    assert "attributes" not in body["metadata"]


def test_root_trace_metadata_includes_observation_metadata_partial_does_not() -> None:
    attributes = {
        "langfuse.observation.metadata.obs": '"o"',
        "langfuse.trace.metadata.tr": '"t"',
    }
    [root_trace] = traces(convert(export(span(attributes))))
    [partial] = traces(convert(export(span(attributes, span_id=CHILD, parent=ROOT))))
    assert (root_trace["metadata"]["obs"], root_trace["metadata"]["tr"]) == ("o", "t")
    assert "obs" not in partial["metadata"] and partial["metadata"]["tr"] == "t"


# --------------------------------------------------------------------------------------------
# Level and status


@pytest.mark.parametrize(
    ("attributes", "status", "level", "message"),
    [
        ({}, (0, ""), "DEFAULT", None),
        ({}, (2, "boom"), "ERROR", "boom"),
        ({}, (1, ""), "DEFAULT", None),
        ({"langfuse.observation.level": "WARNING"}, (2, "boom"), "WARNING", "boom"),
        ({"langfuse.observation.level": "warn"}, (0, ""), "WARNING", None),
        ({"langfuse.observation.level": "TRACE"}, (0, ""), "DEBUG", None),
        ({"langfuse.observation.level": "INFO"}, (0, ""), "DEFAULT", None),
        ({"langfuse.observation.level": "CRITICAL"}, (0, ""), "ERROR", None),
        ({"langfuse.observation.level": "nonsense"}, (2, ""), "ERROR", None),
        ({"langfuse.observation.status_message": "attr"}, (2, "status"), "ERROR", "attr"),
    ],
)
def test_level_and_status_message(
    attributes: dict[str, Any], status: tuple[int, str], level: str, message: str | None
) -> None:
    body = only_observation(convert(export(span(attributes, status=status))))
    assert body["level"] == level
    assert body.get("statusMessage") == message


# --------------------------------------------------------------------------------------------
# Input and output


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("agent-in", "agent-in"),
        ("123", 123),
        ("true", True),
        ('{"q": "x"}', {"q": "x"}),
        ('[{"role": "user", "content": "hello"}]', [{"role": "user", "content": "hello"}]),
        ('"quoted"', "quoted"),
        ("{oops", "{oops"),
        ("2+2", "2+2"),
        ("", ""),
    ],
)
def test_input_output_json_decoding(raw: str, decoded: Any) -> None:
    body = only_observation(
        convert(
            export(span({"langfuse.observation.input": raw, "langfuse.observation.output": raw}))
        )
    )
    assert body["input"] == decoded
    assert body["output"] == decoded


def test_openinference_io_model_usage_and_parameters() -> None:
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.invocation_parameters": '{"temperature": 0.1, "stop": ["x"]}',
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "be brief",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "hello",
        "llm.token_count.prompt": 12,
        "llm.token_count.completion": 5,
        "llm.token_count.total": 17,
        "llm.token_count.prompt_details.cache_read": 2,
        "llm.cost.total": 0.0012,
    }
    [event] = observations(convert(export(span(attributes), scope="openinference.x"), None))
    body = event["body"]
    assert event["type"] == "generation-create"
    assert body["model"] == "gpt-4o-mini"
    assert body["modelParameters"] == {"temperature": 0.1, "stop": '["x"]'}
    assert body["input"] == [
        {"message": {"role": "system", "content": "be brief"}},
        {"message": {"role": "user", "content": "hi"}},
    ]
    assert body["output"] == [{"message": {"role": "assistant", "content": "hello"}}]
    assert body["usageDetails"] == {"input": 10, "output": 5, "total": 17, "input_cached_tokens": 2}
    assert body["costDetails"] == {"total": 0.0012}


def test_openinference_input_value() -> None:
    attributes = {"input.value": '{"question": "q"}', "output.value": "answer"}
    body = only_observation(convert(export(span(attributes), scope="smolagents"), None))
    assert (body["input"], body["output"]) == ({"question": "q"}, "answer")


def test_openllmetry_io_and_gen_ai_usage() -> None:
    attributes = {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "hello",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 100,
        "gen_ai.usage.completion_tokens": 40,
        "gen_ai.usage.total_tokens": 140,
        "gen_ai.usage.reasoning_tokens": 10,
        "gen_ai.usage.cost": 0.5,
    }
    [event] = observations(convert(export(span(attributes), scope="opentelemetry.openai"), None))
    body = event["body"]
    assert event["type"] == "generation-create"
    assert body["model"] == "gpt-4o-2024-08-06"  # the response model wins
    assert body["modelParameters"] == {"temperature": 0.2, "max_tokens": 50}
    assert body["input"] == [{"role": "user", "content": "hi"}]
    assert body["output"] == [{"role": "assistant", "content": "hello", "finish_reason": "stop"}]
    assert body["usageDetails"] == {
        "input": 100,
        "output": 30,
        "total": 140,
        "output_reasoning_tokens": 10,
    }
    assert body["costDetails"] == {"total": 0.5}


def test_gen_ai_usage_with_semconv_names_and_cache_subtraction() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.usage.input_tokens": "300",
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.usage.cache_creation.input_tokens": 50,
        "gen_ai.usage.bogus": "n/a",
    }
    body = only_observation(convert(export(span(attributes), scope="x"), None))
    assert body["usageDetails"] == {
        "input": 150,
        "output": 20,
        "input_cached_tokens": 100,
        "input_cache_creation": 50,
    }


def test_traceloop_entity_io() -> None:
    attributes = {"traceloop.entity.input": '{"args": [1]}', "traceloop.entity.output": "2"}
    body = only_observation(convert(export(span(attributes), scope="traceloop"), None))
    assert (body["input"], body["output"]) == ({"args": [1]}, 2)


def test_gen_ai_messages_with_system_instructions() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system_instructions": '[{"type": "text", "content": "be nice"}]',
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]',
        "gen_ai.output.messages": '[{"role": "assistant", "parts": []}]',
    }
    body = only_observation(convert(export(span(attributes), scope="x"), None))
    # Text parts become one system message (complete messages would be kept as they are).
    assert body["input"] == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
    ]
    assert body["output"] == [{"role": "assistant", "parts": []}]


def test_gen_ai_span_events() -> None:
    events = [
        {"name": "gen_ai.system.message", "time_unix_nano": START, "attributes": {"content": "s"}},
        {"name": "gen_ai.user.message", "time_unix_nano": START, "attributes": {"content": "u"}},
        {"name": "gen_ai.choice", "time_unix_nano": END, "attributes": {"index": 0}},
    ]
    body = only_observation(
        convert(export(span({"gen_ai.request.model": "m"}, events=events), scope="x"), None)
    )
    assert body["input"] == [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert body["output"] == {"index": 0}


# --------------------------------------------------------------------------------------------
# Generation fields


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"2025-01-01T12:00:00.500000Z"', "2025-01-01T12:00:00.500000Z"),  # SDK: double-encoded
        ("2025-01-01T12:00:00.5Z", "2025-01-01T12:00:00.500000Z"),
        ("2025-01-01T14:00:00+02:00", "2025-01-01T12:00:00.000000Z"),
        ("not a date", None),
    ],
)
def test_completion_start_time(raw: str, expected: str | None) -> None:
    attributes = {
        "langfuse.observation.type": "generation",
        "langfuse.observation.completion_start_time": raw,
    }
    assert only_observation(convert(export(span(attributes)))).get("completionStartTime") == (
        expected
    )


def test_sample_a_generation() -> None:
    attributes = {
        "user.id": "user-2",
        "session.id": "sess-2",
        "langfuse.trace.metadata.tier": '"gold"',
        "langfuse.version": "tv2",
        "langfuse.trace.tags": ["alpha"],
        "langfuse.trace.name": "cm-trace",
        "langfuse.environment": "staging",
        "langfuse.observation.level": "WARNING",
        "langfuse.observation.input": '[{"role": "user", "content": "hello"}]',
        "langfuse.observation.model.name": "gpt-4o-mini",
        "langfuse.observation.usage_details": '{"input": 10, "output": 20, "total": 30}',
        "langfuse.observation.cost_details": '{"input": 0.001, "output": 0.002, "total": 0.003}',
        "langfuse.observation.completion_start_time": '"2025-01-01T12:00:00.500000Z"',
        "langfuse.observation.model.parameters": (
            '{"temperature": 0.7, "max_tokens": 100, "stream": false}'
        ),
        "langfuse.observation.type": "generation",
        "langfuse.observation.output": '{"role": "assistant", "content": "hi there"}',
    }
    events = convert(export(span(attributes, span_id=CHILD, parent=ROOT, name="llm-call")))
    assert [event["type"] for event in events] == ["trace-create", "generation-create"]
    body = events[1]["body"]
    scope = {"name": "langfuse-sdk", "version": "5.0.4", "attributes": {"public_key": "pk-lf-1"}}
    assert body == {
        "id": CHILD,
        "traceId": TRACE,
        "parentObservationId": ROOT,
        "name": "llm-call",
        "startTime": START_ISO,
        "endTime": END_ISO,
        "environment": "staging",
        "metadata": {"resourceAttributes": SDK_RESOURCE, "scope": scope},
        "level": "WARNING",
        "version": "tv2",
        "completionStartTime": "2025-01-01T12:00:00.500000Z",
        "model": "gpt-4o-mini",
        "modelParameters": {"temperature": 0.7, "max_tokens": 100, "stream": "false"},
        "usageDetails": {"input": 10, "output": 20, "total": 30},
        "costDetails": {"input": 0.001, "output": 0.002, "total": 0.003},
        "input": [{"role": "user", "content": "hello"}],
        "output": {"role": "assistant", "content": "hi there"},
    }
    assert events[0]["body"] == {
        "id": TRACE,
        "timestamp": START_ISO,
        "name": "cm-trace",
        "metadata": {"tier": "gold", "resourceAttributes": SDK_RESOURCE, "scope": scope},
        "version": "tv2",
        "userId": "user-2",
        "sessionId": "sess-2",
        "tags": ["alpha"],
        "environment": "staging",
    }


@pytest.mark.parametrize(
    ("declared", "has_prompt"),
    [("generation", True), ("tool", False), ("span", False), ("embedding", False)],
)
def test_prompt_link_only_on_generations(declared: str, has_prompt: bool) -> None:
    attributes = {
        "langfuse.observation.type": declared,
        "langfuse.observation.prompt.name": "support",
        "langfuse.observation.prompt.version": 3,
    }
    body = only_observation(convert(export(span(attributes))))
    if has_prompt:
        assert (body["promptName"], body["promptVersion"]) == ("support", 3)
    else:
        assert "promptName" not in body and "promptVersion" not in body


def test_prompt_needs_name_and_version() -> None:
    attributes = {
        "langfuse.observation.type": "generation",
        "langfuse.observation.prompt.name": "support",
    }
    assert "promptName" not in only_observation(convert(export(span(attributes))))


def test_explicit_usage_details_win_over_gen_ai_usage() -> None:
    attributes = {
        "langfuse.observation.type": "generation",
        "langfuse.observation.usage_details": '{"input": 1}',
        "gen_ai.usage.input_tokens": 99,
    }
    assert only_observation(convert(export(span(attributes))))["usageDetails"] == {"input": 1}


# --------------------------------------------------------------------------------------------
# Experiments


def test_experiment_attributes_sample_c() -> None:
    attributes = {
        "langfuse.observation.input": '{"q": "2+2"}',
        "langfuse.environment": "sdk-experiment",
        "langfuse.experiment.description": "desc",
        "langfuse.experiment.item.expected_output": "4",
        "langfuse.experiment.id": "6cadab48871e59a3",
        "langfuse.experiment.name": "run-1",
        "langfuse.experiment.metadata": '{"em": "x"}',
        "langfuse.experiment.dataset.id": "ds-8f98f1a7",
        "langfuse.experiment.item.id": "0ea317ee-d744-4f30-94af-a83659d3cb30",
        "langfuse.experiment.item.version": "2025-05-05T00:00:00Z",
        "langfuse.experiment.item.metadata": '{"im": 1}',
        "langfuse.experiment.item.root_observation_id": "98fa8a61c52989c2",
        "langfuse.observation.metadata.experiment_name": '"exp-1"',
        "langfuse.observation.type": "span",
        "langfuse.observation.output": "4",
    }
    events = convert(
        export(
            span(attributes, span_id=OTHER, parent="5afd0fe008f56b87", name="experiment-item-task")
        )
    )
    body = only_observation(events)
    assert body["experiment"] == {
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
    assert body["environment"] == "sdk-experiment"
    assert body["metadata"]["experiment_name"] == "exp-1"
    assert (body["input"], body["output"]) == ({"q": "2+2"}, 4)
    # Experiment attributes are not trace attributes: the trace stays shallow.
    assert traces(events) == [
        {"id": TRACE, "timestamp": START_ISO, "environment": "sdk-experiment"}
    ]


def test_experiment_metadata_from_baggage_keys() -> None:
    attributes = {
        "langfuse.experiment.id": "e",
        "langfuse.experiment.metadata.team": "red",
        "langfuse.experiment.item.metadata.level": '{"n": 2}',
    }
    body = only_observation(convert(export(span(attributes))))
    assert body["experiment"] == {
        "id": "e",
        "metadata": {"team": "red"},
        "item_metadata": {"level": {"n": 2}},
    }


def test_no_experiment_key_without_experiment_attributes() -> None:
    assert "experiment" not in only_observation(convert(export(span({}))))


# --------------------------------------------------------------------------------------------
# End to end with the OpenTelemetry SDK


def test_end_to_end_from_opentelemetry_sdk_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"langfuse.environment": "staging", "langfuse.release": "r1"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("langfuse-sdk", "5.0.4", attributes={"public_key": "pk"})
    propagated = {
        "user.id": "user-2",
        "session.id": "sess-2",
        "langfuse.trace.metadata.tier": '"gold"',
        "langfuse.trace.tags": ["alpha"],
        "langfuse.trace.name": "cm-trace",
    }
    with tracer.start_as_current_span(
        "root-span",
        attributes={
            **propagated,
            "langfuse.internal.is_app_root": True,
            "langfuse.observation.type": "span",
            "langfuse.observation.input": '{"q": "root-in"}',
            "langfuse.trace.public": True,
        },
    ) as root:
        with tracer.start_as_current_span(
            "llm-call",
            attributes={
                **propagated,
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "gpt-4o-mini",
                "langfuse.observation.prompt.name": "p",
                "langfuse.observation.prompt.version": 2,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "note", attributes={**propagated, "langfuse.observation.type": "event"}
        ):
            pass
    body = encode_spans(exporter.get_finished_spans()).SerializeToString()
    events = convert(decode_protobuf(body), "5.0.4")

    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    assert [event["type"] for event in events] == [
        "trace-create",  # the children's propagated attributes: sent once
        "generation-create",
        "event-create",
        "trace-create",  # the root
        "span-create",
    ]
    partial, root_trace = traces(events)
    assert partial["timestamp"] == root_trace["timestamp"]
    assert root_trace["public"] is True and "public" not in partial
    assert root_trace["name"] == partial["name"] == "cm-trace"
    assert root_trace["input"] == {"q": "root-in"}
    assert root_trace["metadata"]["tier"] == "gold"
    assert root_trace["metadata"]["resourceAttributes"]["langfuse.release"] == "r1"
    assert root_trace["release"] == "r1"
    assert {trace["environment"] for trace in (partial, root_trace)} == {"staging"}
    generation = events[1]["body"]
    assert generation["traceId"] == trace_id
    assert generation["parentObservationId"] == root_id
    assert (generation["promptName"], generation["promptVersion"]) == ("p", 2)
    assert "endTime" not in events[2]["body"]
    assert events[4]["body"]["id"] == root_id
    # Everything is plain JSON.
    json.dumps(events)
