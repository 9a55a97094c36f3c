"""Realistic OTLP trace exports, shaped like the Langfuse Python SDK 5.x sends them.

Each trace is a root span with a chain of children; generations carry 1–2 KB of input and
output, a model and usage. Shared by the benchmarks and the crash test.
"""

from __future__ import annotations

import json
import os
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

TYPES = ["span", "generation", "tool", "generation", "event"]


def _kv(key: str, value: str | int | bool | list[str]) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, list):
        any_value = AnyValue()
        any_value.array_value.values.extend(AnyValue(string_value=v) for v in value)
        return KeyValue(key=key, value=any_value)
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _text(rng: random.Random, size: int) -> str:
    words = ["alpha", "beta", "gamma", "delta", "model", "token", "answer", "context"]
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(words)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def build_export(
    traces: int, *, spans_per_trace: int = 5, seed: int | None = None, user: str = "bench-user"
) -> tuple[bytes, list[str]]:
    """An ExportTraceServiceRequest with `traces` traces; returns (protobuf bytes, trace ids)."""
    rng = random.Random(seed)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            _kv("telemetry.sdk.language", "python"),
            _kv("service.name", "bench"),
            _kv("langfuse.environment", "bench"),
        ]
    )
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "langfuse-sdk"
    scope_spans.scope.version = "5.0.4"
    trace_ids: list[str] = []
    now = time.time_ns()
    for _ in range(traces):
        trace_id = os.urandom(16) if seed is None else rng.randbytes(16)
        trace_ids.append(trace_id.hex())
        span_ids = [
            os.urandom(8) if seed is None else rng.randbytes(8) for _ in range(spans_per_trace)
        ]
        for index in range(spans_per_trace):
            kind = TYPES[index % len(TYPES)] if index else "span"
            span = Span(
                trace_id=trace_id,
                span_id=span_ids[index],
                name=f"{kind}-{index}",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now + index * 1_000_000,
                end_time_unix_nano=now + index * 1_000_000 + (0 if kind == "event" else 500_000),
                flags=256,
            )
            if index:
                span.parent_span_id = span_ids[0]
            attributes = [
                _kv("langfuse.observation.type", kind),
                _kv("langfuse.environment", "bench"),
                _kv("user.id", user),
                _kv("session.id", f"session-{trace_id.hex()[:6]}"),
                _kv("langfuse.trace.tags", ["bench"]),
                _kv("langfuse.trace.metadata.tier", json.dumps("gold")),
            ]
            if kind == "generation":
                attributes += [
                    _kv(
                        "langfuse.observation.input",
                        json.dumps(
                            [{"role": "user", "content": _text(rng, rng.randint(1000, 2000))}]
                        ),
                    ),
                    _kv(
                        "langfuse.observation.output",
                        json.dumps(
                            {"role": "assistant", "content": _text(rng, rng.randint(1000, 2000))}
                        ),
                    ),
                    _kv("langfuse.observation.model.name", "gpt-4o-mini"),
                    _kv(
                        "langfuse.observation.usage_details",
                        json.dumps({"input": 400, "output": 300, "total": 700}),
                    ),
                    _kv("langfuse.observation.model.parameters", json.dumps({"temperature": 0.2})),
                ]
            else:
                attributes += [
                    _kv("langfuse.observation.input", json.dumps({"step": index})),
                    _kv("langfuse.observation.output", json.dumps({"ok": True})),
                ]
            span.attributes.extend(attributes)
            scope_spans.spans.append(span)
    return request.SerializeToString(), trace_ids
