"""Benchmark: OTLP decode and span → ingestion-event mapping, in µs per span.

10,000 spans shaped like the Langfuse Python SDK 5 sends them (sdk-wire.md §5): 2,000 traces of
5 spans (root span, agent, generation with 1-2 KB input/output, tool, event), every span with
the propagated trace attributes, exported in requests of 512 spans (the SDK's batch size).

    /tmp/venv/bin/python -P bench/otel_decode.py

(`-P`: bench/ holds modules named like the standard library's, e.g. queue.py, which would
shadow them when the script's folder is put first on sys.path.)
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0].rstrip("/").endswith("bench"):
    del sys.path[0]  # same protection when run without -P

import base64
import gc
import json
import random
import statistics
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from fathom.core.domain.otel import spans_to_ingestion_events
from fathom.entrypoints.http.otlp_decode import decode_json, decode_protobuf

TRACES = 2_000
BATCH = 512
ROUNDS = 7


def _chat(rng: random.Random, size: int) -> str:
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(size // 6)
    ]
    text = " ".join(words)[:size]
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": text},
    ]
    return json.dumps(messages)


def build_spans() -> list:
    rng = random.Random(7)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"langfuse.environment": "production", "langfuse.release": "rel-1.2.3"}
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("langfuse-sdk", "5.0.4", attributes={"public_key": "pk-lf-x"})
    for n in range(TRACES):
        propagated = {
            "user.id": f"user-{n % 97}",
            "session.id": f"sess-{n % 31}",
            "langfuse.trace.name": "support-chat",
            "langfuse.trace.tags": ["alpha", "beta"],
            "langfuse.trace.metadata.tier": '"gold"',
            "langfuse.trace.metadata.region": '"eu-west-1"',
            "langfuse.environment": "production",
            "langfuse.release": "rel-1.2.3",
            "langfuse.version": "v7",
        }
        with tracer.start_as_current_span(
            "handle-request",
            attributes={
                **propagated,
                "langfuse.internal.is_app_root": True,
                "langfuse.observation.type": "span",
                "langfuse.observation.input": json.dumps({"question": "How do I reset it?"}),
                "langfuse.observation.output": json.dumps({"answer": "Press the button."}),
                "langfuse.observation.metadata.request_id": json.dumps(f"req-{n}"),
            },
        ):
            with tracer.start_as_current_span(
                "agent",
                attributes={
                    **propagated,
                    "langfuse.observation.type": "agent",
                    "langfuse.observation.input": json.dumps({"goal": "answer"}),
                    "langfuse.observation.metadata.step": "1",
                },
            ):
                size = rng.randint(1_000, 2_000)
                with tracer.start_as_current_span(
                    "llm-call",
                    attributes={
                        **propagated,
                        "langfuse.observation.type": "generation",
                        "langfuse.observation.model.name": "gpt-4o-mini",
                        "langfuse.observation.model.parameters": json.dumps(
                            {"temperature": 0.7, "max_tokens": 512}
                        ),
                        "langfuse.observation.input": _chat(rng, size),
                        "langfuse.observation.output": json.dumps(
                            {"role": "assistant", "content": _chat(rng, size)}
                        ),
                        "langfuse.observation.usage_details": json.dumps(
                            {"input": 412, "output": 233, "total": 645}
                        ),
                        "langfuse.observation.completion_start_time": json.dumps(
                            "2025-01-01T12:00:00.500000Z"
                        ),
                        "langfuse.observation.prompt.name": "support",
                        "langfuse.observation.prompt.version": 3,
                    },
                ):
                    pass
                with tracer.start_as_current_span(
                    "lookup-order",
                    attributes={
                        **propagated,
                        "langfuse.observation.type": "tool",
                        "langfuse.observation.input": json.dumps({"order_id": n}),
                        "langfuse.observation.output": json.dumps({"status": "shipped"}),
                    },
                ) as tool:
                    if n % 10 == 0:
                        tool.set_status(Status(StatusCode.ERROR, "timeout"))
            with tracer.start_as_current_span(
                "user-feedback",
                attributes={
                    **propagated,
                    "langfuse.observation.type": "event",
                    "langfuse.observation.input": "thumbs up",
                },
            ):
                pass
    return list(exporter.get_finished_spans())


def to_otlp_json(body: bytes) -> bytes:
    """Protobuf → OTLP/JSON as exporters send it (hex ids, not protobuf-JSON base64)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    document = MessageToDict(ExportTraceServiceRequest.FromString(body))
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def measure(label: str, spans: int, run: Callable[[], object]) -> None:
    def best(collector: bool) -> tuple[float, float]:
        samples = []
        for _ in range(ROUNDS):
            if not collector:
                gc.disable()
            try:
                # CPU time: other processes on a shared machine do not inflate it.
                started = time.process_time()
                run()
                samples.append(time.process_time() - started)
            finally:
                gc.enable()
        return min(samples) / spans * 1e6, statistics.median(samples) / spans * 1e6

    on, on_median = best(True)
    off, off_median = best(False)
    print(
        f"{label:<26} {on:7.2f} µs/span (median {on_median:6.2f})"
        f"   GC off: {off:7.2f} (median {off_median:6.2f})"
    )


def main() -> None:
    spans = build_spans()
    bodies = [
        encode_spans(spans[i : i + BATCH]).SerializeToString() for i in range(0, len(spans), BATCH)
    ]
    json_bodies = [to_otlp_json(body) for body in bodies]
    total = len(spans)
    del spans
    size = sum(len(b) for b in bodies)
    print(f"{total} spans in {len(bodies)} requests, {size / total:.0f} protobuf bytes/span")

    decoded = [decode_protobuf(body) for body in bodies]
    # The fixtures (10,000 decoded spans) are long-lived: keep the collector from rescanning
    # them, as it would not rescan a server's settled heap either. The measured code still
    # pays for collecting its own allocations.
    gc.collect()
    gc.freeze()
    received_at = datetime.now(UTC)
    counter = iter(range(10**9))

    def fast_id() -> str:  # the caller's IdGenerator; uuid4 alone costs ~2 µs
        return f"{next(counter):016x}"

    def decode_all() -> None:
        for body in bodies:
            decode_protobuf(body)

    def decode_all_json() -> None:
        for body in json_bodies:
            decode_json(body)

    def map_all() -> None:
        for resource_spans in decoded:
            spans_to_ingestion_events(
                resource_spans, sdk_version="5.0.4", received_at=received_at, new_id=fast_id
            )

    def both() -> None:
        for body in bodies:
            spans_to_ingestion_events(
                decode_protobuf(body), sdk_version="5.0.4", received_at=received_at, new_id=fast_id
            )

    # Shared cloud VMs differ a lot in speed: print a reference to scale the numbers by.
    reference = (
        min(timeit.repeat("sum(range(1_000_000))", timer=time.process_time, number=5, repeat=5))
        / 5
        * 1e3
    )
    print(f"python {sys.version.split()[0]}; reference sum(range(1e6)) = {reference:.1f} ms")
    print(f"CPU time, best of {ROUNDS} rounds over all {total} spans")
    measure("decode protobuf", total, decode_all)
    measure("decode OTLP/JSON", total, decode_all_json)
    measure("map to ingestion events", total, map_all)
    measure("decode protobuf + map", total, both)
    events = sum(
        len(
            spans_to_ingestion_events(
                r, sdk_version="5.0.4", received_at=received_at, new_id=fast_id
            )
        )
        for r in decoded
    )
    print(f"{events} events ({events / total:.2f} per span)")


if __name__ == "__main__":
    main()
