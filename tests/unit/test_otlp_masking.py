"""Masking on the OTLP path (`AcceptOtlpSpans`): an `OtlpMasker` gets the export in its
OTLP/JSON form, as Langfuse's callback does; a masker of events only gets the events
converted from it; nothing unmasked is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fathom.core.domain.access import AccessLevel, ApiKeyScope, Principal
from fathom.core.usecases.ingestion import (
    EVENTS,
    OTLP_JSON,
    AcceptOtlpSpans,
    DurableBatchWriter,
)
from fathom.entrypoints.http.otlp_decode import decode_otlp, otlp_as_json
from tests.unit.fakes import FakeClock, SequentialIds
from tests.unit.test_ingestion_worker_step import Blobs, Codec, Queue

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
EXPORT = {
    "resourceSpans": [
        {
            "scopeSpans": [
                {
                    "scope": {"name": "my-instrumentation"},
                    "spans": [
                        {
                            "traceId": TRACE_ID,
                            "spanId": "00f067aa0ba902b7",
                            "name": "root",
                            "startTimeUnixNano": "1764000000000000000",
                            "attributes": [
                                {
                                    "key": "langfuse.observation.input",
                                    "value": {"stringValue": "my secret"},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ]
}


class ExportMasker:
    """Masks exports (and events, which it must then not be asked for)."""

    def __init__(self, drop: bool = False) -> None:
        self.drop = drop
        self.exports: list[list[dict[str, Any]]] = []
        self.event_calls = 0

    async def mask_otlp(
        self,
        project_id: str,
        organization_id: str,
        resource_spans: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]] | None:
        self.exports.append(resource_spans)
        if self.drop:
            return None
        text = json.dumps(resource_spans).replace("my secret", "[MASKED]")
        masked: list[dict[str, Any]] = json.loads(text)
        return masked

    async def mask(
        self,
        project_id: str,
        organization_id: str,
        events: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        self.event_calls += 1
        return events


class EventMasker:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def mask(
        self,
        project_id: str,
        organization_id: str,
        events: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        self.seen.extend(events)
        return events


async def accept(*maskers: Any) -> tuple[Blobs, Queue]:
    blobs, queue = Blobs(), Queue()
    writer = DurableBatchWriter(
        blobs,  # type: ignore[arg-type]
        queue,  # type: ignore[arg-type]
        Codec(),  # type: ignore[arg-type]
        FakeClock(NOW),
        SequentialIds(),
        maskers=maskers,
    )
    accept_spans = AcceptOtlpSpans(
        writer,
        FakeClock(NOW),
        Codec(),  # type: ignore[arg-type]
        decode_otlp,
        otlp_as_json,
    )
    principal = Principal(
        access_level=AccessLevel.PROJECT,
        organization_id="o1",
        project_id="p1",
        api_key_id="k1",
        public_key="pk-lf-1",
        scope=ApiKeyScope.PROJECT,
    )
    await accept_spans(principal, json.dumps(EXPORT).encode(), OTLP_JSON, None, {})
    return blobs, queue


async def test_an_export_masker_gets_the_export_and_the_masked_export_is_stored() -> None:
    masker = ExportMasker()
    blobs, queue = await accept(masker)

    assert masker.exports == [EXPORT["resourceSpans"]]
    assert masker.event_calls == 0
    ((_, job),) = queue.jobs
    assert job["format"] == OTLP_JSON  # stored as an export: the worker converts it
    stored = blobs.data[job["key"]]
    assert b"[MASKED]" in stored and b"my secret" not in stored


async def test_an_events_masker_after_an_export_masker_gets_the_masked_events() -> None:
    export_masker, event_masker = ExportMasker(), EventMasker()
    blobs, queue = await accept(export_masker, event_masker)

    assert len(export_masker.exports) == 1 and export_masker.event_calls == 0
    observation = next(e for e in event_masker.seen if e["type"] != "trace-create")
    assert observation["body"]["input"] == "[MASKED]"
    ((_, job),) = queue.jobs
    assert job["format"] == EVENTS
    assert b"my secret" not in blobs.data[job["key"]]


async def test_an_export_a_masker_drops_is_not_stored() -> None:
    event_masker = EventMasker()
    blobs, queue = await accept(ExportMasker(drop=True), event_masker)

    assert queue.jobs == [] and blobs.data == {} and event_masker.seen == []
