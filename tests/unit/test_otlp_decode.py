"""OTLP/HTTP trace export decoding (protobuf and OTLP/JSON) into the neutral structure."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from fathom.core.domain.errors import InvalidInput
from fathom.entrypoints.http.otlp_decode import decode_json, decode_protobuf

# sdk-wire.md §10 sample A: one OTLP request with one generation span, as MessageToDict prints
# it (base64 ids, int64 as strings).
SAMPLE_A: dict[str, Any] = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [
                    {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
                    {"key": "langfuse.environment", "value": {"stringValue": "staging"}},
                    {"key": "langfuse.release", "value": {"stringValue": "rel-1.2.3"}},
                    {"key": "service.name", "value": {"stringValue": "unknown_service:python"}},
                ]
            },
            "scopeSpans": [
                {
                    "scope": {
                        "name": "langfuse-sdk",
                        "version": "5.0.4",
                        "attributes": [
                            {"key": "public_key", "value": {"stringValue": "pk-lf-probe"}}
                        ],
                    },
                    "spans": [
                        {
                            "traceId": "vwGUNU5tKwywg0q6L5vTiw==",
                            "spanId": "PMcnSkpc+yc=",
                            "parentSpanId": "N4r5cth2rPA=",
                            "name": "llm-call",
                            "kind": "SPAN_KIND_INTERNAL",
                            "startTimeUnixNano": "1795337479380233506",
                            "endTimeUnixNano": "1795337479380554543",
                            "status": {},
                            "flags": 256,
                            "attributes": [
                                {"key": "user.id", "value": {"stringValue": "user-2"}},
                                {"key": "session.id", "value": {"stringValue": "sess-2"}},
                                {
                                    "key": "langfuse.trace.metadata.tier",
                                    "value": {"stringValue": '"gold"'},
                                },
                                {
                                    "key": "langfuse.trace.tags",
                                    "value": {"arrayValue": {"values": [{"stringValue": "alpha"}]}},
                                },
                                {
                                    "key": "langfuse.observation.type",
                                    "value": {"stringValue": "generation"},
                                },
                                {
                                    "key": "langfuse.observation.usage_details",
                                    "value": {
                                        "stringValue": '{"input": 10, "output": 20, "total": 30}'
                                    },
                                },
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}
SAMPLE_A_TRACE_ID = "bf0194354e6d2b0cb0834aba2f9bd38b"  # sample B's trace id
SAMPLE_A_SPAN_ID = "3cc7274a4a5cfb27"  # the generation's id in the score sample (§6)
SAMPLE_A_PARENT_ID = "378af972d876acf0"  # sample B's root span id


def _sample_a_protobuf() -> bytes:
    return ParseDict(copy.deepcopy(SAMPLE_A), ExportTraceServiceRequest()).SerializeToString()


def _sdk_body(**kwargs: Any) -> tuple[bytes, list[Any]]:
    """Spans made and encoded by the OpenTelemetry SDK, as the Langfuse SDK ships them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "deploy.n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("langfuse-sdk", "5.0.4", attributes={"public_key": "pk-lf-1"})
    with tracer.start_as_current_span(
        "root",
        kind=SpanKind.SERVER,
        attributes={
            "s": "text",
            "b": True,
            "i": -42,
            "big": 2**62,
            "f": 0.25,
            "tags": ["a", "b"],
            "ints": [1, 2],
            "empty": "",
        },
    ) as root:
        with tracer.start_as_current_span("child") as child:
            child.add_event("gen_ai.user.message", {"content": "hi"}, timestamp=1_700_000_000_5)
            child.set_status(Status(StatusCode.ERROR, "boom"))
        root.set_attribute("late", "x")
    spans = list(exporter.get_finished_spans())
    return encode_spans(spans).SerializeToString(), spans


def _hex_json(body: bytes) -> bytes:
    """Protobuf → OTLP/JSON the way OTLP/JSON exporters write it (hex ids)."""
    document = MessageToDict(ExportTraceServiceRequest.FromString(body))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


# --------------------------------------------------------------------------------------------
# Protobuf


