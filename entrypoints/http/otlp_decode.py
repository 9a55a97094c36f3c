"""Decode an OTLP/HTTP trace export body (protobuf or OTLP/JSON) into the neutral structure.

The result is `fathom.core.domain.otel.ResourceSpans`: plain dicts with lowercase hex ids,
int-nanosecond times and attribute values as Python values (bytes as base64 text), which the
core maps to Langfuse ingestion events. Bodies arrive already inflated: the HTTP layer handles
`Content-Encoding`.

Both decoders check what upstream checks before accepting an export: every span has a valid
trace id and span id (and a valid parent id when it has one), and the containers are arrays.
A violation rejects the whole export with `InvalidInput`, as upstream answers 400.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import orjson
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fathom.core.domain.errors import InvalidInput
from fathom.core.domain.otel import (
    InstrumentationScope,
    ResourceSpans,
    ScopeSpans,
    Span,
    SpanEvent,
    SpanStatus,
)

_TRACE_CONTRACT: Final = (
    "Each span must carry a 16-byte traceId and an 8-byte spanId (32 and 16 hex characters "
    "in OTLP/JSON), and a parentSpanId, when present, must be 8 bytes. This endpoint accepts "
    "OpenTelemetry trace exports (ExportTraceServiceRequest) only; logs and metrics payloads "
    "are not supported."
)
_NOT_TRACES: Final = (
    "This endpoint accepts OpenTelemetry trace exports only: the body must be an "
    "ExportTraceServiceRequest with a resourceSpans array (logs and metrics payloads are not "
    "supported)."
)
_ZERO_TRACE_ID: Final = bytes(16)
_ZERO_SPAN_ID: Final = bytes(8)


def _bad_id(field: str, location: str, name: str) -> InvalidInput:
    label = f" {name!r}" if name else ""
    return InvalidInput(
        f"Invalid OTLP trace export: span{label} at {location} has a missing or invalid "
        f"{field}. {_TRACE_CONTRACT}"
    )


# --------------------------------------------------------------------------------------------
# Protobuf


def decode_protobuf(body: bytes) -> list[ResourceSpans]:
    """Decode an `application/x-protobuf` ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidInput(f"Failed to parse OTel Protobuf Trace: {exc}. {_NOT_TRACES}") from None

    # Repeated fields are sliced before iterating: upb builds the list in C, which is about
    # twice as fast as its iterator protocol.
    result: list[ResourceSpans] = []
    for r_index, resource_spans in enumerate(request.resource_spans[:]):
        scope_spans_out: list[ScopeSpans] = []
        for s_index, scope_spans in enumerate(resource_spans.scope_spans[:]):
            scope = scope_spans.scope
            scope_out: InstrumentationScope = {
                "name": scope.name,
                "version": scope.version,
                "attributes": _pb_attributes(scope.attributes),
            }
            spans_out: list[Span] = []
            append = spans_out.append
            for p_index, span in enumerate(scope_spans.spans[:]):
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or trace_id == _ZERO_TRACE_ID
                    or span_id == _ZERO_SPAN_ID
                    or (parent and len(parent) != 8)
                ):
                    raise _pb_id_error(span, r_index, s_index, p_index)
                status = span.status
                events = span.events
                append(
                    {
                        "trace_id": trace_id.hex(),
                        "span_id": span_id.hex(),
                        "parent_span_id": (
                            parent.hex() if parent and parent != _ZERO_SPAN_ID else None
                        ),
                        "name": span.name,
                        "kind": span.kind,
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "attributes": _pb_attributes(span.attributes),
                        "events": _pb_events(events) if events else [],
                        "status": {"code": status.code, "message": status.message},
                    }
                )
            scope_spans_out.append({"scope": scope_out, "spans": spans_out})
        result.append(
            {
                "resource_attributes": _pb_attributes(resource_spans.resource.attributes),
                "scope_spans": scope_spans_out,
            }
        )
    return result


