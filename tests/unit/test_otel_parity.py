"""Parity of the OTLP → trace/observation mapping with upstream Langfuse, rule by rule.

Each test pins one rule of upstream's OTel mapping (`OtelIngestionProcessor`,
`ObservationTypeMapper`; shared/reference/langfuse-server.md §2.5 and sdk-wire.md §4-5) that
tests/unit/test_otel_mapping.py does not already cover. Inputs are the neutral structure the
OTLP decoders produce; outputs are the ingestion events (and, where the rule lives in the
parser, the parsed events) upstream would produce for them.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from fathom.core.domain import otel
from fathom.core.domain.ingestion import ObservationEvent, TraceEvent, parse_batch
from fathom.core.domain.otel import ResourceSpans, Span, spans_to_ingestion_events

TRACE = "bf0194354e6d2b0cb0834aba2f9bd38b"
ROOT = "378af972d876acf0"
CHILD = "3cc7274a4a5cfb27"
START = 1_795_337_479_380_233_506
END = 1_795_337_479_380_554_543
START_ISO = "2026-11-22T08:51:19.380233Z"
RECEIVED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PYTHON_RESOURCE = {"telemetry.sdk.language": "python", "service.name": "svc"}


def span(
    attributes: dict[str, Any] | None = None,
    *,
    span_id: str = ROOT,
    parent: str | None = None,
    name: str = "op",
    kind: int = 1,
    status: tuple[int, str] = (0, ""),
    events: list[Any] | None = None,
) -> Span:
    return {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": kind,
        "start_time_unix_nano": START,
        "end_time_unix_nano": END,
        "attributes": attributes or {},
        "events": events or [],
        "status": {"code": status[0], "message": status[1]},
    }


def child(attributes: dict[str, Any] | None = None, *, span_id: str = CHILD, **kwargs: Any) -> Span:
    return span(attributes, span_id=span_id, parent=ROOT, **kwargs)


def export(
    *spans: Span,
    scope: str = "some-instrumentation",
    scope_version: str = "1.0.0",
    resource: dict[str, Any] | None = None,
) -> list[ResourceSpans]:
    return [
        {
            "resource_attributes": PYTHON_RESOURCE if resource is None else resource,
            "scope_spans": [
                {
                    "scope": {"name": scope, "version": scope_version, "attributes": {}},
                    "spans": list(spans),
                }
            ],
        }
    ]


def convert(
    *spans: Span, sdk_version: str | None = None, **export_options: Any
) -> list[dict[str, Any]]:
    ids = itertools.count()
    return spans_to_ingestion_events(
        export(*spans, **export_options),
        sdk_version=sdk_version,
        received_at=RECEIVED,
        new_id=lambda: f"event-{next(ids)}",
    )


def observation_event(*spans: Span, **options: Any) -> dict[str, Any]:
    [event] = [e for e in convert(*spans, **options) if e["type"] != "trace-create"]
    return event


def observation(*spans: Span, **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = observation_event(*spans, **options)["body"]
    return body


def event_type(attributes: dict[str, Any], **options: Any) -> str:
    kind: str = observation_event(span(attributes), **options)["type"]
    return kind


def traces(*spans: Span, **options: Any) -> list[dict[str, Any]]:
    return [e["body"] for e in convert(*spans, **options) if e["type"] == "trace-create"]


def generation(attributes: dict[str, Any], **options: Any) -> dict[str, Any]:
    """The body of a span declared a generation (so generation fields are kept)."""
    return observation(span({"langfuse.observation.type": "generation", **attributes}), **options)


# --------------------------------------------------------------------------------------------
# Observation type inference (ObservationTypeMapper)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"openinference.span.kind": "GUARDRAIL"}, "guardrail-create"),
        ({"openinference.span.kind": "EVALUATOR"}, "evaluator-create"),
        # Mappings are exact: other spellings are left to the next mappers.
        ({"openinference.span.kind": "llm"}, "span-create"),
        ({"gen_ai.operation.name": "completion"}, "generation-create"),
        ({"gen_ai.operation.name": "generate_content"}, "generation-create"),
        ({"gen_ai.operation.name": "generate"}, "generation-create"),
        ({"gen_ai.operation.name": "create_agent"}, "agent-create"),
        ({"gen_ai.operation.name": "Chat"}, "span-create"),
    ],
)
def test_openinference_kinds_and_gen_ai_operations(
    attributes: dict[str, Any], expected: str
) -> None:
    assert event_type(attributes) == expected


@pytest.mark.parametrize(
    ("subtype", "expected"),
    [
        ("model", "generation-create"),
        ("background-model", "generation-create"),
        ("embedder", "embedding-create"),
        ("tool", "tool-create"),
        ("tool.v2", "tool-create"),
        ("retriever", "retriever-create"),
        ("evaluator", "evaluator-create"),
        ("flow", "span-create"),
    ],
)
def test_genkit_subtypes(subtype: str, expected: str) -> None:
    assert event_type({"genkit:metadata:subtype": subtype}) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        # Generation and embedding operations need a model attribute.
        (
            {"operation.name": "ai.generateText.doGenerate my-fn", "ai.model.id": "gpt-4o"},
            "generation-create",
        ),
        ({"ai.operationId": "ai.streamObject.doStream", "ai.model.id": "m"}, "generation-create"),
        ({"ai.operationId": "ai.embedMany.doEmbed", "ai.model.id": "m"}, "embedding-create"),
        (
            {"operation.name": "ai.embed.doEmbed fn", "gen_ai.request.model": "m"},
            "embedding-create",
        ),
        ({"ai.operationId": "ai.generateText.doGenerate"}, "span-create"),
        # ai.operationId must equal the operation; operation.name may carry a suffix.
        ({"ai.operationId": "ai.embed.doEmbed.x", "ai.model.id": "m"}, "span-create"),
        ({"operation.name": "ai.toolCall search"}, "tool-create"),
        ({"ai.operationId": "ai.toolCall"}, "tool-create"),
        ({"ai.operationId": "ai.generateText", "ai.model.id": "m"}, "span-create"),
        # ai.model.id alone is not one of the model keys that make a generation.
        ({"ai.model.id": "m"}, "span-create"),
    ],
)
def test_vercel_ai_sdk_operations(attributes: dict[str, Any], expected: str) -> None:
    assert event_type(attributes, scope="ai") == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"flue.tool.name": "bash"}, "tool-create"),
        ({"flue.task.id": "t1"}, "agent-create"),
        ({"flue.task.id": "t1", "flue.tool.name": "bash"}, "tool-create"),
        ({"flue.instance.id": "i1"}, "span-create"),
        # Flue comes after the GenAI tool attributes and before the model keys.
        ({"flue.task.id": "t1", "gen_ai.tool.name": "t"}, "tool-create"),
        ({"flue.task.id": "t1", "gen_ai.request.model": "m"}, "agent-create"),
    ],
)
def test_flue_spans(attributes: dict[str, Any], expected: str) -> None:
    assert event_type(attributes) == expected


@pytest.mark.parametrize(
    ("scope", "name", "expected"),
    [
        ("livekit-agents", "agent_turn", "agent-create"),
        ("livekit-agents", "start_agent_activity", "agent-create"),
        ("livekit-agents", "function_tool", "tool-create"),
        ("livekit-agents", "llm_node", "span-create"),
        ("other", "agent_turn", "span-create"),
    ],
)
def test_livekit_span_names(scope: str, name: str, expected: str) -> None:
    assert observation_event(span({}, name=name), scope=scope)["type"] == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"openinference.span.kind": "TOOL", "gen_ai.operation.name": "chat"}, "tool-create"),
        ({"openinference.span.kind": "NOPE", "gen_ai.operation.name": "chat"}, "generation-create"),
        (
            {"gen_ai.operation.name": "embeddings", "genkit:metadata:subtype": "model"},
            "embedding-create",
        ),
        (
            {"genkit:metadata:subtype": "tool", "ai.operationId": "ai.embed.doEmbed", "model": "m"},
            "tool-create",
        ),
        ({"ai.operationId": "ai.toolCall", "gen_ai.request.model": "m"}, "tool-create"),
        ({"langfuse.observation.type": "", "gen_ai.operation.name": "chat"}, "generation-create"),
    ],
)
def test_type_mappers_apply_in_priority_order(attributes: dict[str, Any], expected: str) -> None:
    assert event_type(attributes) == expected


@pytest.mark.parametrize(
    ("scope", "resource", "version", "expected"),
    [
        ("langfuse-sdk", PYTHON_RESOURCE, "3.3.0", "generation-create"),
        # Upstream compares NaN for a non-numeric version, which never counts as newer.
        ("langfuse-sdk", PYTHON_RESOURCE, "dev", "generation-create"),
        ("langfuse-sdk", {"telemetry.sdk.language": "nodejs"}, "3.3.0", "span-create"),
        ("langfuse-sdk-js", PYTHON_RESOURCE, "3.3.0", "span-create"),
    ],
)
def test_python_sdk_3_3_override_needs_the_python_langfuse_sdk_scope(
    scope: str, resource: dict[str, Any], version: str, expected: str
) -> None:
    attributes = {"langfuse.observation.type": "span", "langfuse.observation.usage_details": "{}"}
    kind = observation_event(
        span(attributes), scope=scope, scope_version=version, resource=resource
    )
    assert kind["type"] == expected


def test_span_kind_does_not_change_the_mapping() -> None:
    attributes = {"gen_ai.request.model": "m", "input.value": "q"}
    internal = observation_event(span(attributes, kind=1))
    client = observation_event(span(attributes, kind=3))
    assert internal == client


# --------------------------------------------------------------------------------------------
# Observation and trace names


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"genkit:name": "googleai/gemini"}, "googleai/gemini"),
        ({"gen_ai.tool.name": "search", "genkit:name": "flow"}, "search"),
        ({"genkit:name": "flow", "logfire.msg": "running"}, "flow"),
        ({"logfire.msg": "running agent"}, "running agent"),
        ({"logfire.msg": "m", "ai.toolCall.name": "weather"}, "m"),
        ({"ai.toolCall.name": "weather", "ai.operationId": "ai.toolCall"}, "weather"),
        (
            {"ai.operationId": "ai.generateText", "ai.telemetry.functionId": "fn"},
            "fn:ai.generateText",
        ),
        ({"ai.operationId": "ai.generateText"}, "ai.generateText"),
        ({"http.method": "GET"}, "span-name"),
    ],
)
def test_observation_name_sources(attributes: dict[str, Any], expected: str) -> None:
    assert observation(span(attributes, name="span-name"))["name"] == expected


def test_root_trace_is_named_after_the_derived_observation_name() -> None:
    [trace] = traces(span({"gen_ai.tool.name": "search"}, name="span-name"))
    assert trace["name"] == "search"


# --------------------------------------------------------------------------------------------
# Trace-level fields


def test_vercel_telemetry_metadata_carries_user_session_and_tags() -> None:
    attributes = {
        "ai.telemetry.metadata.userId": "u-1",
        "ai.telemetry.metadata.sessionId": "s-1",
        "ai.telemetry.metadata.tags": ["a", "b"],
        "ai.telemetry.metadata.plan": "pro",
    }
    events = convert(child(attributes), scope="ai")
    [trace] = [e["body"] for e in events if e["type"] == "trace-create"]
    assert (trace["userId"], trace["sessionId"], trace["tags"]) == ("u-1", "s-1", ["a", "b"])
    assert trace["metadata"]["plan"] == "pro"
    metadata = events[-1]["body"]["metadata"]
    assert metadata["plan"] == "pro"
    assert not {"userId", "sessionId", "tags"} & set(metadata) & set(trace["metadata"])


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"langfuse.tags": "x"}, ["x"]),
        ({"tag.tags": ["y", "z"]}, ["y", "z"]),
        ({"langfuse.trace.metadata.langfuse_tags": '["m"]'}, ["m"]),
        ({"langfuse.trace.tags": ["t"], "langfuse.tags": "x"}, ["t"]),
        ({"langfuse.trace.tags": [1, True]}, ["1", "true"]),
    ],
)
def test_tag_sources(attributes: dict[str, Any], expected: list[str]) -> None:
    [trace] = traces(child(attributes), sdk_version="5.0.4")
    assert trace["tags"] == expected


@pytest.mark.parametrize(
    ("attributes", "user", "session"),
    [
        ({"user.id": "u", "langfuse.observation.metadata.langfuse_user_id": '"m"'}, "u", None),
        (
            {
                "langfuse.trace.metadata.langfuse_user_id": '"m"',
                "ai.telemetry.metadata.userId": "v",
            },
            "m",
            None,
        ),
        ({"session.id": "s", "gen_ai.conversation.id": "c"}, None, "s"),
        ({"gen_ai.conversation.id": "c"}, None, "c"),
        ({"langfuse.session.id": "l", "session.id": "s"}, None, "l"),
        ({"user.id": 42}, "42", None),
    ],
)
def test_user_and_session_key_priority(
    attributes: dict[str, Any], user: str | None, session: str | None
) -> None:
    [trace] = traces(child(attributes), sdk_version="5.0.4")
    assert (trace.get("userId"), trace.get("sessionId")) == (user, session)


def test_langfuse_public_compat_attribute() -> None:
    [trace] = traces(child({"langfuse.public": "true"}))
    assert trace["public"] is True


def test_whole_trace_metadata_json_object_updates_the_trace() -> None:
    [trace] = traces(
        child({"langfuse.trace.metadata": '{"plan": "pro", "n": 1}'}), sdk_version="5.0.4"
    )
    assert (trace["metadata"]["plan"], trace["metadata"]["n"]) == ("pro", 1)


def test_root_trace_io_from_one_trace_attribute_does_not_use_other_instrumentations() -> None:
    attributes = {"langfuse.trace.input": "question", "input.value": "x", "output.value": "y"}
    events = convert(span(attributes))
    [trace] = [e["body"] for e in events if e["type"] == "trace-create"]
    assert trace["input"] == "question"
    assert "output" not in trace
    body = events[-1]["body"]
    assert (body["input"], body["output"]) == ("x", "y")


def test_root_trace_io_falls_back_per_side_to_the_observation_attributes() -> None:
    attributes = {"langfuse.trace.output": "answer", "langfuse.observation.input": "obs-in"}
    [trace] = traces(span(attributes))
    assert (trace["input"], trace["output"]) == ("obs-in", "answer")


# --------------------------------------------------------------------------------------------
# Metadata


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("langfuse.observation.metadata", "42"),
        ("langfuse.observation.metadata", "{invalid json"),
        ("langfuse.observation.metadata", 42),
        ("langfuse.observation.metadata", '"just a string"'),
        ("langfuse.metadata", "[1, 2]"),
        ("langfuse.trace.metadata", '"x"'),
    ],
)
def test_whole_metadata_that_is_not_an_object_is_dropped(key: str, value: Any) -> None:
    events = convert(span({key: value}), sdk_version="5.0.4", scope="langfuse-sdk")
    for event in events:
        assert set(event["body"]["metadata"]) == {"resourceAttributes", "scope"}


def test_empty_whole_metadata_falls_back_to_the_compat_attribute() -> None:
    attributes = {"langfuse.observation.metadata": "", "langfuse.metadata": '{"a": 1}'}
    assert observation(span(attributes), sdk_version="5.0.4")["metadata"]["a"] == 1


def test_compat_metadata_keys_reach_both_domains() -> None:
    attributes = {
        "langfuse.metadata.team": "red",
        "ai.telemetry.metadata.run": "r1",
        "ai.telemetry.metadata.langfusePrompt": '{"name": "p", "version": 1}',
    }
    events = convert(span(attributes), scope="ai")
    for event in events:
        metadata = event["body"]["metadata"]
        assert (metadata["team"], metadata["run"]) == ("red", "r1")
        assert "langfusePrompt" not in metadata


def test_vercel_prompt_tools_become_metadata_tools_on_both_domains() -> None:
    tools = ['{"type": "function", "name": "weather"}']
    events = convert(child({"ai.prompt.tools": tools, "user.id": "u"}), scope="ai")
    assert [event["body"]["metadata"]["tools"] for event in events] == [tools, tools]


def test_foreign_attributes_keep_canonical_langfuse_keys_but_not_metadata_or_io() -> None:
    attributes = {
        "langfuse.observation.type": "generation",
        "user.id": "u",
        "langfuse.observation.metadata.k": "v",
        "langfuse.observation.input": "in",
        "genkit:output": "out",
        "custom.attribute": "c",
        "count": 3,
    }
    body = observation(child(attributes))
    assert body["metadata"]["attributes"] == {
        "langfuse.observation.type": "generation",
        "user.id": "u",
        "custom.attribute": "c",
        "count": "3",
    }


def test_langfuse_sdk_scope_variants_have_no_attributes_entry() -> None:
    body = observation(span({"http.method": "GET"}), scope="langfuse-sdk-experimental")
    assert "attributes" not in body["metadata"]


# --------------------------------------------------------------------------------------------
# Levels and status


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("VERBOSE", "DEBUG"),
        ("debug", "DEBUG"),
        ("LOG", "DEFAULT"),
        ("NOTICE", "DEFAULT"),
        ("OK", "DEFAULT"),
        ("SUCCESS", "DEFAULT"),
        ("FATAL", "ERROR"),
        ("error", "ERROR"),
    ],
)
def test_level_aliases(raw: str, expected: str) -> None:
    assert observation(span({"langfuse.observation.level": raw}))["level"] == expected


@pytest.mark.parametrize(
    ("scope", "name", "status", "expected"),
    [
        ("livekit-agents", "tts_node", 0, "DEBUG"),
        ("livekit-agents", "on_enter", 0, "DEBUG"),
        ("livekit-agents", "tts_node", 2, "ERROR"),
        ("livekit-agents", "agent_turn", 0, "DEFAULT"),
        ("other", "tts_node", 0, "DEFAULT"),
    ],
)
def test_livekit_debug_spans(scope: str, name: str, status: int, expected: str) -> None:
    body = observation(span({}, name=name, status=(status, "")), scope=scope)
    assert body["level"] == expected


# --------------------------------------------------------------------------------------------
# Input and output of other instrumentations


def test_langfuse_io_wins_over_every_other_instrumentation() -> None:
    attributes = {"langfuse.observation.output": "lf-out", "genkit:input": "g", "input.value": "x"}
    body = observation(span(attributes))
    assert body["output"] == "lf-out"
    assert "input" not in body


def test_genkit_io_comes_first_among_other_instrumentations() -> None:
    attributes = {
        "genkit:input": '{"messages": [{"role": "user"}]}',
        "genkit:output": '{"finishReason": "stop"}',
        "input.value": "x",
    }
    body = observation(span(attributes))
    assert (body["input"], body["output"]) == (
        {"messages": [{"role": "user"}]},
        {"finishReason": "stop"},
    )


@pytest.mark.parametrize(
    ("attributes", "expected_input", "expected_output"),
    [
        (
            {
                "ai.prompt.messages": '[{"role": "user", "content": "hi"}]',
                "ai.response.text": "hello",
            },
            [{"role": "user", "content": "hi"}],
            "hello",
        ),
        (
            {"ai.prompt": '{"prompt": "hi"}', "ai.result.text": "old sdk"},
            {"prompt": "hi"},
            "old sdk",
        ),
        ({"ai.toolCall.args": '{"q": "x"}', "ai.toolCall.result": '"found"'}, {"q": "x"}, "found"),
        ({"ai.response.text": "", "ai.response.object": '{"a": 1}'}, None, {"a": 1}),
        ({"ai.result.object": '{"b": 2}'}, None, {"b": 2}),
        ({"ai.response.toolCalls": '[{"toolName": "t"}]'}, None, [{"toolName": "t"}]),
        (
            {"ai.response.text": "calling", "ai.response.toolCalls": '[{"toolName": "t"}]'},
            None,
            # Upstream builds this message around the SDK's JSON text of the tool calls.
            {"role": "assistant", "content": "calling", "tool_calls": '[{"toolName": "t"}]'},
        ),
    ],
)
def test_vercel_ai_sdk_io(
    attributes: dict[str, Any], expected_input: Any, expected_output: Any
) -> None:
    body = observation(span(attributes), scope="ai")
    assert (body.get("input"), body.get("output")) == (expected_input, expected_output)


def test_vercel_ai_sdk_io_is_read_for_the_ai_scope_only() -> None:
    body = observation(span({"ai.prompt": "hi", "ai.response.text": "hello"}), scope="other")
    assert "input" not in body and "output" not in body


def test_semconv_operation_details_event_wins_over_message_events() -> None:
    events = [
        {"name": "gen_ai.user.message", "time_unix_nano": START, "attributes": {"content": "old"}},
        {
            "name": "gen_ai.client.inference.operation.details",
            "time_unix_nano": END,
            "attributes": {
                "gen_ai.input.messages": '[{"role": "user", "parts": []}]',
                "gen_ai.output.messages": '[{"role": "assistant", "parts": []}]',
            },
        },
    ]
    body = observation(span({}, events=events))
    assert body["input"] == [{"role": "user", "parts": []}]
    assert body["output"] == [{"role": "assistant", "parts": []}]


def test_semantic_kernel_content_events() -> None:
    events = [
        {
            "name": "gen_ai.content.prompt",
            "time_unix_nano": START,
            "attributes": {"gen_ai.prompt": '[{"role": "user", "content": "q"}]'},
        },
        {
            "name": "gen_ai.content.completion",
            "time_unix_nano": END,
            "attributes": {"gen_ai.completion": '[{"role": "assistant", "content": "a"}]'},
        },
    ]
    body = observation(span({}, events=events))
    assert body["input"] == [{"role": "user", "content": "q"}]
    assert body["output"] == [{"role": "assistant", "content": "a"}]


def test_google_adk_tool_io_replaces_empty_llm_io() -> None:
    attributes = {
        "gcp.vertex.agent.llm_request": "{}",
        "gcp.vertex.agent.llm_response": "{}",
        "gcp.vertex.agent.tool_call_args": '{"city": "Paris"}',
        "gcp.vertex.agent.tool_response": '"sunny"',
    }
    body = observation(span(attributes), scope="gcp.vertex.agent")
    assert (body["input"], body["output"]) == ({"city": "Paris"}, "sunny")


def test_logfire_prompt_and_events_attribute() -> None:
    body = observation(span({"prompt": "hi", "all_messages_events": '[{"role": "user"}]'}))
    assert (body["input"], body["output"]) == ("hi", [{"role": "user"}])
    logfire_events = [
        {"event.name": "gen_ai.system.message", "content": "be brief"},
        {"event.name": "gen_ai.user.message", "content": "hi"},
        {"event.name": "gen_ai.choice", "index": 0, "message": {"role": "assistant"}},
    ]
    body = observation(span({"events": json.dumps(logfire_events)}))
    assert body["input"] == logfire_events[:2]
    assert body["output"] == logfire_events[2]


def test_livekit_io_comes_before_mlflow() -> None:
    attributes = {
        "lk.user_transcript": "hello",
        "lk.response.text": "hi there",
        "mlflow.spanInputs": "m-in",
    }
    body = observation(span(attributes), scope="livekit-agents")
    assert (body["input"], body["output"]) == ("hello", "hi there")
    body = observation(span({"lk.chat_ctx": '{"items": []}', "lk.function_tool.output": "42"}))
    assert (body["input"], body["output"]) == ({"items": []}, 42)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"mlflow.spanInputs": '{"q": 1}', "mlflow.spanOutputs": "a"}, ({"q": 1}, "a")),
        ({"input": "plain-in", "output": "plain-out"}, ("plain-in", "plain-out")),
        ({"tool_arguments": '{"x": 1}', "tool_response": "r"}, ({"x": 1}, "r")),
        (
            {"gen_ai.tool.call.arguments": '{"y": 2}', "gen_ai.tool.call.result": "ok"},
            ({"y": 2}, "ok"),
        ),
        # The traceloop keys come before OpenInference's input.value.
        ({"traceloop.entity.input": "t", "input.value": "o"}, ("t", None)),
    ],
)
def test_other_instrumentation_io_keys(
    attributes: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    body = observation(span(attributes))
    assert (body.get("input"), body.get("output")) == expected


def test_pydantic_ai_agent_io_with_system_instructions() -> None:
    attributes = {
        "pydantic_ai.all_messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
        ),
        "final_result": "done",
        "gen_ai.system_instructions": '[{"type": "text", "content": "Be brief."}]',
    }
    body = observation(span(attributes), scope="pydantic-ai")
    assert body["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
    ]
    assert body["output"] == "done"


USER = {"role": "user", "content": "q"}
STRUCTURED = {"role": "system", "parts": [{"type": "text", "content": "S"}]}


@pytest.mark.parametrize(
    ("instructions", "messages", "expected"),
    [
        (json.dumps([STRUCTURED]), [USER], [STRUCTURED, USER]),
        (
            json.dumps([STRUCTURED, {**STRUCTURED, "parts": []}]),
            [USER],
            [STRUCTURED, {**STRUCTURED, "parts": []}, USER],
        ),
        (json.dumps([{"parts": STRUCTURED["parts"]}]), [USER], [STRUCTURED, USER]),
        (
            json.dumps([{"type": "text", "content": "A"}, {"type": "text", "content": "B"}]),
            [USER],
            [{"role": "system", "content": "A\nB"}, USER],
        ),
        (
            json.dumps([{"type": "text", "content": "preamble"}, STRUCTURED]),
            [USER],
            [{"role": "system", "content": "preamble\nS"}, USER],
        ),
        ('"Be helpful."', [USER], [{"role": "system", "content": "Be helpful."}, USER]),
        ("not valid json", [USER], [{"role": "system", "content": "not valid json"}, USER]),
        ("[]", [USER], [USER]),
        ("[42, true, null]", [USER], [USER]),
        (json.dumps([STRUCTURED]), [{"role": "system", "content": "pre"}, USER], None),
    ],
)
def test_system_instructions_are_prepended_as_upstream_shapes_them(
    instructions: str, messages: list[Any], expected: list[Any] | None
) -> None:
    attributes = {
        "gen_ai.system_instructions": instructions,
        "gen_ai.input.messages": json.dumps(messages),
    }
    body = observation(span(attributes))
    assert body["input"] == (messages if expected is None else expected)


def test_flattened_messages_keep_empty_slots_and_drop_indices_past_10000() -> None:
    attributes = {
        "gen_ai.prompt.0.content": "a",
        "gen_ai.prompt.2.content": "c",
        "gen_ai.completion.10001.content": "dropped",
        "gen_ai.completion.0.content": "x",
    }
    body = observation(span(attributes))
    assert body["input"] == [{"content": "a"}, None, {"content": "c"}]
    assert body["output"] == [{"content": "x"}]


def test_whole_gen_ai_prompt_attribute_wins_over_its_flattened_keys() -> None:
    attributes = {
        "gen_ai.prompt": '[{"role": "user", "content": "whole"}]',
        "gen_ai.completion.0.content": "x",
    }
    body = observation(span(attributes))
    assert body["input"] == [{"role": "user", "content": "whole"}]
    assert body["output"] == [{"content": "x"}]


# --------------------------------------------------------------------------------------------
# Model, parameters, usage and cost


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"langfuse.observation.model.name": "lf", "gen_ai.response.model": "r"}, "lf"),
        ({"ai.model.id": "ai", "gen_ai.request.model": "req"}, "ai"),
        ({"gen_ai.request.model": "req", "llm.response.model": "lr"}, "req"),
        ({"llm.response.model": "lr", "llm.model_name": "m"}, "lr"),
        ({"llm.model_name": "m", "model": "x"}, "m"),
        ({"model": "x"}, "x"),
    ],
)
def test_model_name_priority(attributes: dict[str, Any], expected: str) -> None:
    assert generation(attributes)["model"] == expected


def test_genkit_model_span_uses_its_name_as_model() -> None:
    attributes = {"genkit:metadata:subtype": "model", "genkit:name": "googleai/gemini-2.5-flash"}
    event = observation_event(span(attributes, name="generate"))
    assert event["type"] == "generation-create"
    assert (event["body"]["model"], event["body"]["name"]) == (
        "googleai/gemini-2.5-flash",
        "googleai/gemini-2.5-flash",
    )


def test_vercel_model_parameters() -> None:
    attributes = {
        "operation.name": "ai.streamText.doStream",
        "ai.model.id": "gpt-4o",
        "ai.model.provider": "openai.chat",
        "ai.settings.maxRetries": 2,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "ai.response.providerMetadata": '{"openai": {"serviceTier": "priority"}}',
        # The Vercel settings win over the other JSON attributes on the `ai` scope.
        "llm.invocation_parameters": '{"ignored": 1}',
    }
    assert observation(span(attributes), scope="ai")["modelParameters"] == {
        "finishReason": "stop,length",
        "system": "openai.chat",
        "maxRetries": "2",
        "temperature": "0.5",
        "service_tier": "priority",
    }


def test_vercel_request_service_tier_wins_over_provider_metadata() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-5",
        "gen_ai.request.service_tier": "flex",
        "ai.response.providerMetadata": '{"openai": {"serviceTier": "priority"}}',
    }
    assert observation(span(attributes), scope="ai")["modelParameters"] == {"service_tier": "flex"}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"model_config": '{"temperature": 0.3}'}, {"temperature": 0.3}),
        (
            {
                "llm.invocation_parameters.temperature": 0.1,
                "llm.invocation_parameters.max_tokens": 6000,
                "llm.invocation_parameters.reasoning_effort": "high",
            },
            {"temperature": 0.1, "max_tokens": 6000, "reasoning_effort": "high"},
        ),
        (
            {
                "langfuse.observation.model.parameters": json.dumps(
                    {"stream": True, "r": {"e": "low"}, "n": None}
                )
            },
            {"stream": "true", "r": '{"e":"low"}', "n": "null"},
        ),
        ({"gen_ai.request.model": "m", "gen_ai.request.top_p": 0.9}, {"top_p": 0.9}),
        (
            {"llm.invocation_parameters.model": "m", "llm.invocation_parameters.seed": 7},
            {"seed": 7},
        ),
    ],
)
def test_model_parameter_sources(attributes: dict[str, Any], expected: dict[str, Any]) -> None:
    assert generation(attributes)["modelParameters"] == expected


def test_vercel_usage_with_cache_and_reasoning_taken_out() -> None:
    attributes = {
        "operation.name": "ai.generateText.doGenerate",
        "ai.model.id": "gpt-4o",
        "gen_ai.usage.prompt_tokens": 100,
        "gen_ai.usage.completion_tokens": 50,
        "ai.usage.tokens": 150,
        "ai.usage.cachedInputTokens": 30,
        "ai.usage.reasoningTokens": "20",
    }
    assert observation(span(attributes), scope="ai")["usageDetails"] == {
        "input": 70,
        "output": 30,
        "total": 150,
        "input_cached_tokens": 30,
        "output_reasoning_tokens": 20,
    }


def test_vercel_generation_without_counts_reports_zero_usage() -> None:
    attributes = {"operation.name": "ai.generateText.doGenerate", "ai.model.id": "gpt-4o"}
    assert observation(span(attributes), scope="ai")["usageDetails"] == {"input": 0, "output": 0}


ANTHROPIC_METADATA = json.dumps(
    {
        "anthropic": {
            "usage": {
                "input_tokens": 2,
                "cache_read_input_tokens": 47105,
                "cache_creation_input_tokens": 1076,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 0,
                    "ephemeral_1h_input_tokens": 1076,
                },
                "output_tokens": 714,
            }
        }
    }
)


@pytest.mark.parametrize(
    ("cache_write", "expected"),
    [
        (
            1076,
            {
                "input": 2,
                "output": 714,
                "input_cached_tokens": 47105,
                "input_cache_creation": 0,
                "input_cache_creation_5m": 0,
                "input_cache_creation_1h": 1076,
            },
        ),
        # A split that does not fit in the reported cache writes is not applied.
        (
            500,
            {
                "input": 578,
                "output": 714,
                "input_cached_tokens": 47105,
                "input_cache_creation": 500,
            },
        ),
    ],
)
def test_vercel_anthropic_cache_writes_split_by_lifetime(
    cache_write: int, expected: dict[str, int]
) -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude",
        "gen_ai.usage.input_tokens": 48183,
        "gen_ai.usage.output_tokens": 714,
        "gen_ai.usage.cache_read.input_tokens": 47105,
        "gen_ai.usage.cache_creation.input_tokens": cache_write,
        "ai.response.providerMetadata": ANTHROPIC_METADATA,
    }
    assert observation(span(attributes), scope="ai")["usageDetails"] == expected


def test_vercel_openai_and_bedrock_provider_metadata() -> None:
    metadata = {
        "openai": {"cachedPromptTokens": 4, "reasoningTokens": 3, "acceptedPredictionTokens": 1},
        "bedrock": {"usage": {"cacheReadInputTokens": 2, "cacheWriteInputTokens": 1}},
    }
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 8,
        "ai.response.providerMetadata": json.dumps(metadata),
    }
    assert observation(span(attributes), scope="ai")["usageDetails"] == {
        "input": 4,
        "output": 5,
        "input_cached_tokens": 4,
        "accepted_prediction_tokens": 1,
        "output_reasoning_tokens": 3,
        "input_cache_read": 2,
        "input_cache_write": 1,
    }


def test_vercel_agent_spans_carry_no_model_usage_or_cost() -> None:
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.cost": 0.1,
    }
    event = observation_event(span(attributes), scope="ai")
    assert event["type"] == "agent-create"
    assert not {"model", "usageDetails", "costDetails"} & set(event["body"])
    # Other scopes keep them.
    body = observation(span(attributes), scope="other")
    assert (body["model"], body["usageDetails"], body["costDetails"]) == (
        "gpt-4o",
        {"input": 10},
        {"total": 0.1},
    )


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 600,
                "gen_ai.usage.reasoning_tokens": 500,
                "gen_ai.usage.total_tokens": 700,
            },
            {"input": 100, "output": 100, "output_reasoning_tokens": 500, "total": 700},
        ),
        (
            {
                "gen_ai.usage.prompt_tokens": 50,
                "gen_ai.usage.completion_tokens": 300,
                "gen_ai.usage.thoughts_tokens": 200,
            },
            {"input": 50, "output": 100, "output_reasoning_tokens": 200},
        ),
        (
            {
                "llm.token_count.prompt": 80,
                "llm.token_count.completion": 150,
                "llm.token_count.reasoning_tokens": 120,
                "llm.token_count.total": 230,
            },
            {"input": 80, "output": 30, "output_reasoning_tokens": 120, "total": 230},
        ),
        (
            {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.cache_read_input_tokens": 4},
            {"input": 6, "input_cached_tokens": 4},
        ),
    ],
)
def test_generic_usage_aliases(attributes: dict[str, Any], expected: dict[str, int]) -> None:
    body = observation(span({"gen_ai.operation.name": "chat", **attributes}))
    assert body["usageDetails"] == expected


def test_google_adk_cached_and_thinking_tokens() -> None:
    response = {
        "usage_metadata": {
            "prompt_token_count": 1000,
            "candidates_token_count": 200,
            "thoughts_token_count": 80,
            "cached_content_token_count": 50,
        }
    }
    body = generation(
        {"gcp.vertex.agent.llm_response": json.dumps(response)}, scope="gcp.vertex.agent"
    )
    assert body["usageDetails"] == {"input_cached_tokens": 50, "output_reasoning_tokens": 80}

    # Counts the GenAI attributes already give are kept; zero counts add nothing.
    response["usage_metadata"].update(thoughts_token_count=999, cached_content_token_count=0)
    attributes = {
        "gcp.vertex.agent.llm_response": json.dumps(response),
        "gen_ai.usage.prompt_tokens": 50,
        "gen_ai.usage.completion_tokens": 100,
        "gen_ai.usage.completion_details.reasoning": 42,
    }
    body = generation(attributes, scope="gcp.vertex.agent")
    assert body["usageDetails"] == {"input": 50, "output": 58, "output_reasoning_tokens": 42}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {"llm.cost.total": 0.5, "llm.cost.prompt": 0.2, "llm.cost.completion": 0.3},
            {"total": 0.5},
        ),
        ({"llm.cost.prompt": 0.2}, None),
        ({"gen_ai.usage.cost": 0.1, "llm.cost.total": 0.5}, {"total": 0.1}),
        (
            {"langfuse.observation.cost_details": '{"input": 1.5}', "gen_ai.usage.cost": 9},
            {"input": 1.5},
        ),
    ],
)
def test_cost_sources(attributes: dict[str, Any], expected: dict[str, float] | None) -> None:
    assert generation(attributes).get("costDetails") == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"ai.response.msToFirstChunk": 500}, "2026-11-22T08:51:19.880233Z"),
        ({"ai.stream.msToFirstChunk": 12.3}, "2026-11-22T08:51:19.393233Z"),
        (
            {
                "langfuse.observation.completion_start_time": "2025-07-13T05:20:00.500Z",
                "ai.response.msToFirstChunk": 500,
            },
            "2025-07-13T05:20:00.500000Z",
        ),
    ],
)
def test_completion_start_time_from_time_to_first_chunk(
    attributes: dict[str, Any], expected: str
) -> None:
    assert generation(attributes)["completionStartTime"] == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"langfuse.prompt.name": "p", "langfuse.prompt.version": 3}, ("p", 3)),
        ({"ai.telemetry.metadata.langfusePrompt": '{"name": "vp", "version": 2}'}, ("vp", 2)),
        (
            {
                "langfuse.observation.prompt.name": "lf",
                "langfuse.observation.prompt.version": 1,
                "langfuse.prompt.name": "p",
                "langfuse.prompt.version": 3,
            },
            ("lf", 1),
        ),
    ],
)
def test_prompt_link_sources(attributes: dict[str, Any], expected: tuple[str, int]) -> None:
    body = generation(attributes)
    assert (body["promptName"], body["promptVersion"]) == expected


# --------------------------------------------------------------------------------------------
# Rules applied when the events are parsed


def test_span_environment_is_normalised_by_the_parser() -> None:
    resource = {"langfuse.environment": "Langfuse-Staging_EU"}
    events, errors = parse_batch(convert(child({"user.id": "u"}), resource=resource))
    assert errors == []
    trace, observation_parsed = events
    assert isinstance(trace, TraceEvent) and isinstance(observation_parsed, ObservationEvent)
    assert trace.environment == observation_parsed.environment == "staging_eu"


def test_every_mapped_event_parses() -> None:
    # Bodies built from each convention must satisfy the ingestion schemas.
    spans = [
        span(
            {
                "operation.name": "ai.generateText.doGenerate",
                "ai.model.id": "m",
                "ai.response.providerMetadata": ANTHROPIC_METADATA,
                "gen_ai.response.finish_reasons": ["stop"],
            }
        ),
        child({"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "m"}),
        child(
            {"genkit:metadata:subtype": "model", "genkit:name": "g", "genkit:input": "{}"},
            span_id="1" * 16,
        ),
        child({"flue.tool.name": "bash", "gen_ai.usage.input_tokens": 3}, span_id="2" * 16),
    ]
    events, errors = parse_batch(convert(*spans, scope="ai"))
    assert errors == []
    assert len(events) == 5


def test_non_ascii_digits_never_break_the_mapping() -> None:
    # str.isdigit() accepts "²", which int() rejects: such values are simply not numbers.
    attributes = {
        "langfuse.observation.prompt.name": "p",
        "langfuse.observation.prompt.version": "²",
        "gen_ai.prompt.².content": "hi",
    }
    body = generation(attributes, sdk_version="²")
    assert "promptVersion" not in body
    assert body["input"] == {"²": {"content": "hi"}}


def test_a_span_that_fails_to_map_is_skipped_without_its_siblings(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = otel._observation_name

    def fail_on_poison(span_name: str, attrs: dict[str, Any]) -> str:
        if span_name == "poison":
            raise RuntimeError("boom")
        return original(span_name, attrs)

    monkeypatch.setattr(otel, "_observation_name", fail_on_poison)
    spans = [
        child({"logfire.msg": "a"}),
        child({"logfire.msg": "b"}, span_id="1" * 16, name="poison"),
        child({"logfire.msg": "c"}, span_id="2" * 16),
    ]
    with caplog.at_level("WARNING", logger=otel.__name__):
        events = convert(*spans)
    names = [e["body"]["name"] for e in events if e["type"] != "trace-create"]
    assert names == ["a", "c"]
    assert "skipped 1 malformed OTel span" in caplog.text