def test_protobuf_from_the_opentelemetry_sdk() -> None:
    body, spans = _sdk_body()
    [resource_spans] = decode_protobuf(body)

    assert resource_spans["resource_attributes"]["service.name"] == "svc"
    assert resource_spans["resource_attributes"]["deploy.n"] == 3
    [scope_spans] = resource_spans["scope_spans"]
    assert scope_spans["scope"] == {
        "name": "langfuse-sdk",
        "version": "5.0.4",
        "attributes": {"public_key": "pk-lf-1"},
    }
    by_name = {span["name"]: span for span in scope_spans["spans"]}
    child, root = by_name["child"], by_name["root"]
    sdk_root = next(span for span in spans if span.name == "root")

    assert root["trace_id"] == format(sdk_root.context.trace_id, "032x")
    assert root["span_id"] == format(sdk_root.context.span_id, "016x")
    assert root["parent_span_id"] is None
    assert child["parent_span_id"] == root["span_id"]
    assert child["trace_id"] == root["trace_id"]
    assert root["start_time_unix_nano"] == sdk_root.start_time
    assert root["end_time_unix_nano"] == sdk_root.end_time
    assert root["kind"] == 2  # SERVER
    assert root["attributes"] == {
        "s": "text",
        "b": True,
        "i": -42,
        "big": 2**62,
        "f": 0.25,
        "tags": ["a", "b"],
        "ints": [1, 2],
        "empty": "",
        "late": "x",
    }
    assert root["status"] == {"code": 0, "message": ""}
    assert child["status"] == {"code": 2, "message": "boom"}
    assert child["events"] == [
        {
            "name": "gen_ai.user.message",
            "time_unix_nano": 1_700_000_000_5,
            "attributes": {"content": "hi"},
        }
    ]
    assert root["events"] == []


def test_protobuf_sample_a_ids_become_lowercase_hex() -> None:
    [resource_spans] = decode_protobuf(_sample_a_protobuf())
    [span] = resource_spans["scope_spans"][0]["spans"]
    assert span["trace_id"] == SAMPLE_A_TRACE_ID
    assert span["span_id"] == SAMPLE_A_SPAN_ID
    assert span["parent_span_id"] == SAMPLE_A_PARENT_ID
    assert span["start_time_unix_nano"] == 1795337479380233506
    assert span["end_time_unix_nano"] == 1795337479380554543
    assert span["kind"] == 1
    assert span["attributes"]["langfuse.trace.tags"] == ["alpha"]
    assert span["attributes"]["langfuse.trace.metadata.tier"] == '"gold"'
    assert resource_spans["resource_attributes"]["langfuse.environment"] == "staging"


def test_protobuf_kvlist_bytes_and_unset_values() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex(SAMPLE_A_TRACE_ID)
    span.span_id = bytes.fromhex(SAMPLE_A_SPAN_ID)
    span.parent_span_id = bytes(8)  # all zeros: no parent
    kv = span.attributes.add(key="map")
    entry = kv.value.kvlist_value.values.add(key="inner")
    entry.value.array_value.values.add().double_value = 1.5
    span.attributes.add(key="raw").value.bytes_value = b"\x00\xff"
    span.attributes.add(key="unset")
    span.attributes.add(key="no").value.bool_value = False
    span.attributes.add(key="zero").value.int_value = 0

    [resource_spans] = decode_protobuf(request.SerializeToString())
    [decoded] = resource_spans["scope_spans"][0]["spans"]
    assert decoded["parent_span_id"] is None
    assert decoded["attributes"] == {
        "map": {"inner": [1.5]},
        "raw": base64.b64encode(b"\x00\xff").decode(),
        "unset": None,
        "no": False,
        "zero": 0,
    }
    assert resource_spans["resource_attributes"] == {}
    assert resource_spans["scope_spans"][0]["scope"] == {
        "name": "",
        "version": "",
        "attributes": {},
    }


def test_protobuf_empty_body_is_an_empty_export() -> None:
    assert decode_protobuf(b"") == []


def test_protobuf_malformed_body_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="Failed to parse OTel Protobuf Trace"):
        decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f not protobuf")