def validate_protobuf(body: bytes) -> int:
    """Check an export as `decode_protobuf` does, without converting it; the span count.

    The request path only needs to know the export is acceptable: parsing in C and checking
    the ids costs a small fraction of building the Python structure.
    """
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InvalidInput(f"Failed to parse OTel Protobuf Trace: {exc}. {_NOT_TRACES}") from None
    count = 0
    for r_index, resource_spans in enumerate(request.resource_spans[:]):
        for s_index, scope_spans in enumerate(resource_spans.scope_spans[:]):
            for p_index, span in enumerate(scope_spans.spans[:]):
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or trace_id == _ZERO_TRACE_ID
                    or span_id == _ZERO_SPAN_ID
                    or (parent and len(parent) != 8)
                ):
                    raise _pb_id_error(span, r_index, s_index, p_index)
                count += 1
    return count


def decode_otlp(body: bytes, otlp_format: str) -> list[ResourceSpans]:
    """Decode a stored export by the format it was accepted in ("otlp-protobuf"/"otlp-json")."""
    return decode_protobuf(body) if otlp_format == "otlp-protobuf" else decode_json(body)


def otlp_as_json(body: bytes, otlp_format: str) -> list[dict[str, Any]]:
    """The `resourceSpans` of an accepted export in OTLP/JSON form, as Langfuse hands them to
    its masking callback: a JSON export's own, or a protobuf export's as protobuf's JSON
    mapping writes them (camelCase names, ids and bytes in base64, 64-bit integers as
    strings, enums by name), which is what Langfuse's protobuf decoder gives too. Both forms
    decode with `decode_json`."""
    if otlp_format == "otlp-protobuf":
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        document: Any = MessageToDict(request)
    else:
        document = orjson.loads(body)
    resource_spans = _field(document, "resourceSpans", "resource_spans")
    return resource_spans if type(resource_spans) is list else []


def _pb_id_error(span: Any, r_index: int, s_index: int, p_index: int) -> InvalidInput:
    location = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{p_index}]"
    if len(span.trace_id) != 16 or span.trace_id == _ZERO_TRACE_ID:
        field = "traceId"
    elif len(span.span_id) != 8 or span.span_id == _ZERO_SPAN_ID:
        field = "spanId"
    else:
        field = "parentSpanId"
    return _bad_id(field, location, span.name)


def _pb_attributes(key_values: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key_value in key_values[:]:
        value = key_value.value
        # Nearly every attribute is a string: read it first and ask WhichOneof only for the
        # rest (an unset or non-string oneof reads as "").
        text = value.string_value
        attributes[key_value.key] = text if text else _pb_value(value)
    return attributes


def _pb_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        # Arrays are mostly of strings (tags): the same string-first shortcut.
        return [item.string_value or _pb_value(item) for item in value.array_value.values[:]]
    if which == "kvlist_value":
        return {item.key: _pb_value(item.value) for item in value.kvlist_value.values[:]}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, which)


def _pb_events(events: Any) -> list[SpanEvent]:
    return [
        {
            "name": event.name,
            "time_unix_nano": event.time_unix_nano,
            "attributes": _pb_attributes(event.attributes),
        }
        for event in events[:]
    ]


# --------------------------------------------------------------------------------------------
# OTLP/JSON

_SPAN_KINDS: Final = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODES: Final = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_OTHER_SIGNALS: Final = (
    "resourceLogs",
    "resource_logs",
    "resourceMetrics",
    "resource_metrics",
    "resourceProfiles",
    "resource_profiles",
)