def test_protobuf_json_body_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        decode_protobuf(json.dumps(SAMPLE_A).encode())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("trace_id", b"", "traceId"),
        ("trace_id", b"\x01" * 8, "traceId"),
        ("trace_id", bytes(16), "traceId"),
        ("span_id", b"", "spanId"),
        ("span_id", b"\x01" * 16, "spanId"),
        ("parent_span_id", b"\x01" * 3, "parentSpanId"),
    ],
)
def test_protobuf_bad_ids_reject_the_export(field: str, value: bytes, message: str) -> None:
    request = ParseDict(copy.deepcopy(SAMPLE_A), ExportTraceServiceRequest())
    span = request.resource_spans[0].scope_spans[0].spans[0]
    setattr(span, field, value)
    with pytest.raises(InvalidInput) as caught:
        decode_protobuf(request.SerializeToString())
    text = caught.value.message
    assert f"invalid {message}" in text
    assert "'llm-call'" in text and "resourceSpans[0].scopeSpans[0].spans[0]" in text
    assert "16-byte traceId and an 8-byte spanId" in text


def test_protobuf_logs_payload_is_rejected() -> None:
    logs = ExportLogsServiceRequest()
    record = logs.resource_logs.add().scope_logs.add().log_records.add()
    record.time_unix_nano = 1_700_000_000_000_000_000
    record.body.string_value = "a log line"
    record.severity_text = "INFO"
    with pytest.raises(InvalidInput, match="logs and metrics"):
        decode_protobuf(logs.SerializeToString())


# --------------------------------------------------------------------------------------------
# OTLP/JSON


def test_json_matches_protobuf_for_sdk_spans() -> None:
    body, _ = _sdk_body()
    assert decode_json(_hex_json(body)) == decode_protobuf(body)


def test_json_accepts_base64_ids_as_protobuf_json_writers_emit() -> None:
    decoded = decode_json(json.dumps(SAMPLE_A).encode())
    assert decoded == decode_protobuf(_sample_a_protobuf())
    span = decoded[0]["scope_spans"][0]["spans"][0]
    assert (span["trace_id"], span["span_id"], span["parent_span_id"]) == (
        SAMPLE_A_TRACE_ID,
        SAMPLE_A_SPAN_ID,
        SAMPLE_A_PARENT_ID,
    )


def test_json_value_encodings() -> None:
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "scope": {"name": "my-lib"},
                        "spans": [
                            {
                                "traceId": SAMPLE_A_TRACE_ID.upper(),
                                "spanId": SAMPLE_A_SPAN_ID,
                                "parentSpanId": "",
                                "name": "op",
                                "kind": 3,
                                "startTimeUnixNano": 1795337479380233506,
                                "endTimeUnixNano": "1795337479380554543",
                                "status": {"code": "STATUS_CODE_ERROR", "message": "bad"},
                                "attributes": [
                                    {"key": "s", "value": {"stringValue": "x"}},
                                    {"key": "i_str", "value": {"intValue": "9007199254740993"}},
                                    {"key": "i_num", "value": {"intValue": 7}},
                                    {"key": "d", "value": {"doubleValue": 0.5}},
                                    {"key": "d_str", "value": {"doubleValue": "2.5"}},
                                    {"key": "b", "value": {"boolValue": True}},
                                    {
                                        "key": "arr",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"intValue": "1"}, {"stringValue": "a"}]
                                            }
                                        },
                                    },
                                    {
                                        "key": "kv",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "k", "value": {"boolValue": False}}
                                                ]
                                            }
                                        },
                                    },
                                    {"key": "raw", "value": {"bytesValue": "AP8="}},
                                    {"key": "nothing", "value": {}},
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": "5",
                                        "name": "e",
                                        "attributes": [{"key": "a", "value": {"stringValue": "b"}}],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            }
        ]
    }
    [resource_spans] = decode_json(json.dumps(document).encode())
    assert resource_spans["resource_attributes"] == {}
    [scope_spans] = resource_spans["scope_spans"]
    assert scope_spans["scope"] == {"name": "my-lib", "version": "", "attributes": {}}
    [span] = scope_spans["spans"]
    assert span["trace_id"] == SAMPLE_A_TRACE_ID  # lowercased
    assert span["parent_span_id"] is None
    assert span["kind"] == 3
    assert span["start_time_unix_nano"] == 1795337479380233506
    assert span["end_time_unix_nano"] == 1795337479380554543
    assert span["status"] == {"code": 2, "message": "bad"}
    assert span["attributes"] == {
        "s": "x",
        "i_str": 9007199254740993,
        "i_num": 7,
        "d": 0.5,
        "d_str": 2.5,
        "b": True,
        "arr": [1, "a"],
        "kv": {"k": False},
        "raw": "AP8=",
        "nothing": None,
    }
    assert span["events"] == [{"name": "e", "time_unix_nano": 5, "attributes": {"a": "b"}}]


def test_json_snake_case_names_are_accepted() -> None:
    document = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": SAMPLE_A_TRACE_ID,
                                "span_id": SAMPLE_A_SPAN_ID,
                                "parent_span_id": SAMPLE_A_PARENT_ID,
                                "start_time_unix_nano": "10",
                                "attributes": [{"key": "k", "value": {"string_value": "v"}}],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    [span] = decode_json(json.dumps(document).encode())[0]["scope_spans"][0]["spans"]
    assert span["parent_span_id"] == SAMPLE_A_PARENT_ID
    assert span["start_time_unix_nano"] == 10
    assert span["end_time_unix_nano"] == 0
    assert span["attributes"] == {"k": "v"}


def test_json_without_resource_spans_is_an_empty_export() -> None:
    assert decode_json(b"{}") == []
    assert decode_json(b'{"resourceSpans": []}') == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"text"'],
)
def test_json_unparsable_or_not_an_object(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode_json(body)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("traceId", None, "traceId"),
        ("traceId", "xyz", "traceId"),
        ("traceId", "00000000000000000000000000000000", "traceId"),
        ("traceId", SAMPLE_A_SPAN_ID, "traceId"),  # a span id is too short
        ("spanId", None, "spanId"),
        ("spanId", "not-an-id!", "spanId"),
        ("parentSpanId", "abc", "parentSpanId"),
    ],
)
def test_json_bad_ids_reject_the_export(key: str, value: str | None, field: str) -> None:
    document = copy.deepcopy(SAMPLE_A)
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    if value is None:
        del span[key]
    else:
        span[key] = value
    with pytest.raises(InvalidInput) as caught:
        decode_json(json.dumps(document).encode())
    assert f"invalid {field}" in caught.value.message
    assert "logs and metrics payloads are not supported" in caught.value.message


def test_json_logs_payload_is_rejected() -> None:
    logs = {
        "resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "a log line"}}]}]}]
    }
    with pytest.raises(InvalidInput, match="trace exports only"):
        decode_json(json.dumps(logs).encode())


@pytest.mark.parametrize(
    ("path", "where"),
    [
        (("resourceSpans",), "resourceSpans must be an array"),
        (("resourceSpans", 0, "scopeSpans"), "resourceSpans[0].scopeSpans must be an array"),
        (
            ("resourceSpans", 0, "scopeSpans", 0, "spans"),
            "resourceSpans[0].scopeSpans[0].spans must be an array",
        ),
        (
            ("resourceSpans", 0, "scopeSpans", 0, "spans", 0, "attributes"),
            "resourceSpans[0].scopeSpans[0].spans[0].attributes must be an array",
        ),
        (
            ("resourceSpans", 0, "resource", "attributes"),
            "resourceSpans[0].resource.attributes must be an array",
        ),
        (
            ("resourceSpans", 0, "scopeSpans", 0, "spans", 0, "events"),
            "resourceSpans[0].scopeSpans[0].spans[0].events must be an array",
        ),
    ],
)
def test_json_non_array_collections_are_rejected(path: tuple[Any, ...], where: str) -> None:
    document: Any = copy.deepcopy(SAMPLE_A)
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = {"values": []}  # an object where OTLP wants an array
    with pytest.raises(InvalidInput) as caught:
        decode_json(json.dumps(document).encode())
    assert where in caught.value.message
    assert "logs or metrics payload" in caught.value.message