def decode_json(body: bytes) -> list[ResourceSpans]:
    """Decode an `application/json` (OTLP/JSON) ExportTraceServiceRequest.

    OTLP/JSON uses lowerCamelCase names and hex ids; some exporters send protobuf-JSON style
    base64 ids or snake_case names, which are accepted too. int64 values may be strings or
    numbers.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Failed to parse OTel JSON Trace: {exc}") from None
    if type(document) is not dict:
        raise InvalidInput(
            f"Invalid OTLP/JSON trace export: the body is not an object. {_NOT_TRACES}"
        )
    resource_spans_in = _field(document, "resourceSpans", "resource_spans")
    if resource_spans_in is None:
        if any(key in document for key in _OTHER_SIGNALS):
            raise InvalidInput(f"Invalid OTLP/JSON trace export. {_NOT_TRACES}")
        return []
    _require_array(resource_spans_in, "resourceSpans")

    result: list[ResourceSpans] = []
    for r_index, resource_spans in enumerate(resource_spans_in):
        where = f"resourceSpans[{r_index}]"
        if type(resource_spans) is not dict:
            raise InvalidInput(f"Invalid OTLP/JSON trace export: {where} is not an object.")
        resource = resource_spans.get("resource")
        resource_attributes = (
            _json_attributes(resource.get("attributes"), f"{where}.resource.attributes")
            if type(resource) is dict
            else {}
        )
        scope_spans_in = _field(resource_spans, "scopeSpans", "scope_spans")
        if scope_spans_in is None:
            # Pre-1.0 exporters called it instrumentationLibrarySpans.
            scope_spans_in = _field(
                resource_spans, "instrumentationLibrarySpans", "instrumentation_library_spans"
            )
        scope_spans_out: list[ScopeSpans] = []
        if scope_spans_in is not None:
            _require_array(scope_spans_in, f"{where}.scopeSpans")
            for s_index, scope_spans in enumerate(scope_spans_in):
                scope_where = f"{where}.scopeSpans[{s_index}]"
                if type(scope_spans) is not dict:
                    raise InvalidInput(
                        f"Invalid OTLP/JSON trace export: {scope_where} is not an object."
                    )
                scope_spans_out.append(_json_scope_spans(scope_spans, scope_where))
        result.append({"resource_attributes": resource_attributes, "scope_spans": scope_spans_out})
    return result


def _json_scope_spans(scope_spans: dict[str, Any], where: str) -> ScopeSpans:
    scope = scope_spans.get("scope")
    if scope is None:
        scope = _field(scope_spans, "instrumentationLibrary", "instrumentation_library")
    if type(scope) is dict:
        scope_out: InstrumentationScope = {
            "name": _text(scope.get("name")),
            "version": _text(scope.get("version")),
            "attributes": _json_attributes(scope.get("attributes"), f"{where}.scope.attributes"),
        }
    else:
        scope_out = {"name": "", "version": "", "attributes": {}}
    spans_in = scope_spans.get("spans")
    spans_out: list[Span] = []
    if spans_in is not None:
        _require_array(spans_in, f"{where}.spans")
        for p_index, span in enumerate(spans_in):
            span_where = f"{where}.spans[{p_index}]"
            if type(span) is not dict:
                raise InvalidInput(
                    f"Invalid OTLP/JSON trace export: {span_where} is not an object."
                )
            spans_out.append(_json_span(span, span_where))
    return {"scope": scope_out, "spans": spans_out}


def _json_span(span: dict[str, Any], where: str) -> Span:
    name = _text(span.get("name"))
    trace_id = _json_id(_field(span, "traceId", "trace_id"), 16)
    if trace_id is None:
        raise _bad_id("traceId", where, name)
    span_id = _json_id(_field(span, "spanId", "span_id"), 8)
    if span_id is None:
        raise _bad_id("spanId", where, name)
    raw_parent = _field(span, "parentSpanId", "parent_span_id")
    parent_id = None
    if raw_parent:
        parent_id = _json_id(raw_parent, 8, allow_zero=True)
        if parent_id is None:
            raise _bad_id("parentSpanId", where, name)
        if parent_id == "0000000000000000":
            parent_id = None
    status = span.get("status")
    status_out: SpanStatus
    if type(status) is dict:
        code = status.get("code", 0)
        status_out = {
            "code": _STATUS_CODES.get(code, 0) if type(code) is str else _int(code),
            "message": _text(status.get("message")),
        }
    else:
        status_out = {"code": 0, "message": ""}
    kind = span.get("kind", 0)
    events = span.get("events")
    if events is not None:
        _require_array(events, f"{where}.events")
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_id,
        "name": name,
        "kind": _SPAN_KINDS.get(kind, 0) if type(kind) is str else _int(kind),
        "start_time_unix_nano": _int(_field(span, "startTimeUnixNano", "start_time_unix_nano")),
        "end_time_unix_nano": _int(_field(span, "endTimeUnixNano", "end_time_unix_nano")),
        "attributes": _json_attributes(span.get("attributes"), f"{where}.attributes"),
        "events": _json_events(events, where) if events else [],
        "status": status_out,
    }


def _json_events(events: list[Any], where: str) -> list[SpanEvent]:
    result: list[SpanEvent] = []
    for index, event in enumerate(events):
        if type(event) is not dict:
            continue
        result.append(
            {
                "name": _text(event.get("name")),
                "time_unix_nano": _int(_field(event, "timeUnixNano", "time_unix_nano")),
                "attributes": _json_attributes(
                    event.get("attributes"), f"{where}.events[{index}].attributes"
                ),
            }
        )
    return result


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _require_array(value: Any, where: str) -> None:
    if type(value) is not list:
        raise InvalidInput(
            f"Invalid OTLP/JSON trace export: {where} must be an array. "
            "An object here usually means an OTLP logs or metrics payload was sent to the "
            f"traces endpoint. {_NOT_TRACES}"
        )


def _text(value: Any) -> str:
    return value if type(value) is str else ("" if value is None else str(value))


def _int(value: Any) -> int:
    """An OTLP/JSON int64 (decimal string or number) → int; unusable values → 0."""
    kind = type(value)
    if kind is int:
        return value
    if kind is str:
        try:
            return int(value)
        except ValueError:
            return 0
    if kind is float and value == value and abs(value) < 2**64:
        return int(value)
    return 0


def _json_id(value: Any, size: int, *, allow_zero: bool = False) -> str | None:
    """Hex (OTLP/JSON) or base64 (protobuf-JSON) id of `size` bytes → lowercase hex."""
    if type(value) is not str or not value:
        return None
    raw: bytes | None = None
    if len(value) == size * 2:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
        if raw is not None and len(raw) != size:
            raw = None
    if raw is None:
        padded = value + "=" * (-len(value) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            try:
                raw = base64.urlsafe_b64decode(padded)
            except (binascii.Error, ValueError):
                return None
        if len(raw) != size:
            return None
    if not allow_zero and not any(raw):
        return None
    return raw.hex()


def _json_attributes(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not list:
        _require_array(value, where)
    attributes: dict[str, Any] = {}
    for item in value:
        if type(item) is not dict:
            continue
        key = item.get("key")
        if type(key) is not str:
            continue
        any_value = item.get("value")
        # Fast path: nearly every attribute is a string.
        text = any_value.get("stringValue") if type(any_value) is dict else None
        attributes[key] = text if type(text) is str else _json_value(any_value)
    return attributes


def _json_value(value: Any) -> Any:
    if type(value) is not dict:
        return None
    for kind, raw in value.items():
        if kind == "stringValue" or kind == "string_value":
            return raw if type(raw) is str else _text(raw)
        if kind == "intValue" or kind == "int_value":
            if type(raw) is int:
                return raw
            try:
                return int(raw)
            except (TypeError, ValueError):
                return raw
        if kind == "doubleValue" or kind == "double_value":
            if type(raw) is float:
                return raw
            try:
                return float(raw)
            except (TypeError, ValueError):
                return raw
        if kind == "boolValue" or kind == "bool_value":
            return raw if type(raw) is bool else raw == "true"
        if kind == "arrayValue" or kind == "array_value":
            items = raw.get("values") if type(raw) is dict else None
            return [_json_value(item) for item in items] if type(items) is list else []
        if kind == "kvlistValue" or kind == "kvlist_value":
            items = raw.get("values") if type(raw) is dict else None
            if type(items) is not list:
                return {}
            return {
                item["key"]: _json_value(item.get("value"))
                for item in items
                if type(item) is dict and type(item.get("key")) is str
            }
        if kind == "bytesValue" or kind == "bytes_value":
            return raw
    return None
