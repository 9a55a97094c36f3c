"""Ingestion: accept batches durably on the web side, merge and write them in the worker.

Web side (every path: legacy batch, OTLP, scores): validate → mask → write the events to
the blob store → enqueue one job → answer. Nothing is acknowledged before both writes
returned, so a crash after the answer loses nothing. Worker side: load the batches of many
jobs at once → merge per entity with the stored rows → price → enrich → upsert in bulk.
Processing is idempotent, so a job delivered twice (after a crash) changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fathom.core.domain.access import Principal
from fathom.core.domain.errors import InvalidInput, NotFound
from fathom.core.domain.ingestion import (
    INVALID_REQUEST_MESSAGE,
    EntityKind,
    EventError,
    EventType,
    ParsedEvent,
    ScoreEvent,
    is_authorized,
    parse_batch,
    parse_score_request,
    sort_events,
)
from fathom.core.domain.merge import entity_ids, merge_batch
from fathom.core.domain.otel import ResourceSpans, spans_to_ingestion_events
from fathom.core.domain.score_configs import (
    CONFIG_NOT_FOUND,
    ScoreConfig,
    ScoreInput,
    inflate_score,
    validate_score_against_config,
)
from fathom.core.domain.scores import ScoreDataType
from fathom.core.domain.tracing import Observation
from fathom.core.ports.blob import BlobStore
from fathom.core.ports.extensions import Enricher, Exporter, Masker, OtlpMasker
from fathom.core.ports.foreground import Foreground, GiveWay
from fathom.core.ports.locks import Locks, ProcessLocks
from fathom.core.ports.queue import Job, JobQueue
from fathom.core.ports.records import RecordStore
from fathom.core.ports.system import Clock, IdGenerator, JsonCodec
from fathom.core.ports.telemetry import TelemetryStore
from fathom.core.usecases.datasets import RecordExperimentLinks
from fathom.core.usecases.evaluation import ScoreConfigCache
from fathom.core.usecases.prompts import LinkObservationsToPrompts

log = logging.getLogger("fathom.ingestion")

INGESTION_JOB = "ingestion"
# What an ingestion job's blob holds.
EVENTS = "events"
OTLP_PROTOBUF = "otlp-protobuf"
OTLP_JSON = "otlp-json"

# Decodes a stored OTLP export (bytes, format) into the neutral span structure; the wire
# formats are the edge's business, so the wiring passes the decoder in.
OtlpDecoder = Callable[[bytes, str], list[ResourceSpans]]
# An accepted OTLP export (bytes, format) as the `resourceSpans` of its OTLP/JSON form: what
# Langfuse's masking callback receives.
OtlpAsJson = Callable[[bytes, str], list[dict[str, Any]]]


class ObservationPricer(Protocol):
    async def __call__(self, project_id: str, observations: list[Observation]) -> None:
        """Fill model id, usage, cost and total cost of priced observations in place."""
        ...

    async def prepare(self) -> None:
        """Build now what the first call would otherwise build (the model matcher)."""
        ...


@dataclass(slots=True)
class BatchResult:
    """The 207 body of `POST /api/public/ingestion`."""

    successes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"successes": self.successes, "errors": self.errors}


class DurableBatchWriter:
    """Masks events, writes them as one blob and enqueues one job that points at it."""

    def __init__(
        self,
        blobs: BlobStore,
        queue: JobQueue,
        codec: JsonCodec,
        clock: Clock,
        ids: IdGenerator,
        maskers: Sequence[Masker] = (),
    ) -> None:
        self._blobs, self._queue, self._codec = blobs, queue, codec
        self._clock, self._ids = clock, ids
        self._maskers = list(maskers)
        # The maskers that take OTLP exports as they are (`OtlpMasker`); fixed at wiring.
        self._otlp_maskers = [m for m in self._maskers if isinstance(m, OtlpMasker)]

    async def mask(
        self,
        principal: Principal,
        events: list[dict[str, Any]],
        headers: Mapping[str, str],
        *,
        otlp_masked: bool = False,
    ) -> list[dict[str, Any]]:
        """`otlp_masked`: the events come from an export `mask_otlp` already masked, so the
        maskers that did are not asked again."""
        for masker in self._maskers:
            if otlp_masked and masker in self._otlp_maskers:
                continue
            events = await masker.mask(
                principal.project_id or "", principal.organization_id, events, headers
            )
        return events

    async def mask_otlp(
        self,
        principal: Principal,
        resource_spans: list[dict[str, Any]],
        headers: Mapping[str, str],
    ) -> list[dict[str, Any]] | None:
        """The export masked by every `OtlpMasker`; None when one dropped it."""
        masked: list[dict[str, Any]] | None = resource_spans
        for masker in self._otlp_maskers:
            masked = await masker.mask_otlp(
                principal.project_id or "", principal.organization_id, masked, headers
            )
            if masked is None:
                return None
        return masked

    async def close(self) -> None:
        for masker in self._maskers:
            close = getattr(masker, "close", None)
            if close is not None:
                await close()

    @property
    def masks(self) -> bool:
        return bool(self._maskers)

    @property
    def masks_otlp(self) -> bool:
        return bool(self._otlp_maskers)

    @property
    def masks_only_otlp(self) -> bool:
        """Every masker masks OTLP exports: a masked export needs no converting here."""
        return len(self._otlp_maskers) == len(self._maskers)

    async def write(self, project_id: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        now = self._clock.now()
        key = f"events/{project_id}/{now:%Y/%m/%d/%H}/{self._ids.new_id()}.json"
        payload = {"projectId": project_id, "receivedAt": now.isoformat(), "events": events}
        data = self._codec.dumps(payload)
        await self._blobs.put(key, data, "application/json")
        await self._queue.enqueue(
            INGESTION_JOB,
            {"projectId": project_id, "key": key, "format": EVENTS, "bytes": len(data)},
        )

    async def write_otlp(
        self, project_id: str, body: bytes, otlp_format: str, sdk_version: str | None
    ) -> None:
        """Store an OTLP export as received; the worker converts it. Converting there keeps
        the request path short (the conversion is most of the CPU an ingested span costs)."""
        now = self._clock.now()
        suffix = "pb" if otlp_format == OTLP_PROTOBUF else "json"
        key = f"otlp/{project_id}/{now:%Y/%m/%d/%H}/{self._ids.new_id()}.{suffix}"
        await self._blobs.put(key, body, None)
        await self._queue.enqueue(
            INGESTION_JOB,
            {
                "projectId": project_id,
                "key": key,
                "format": otlp_format,
                "receivedAt": now.isoformat(),
                "sdkVersion": sdk_version,
                "bytes": len(body),
            },
        )


class AcceptIngestionBatch:
    """`POST /api/public/ingestion`: per-event validation, the rest of the batch still lands."""

    def __init__(self, writer: DurableBatchWriter, score_configs: ScoreConfigCheck) -> None:
        self._writer = writer
        self._score_configs = score_configs

    async def __call__(
        self, principal: Principal, body: Any, headers: Mapping[str, str]
    ) -> BatchResult:
        if type(body) is not dict or type(body.get("batch")) is not list:
            raise InvalidInput("Invalid request data: expected an object with a 'batch' array")
        raw_events: list[Any] = body["batch"]
        events, errors = parse_batch(raw_events)
        result = BatchResult(errors=[error.to_dict() for error in errors])
        accepted_ids: set[str] = set()
        authorized: list[ParsedEvent] = []
        for event in events:
            if not is_authorized(event, principal.access_level.value):
                result.errors.append(EventError.access_denied(event.event_id).to_dict())
                continue
            authorized.append(event)
            if event.kind is EntityKind.SDK_LOG:
                log.info("sdk-log", extra={"sdk_log": event.log})  # type: ignore[union-attr]
            else:
                accepted_ids.add(event.event_id)
        # Listed in the order upstream processes them (`sortBatch`): by envelope time, updates last.
        result.successes = [{"id": e.event_id, "status": 201} for e in sort_events(authorized)]
        to_store = [
            raw
            for raw in raw_events
            if type(raw) is dict
            and raw.get("id") in accepted_ids
            and raw.get("type") != EventType.SDK_LOG
        ]
        if not to_store:
            return result
        project_id = _project_of(principal)
        if any(event.kind is EntityKind.SCORE for event in events):
            to_store = await self._check_scores(project_id, events, to_store, result)
        if to_store:
            masked = await self._writer.mask(principal, to_store, headers)
            await self._writer.write(project_id, masked)
        return result

    async def _check_scores(
        self,
        project_id: str,
        events: list[ParsedEvent],
        to_store: list[dict[str, Any]],
        result: BatchResult,
    ) -> list[dict[str, Any]]:
        """Score events as their configs make them; one failing its config is reported in the
        207 and left out, like an invalid event."""
        config_ids = {
            event.event_id: event.config_id
            for event in events
            if isinstance(event, ScoreEvent) and event.config_id
        }
        configs = await self._score_configs.configs(project_id, list(config_ids.values()))
        kept: list[dict[str, Any]] = []
        rejected: set[str] = set()
        for raw in to_store:
            if raw.get("type") != EventType.SCORE_CREATE or type(raw.get("body")) is not dict:
                kept.append(raw)
                continue
            body = self._score_configs.without_server_fields(raw["body"])
            config_id = config_ids.get(raw["id"])
            if config_id is not None:
                problem = self._score_configs.apply(body, configs.get(config_id))
                if problem is not None:
                    rejected.add(raw["id"])
                    result.errors.append(
                        EventError(raw["id"], 400, INVALID_REQUEST_MESSAGE, problem).to_dict()
                    )
                    continue
            kept.append({**raw, "body": body})
        if rejected:
            result.successes = [s for s in result.successes if s["id"] not in rejected]
        return kept


class AcceptOtlpSpans:
    """`POST /api/public/otel/v1/traces`, after the edge has validated the export.

    Without maskers the export is stored as received and converted by the worker. Masking
    happens before anything is stored: `OtlpMasker`s get the export in its OTLP/JSON form (as
    Langfuse's callback does) and the masked export is stored as OTLP/JSON; other maskers get
    the events converted from it, so then the conversion happens here.
    """

    def __init__(
        self,
        writer: DurableBatchWriter,
        clock: Clock,
        codec: JsonCodec,
        decode_otlp: OtlpDecoder,
        otlp_as_json: OtlpAsJson,
    ) -> None:
        self._writer, self._clock, self._codec = writer, clock, codec
        self._decode, self._as_json = decode_otlp, otlp_as_json

    async def __call__(
        self,
        principal: Principal,
        body: bytes,
        otlp_format: str,
        sdk_version: str | None,
        headers: Mapping[str, str],
    ) -> None:
        project_id = _project_of(principal)
        writer = self._writer
        if not writer.masks:
            await writer.write_otlp(project_id, body, otlp_format, sdk_version)
            return
        if writer.masks_otlp:
            masked = await writer.mask_otlp(principal, self._as_json(body, otlp_format), headers)
            if masked is None:
                return  # dropped by a fail-closed masker, which said why
            body, otlp_format = self._codec.dumps({"resourceSpans": masked}), OTLP_JSON
            if writer.masks_only_otlp:
                await writer.write_otlp(project_id, body, otlp_format, sdk_version)
                return
        events = spans_to_ingestion_events(
            self._decode(body, otlp_format),
            sdk_version=sdk_version,
            received_at=self._clock.now(),
            new_id=sequential_ids(),
        )
        events = await writer.mask(principal, events, headers, otlp_masked=writer.masks_otlp)
        await writer.write(project_id, events)


def sequential_ids() -> Callable[[], str]:
    """Envelope ids for converted spans: unique, and far cheaper than a uuid4 per event."""
    prefix = uuid.uuid4().hex
    counter = itertools.count()
    return lambda: f"{prefix}-{next(counter)}"


@dataclass(slots=True)
class ScoreResult:
    accepted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class AcceptScores:
    """`POST /api/public/scores`: one object (the contract) or an array (SDK 5.x).

    A score naming a `configId` is checked against that config first (`ScoreConfigCheck`)
    and stored as the config makes it. Scores without a config never touch the record store.
    """

    def __init__(
        self,
        writer: DurableBatchWriter,
        clock: Clock,
        ids: IdGenerator,
        score_configs: ScoreConfigCheck,
    ) -> None:
        self._writer, self._clock, self._ids = writer, clock, ids
        self._score_configs = score_configs

    async def __call__(
        self,
        principal: Principal,
        items: list[Any],
        headers: Mapping[str, str],
        *,
        single: bool | None = None,
    ) -> ScoreResult:
        """`single`: the body was one object, so a bad score fails the request (400) instead
        of being listed in the 207; unknown (None) counts a one-item list as single."""
        project_id = _project_of(principal)
        if single is None:
            single = len(items) == 1
        now = self._clock.now()
        result = ScoreResult()
        parsed: list[tuple[ScoreEvent, dict[str, Any]]] = []
        for item in items:
            try:
                event = parse_score_request(item, now=now, new_id=self._ids.new_id)
            except InvalidInput as exc:
                if single:
                    raise
                result.errors.append(exc.message)
                continue
            parsed.append((event, self._score_configs.without_server_fields(item)))
        wanted = [event.config_id for event, _ in parsed if event.config_id]
        configs = await self._score_configs.configs(project_id, wanted)
        envelopes: list[dict[str, Any]] = []
        for event, body in parsed:
            if event.config_id:
                problem = self._score_configs.apply(body, configs.get(event.config_id))
                if problem is not None:
                    if single:
                        raise InvalidInput(problem)
                    result.errors.append(problem)
                    continue
            result.accepted.append(event.id or "")
            envelopes.append(_score_envelope(event, body, self._ids.new_id(), now))
        if envelopes:
            masked = await self._writer.mask(principal, envelopes, headers)
            await self._writer.write(project_id, masked)
        return result


class ScoreConfigCheck:
    """Scores that name a `configId`, checked against that config and inflated as it makes
    them (upstream's `validateAndInflateScore`, which upstream runs later in the worker): the
    config's name and data type, "True"/"False" for booleans and, for categorical scores, the
    chosen category's number in the body's `categoryValue`. Used by both score paths (`POST
    /api/public/scores` and `score-create` events of the batch endpoint)."""

    CATEGORY_VALUE = "categoryValue"

    def __init__(
        self, records: RecordStore, clock: Clock, configs: ScoreConfigCache | None = None
    ) -> None:
        # Wiring passes the cache the config use cases refresh, so their changes apply at
        # once; alone, a private cache still sees them within its TTL.
        self._configs = configs if configs is not None else ScoreConfigCache(records, clock)

    async def configs(self, project_id: str, config_ids: list[str]) -> Mapping[str, ScoreConfig]:
        """The named configs of the project that exist; scores without one never read them."""
        wanted = list(dict.fromkeys(config_ids))
        return await self._configs.get_many(project_id, wanted) if wanted else {}

    def without_server_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy the check may write into, without what only the server may set."""
        copy = dict(body)
        copy.pop(self.CATEGORY_VALUE, None)
        return copy

    def apply(self, body: dict[str, Any], config: ScoreConfig | None) -> str | None:
        """Validate `body` against its config and inflate it in place; the problem, if any."""
        if config is None:
            return CONFIG_NOT_FOUND
        score = ScoreInput.from_body(body)
        problems = validate_score_against_config(score, config)
        if problems:
            return "; ".join(problems)
        inflated = inflate_score(score, config)
        body["name"] = inflated.name
        body["dataType"] = inflated.data_type.value
        if inflated.data_type is ScoreDataType.CATEGORICAL:
            body[self.CATEGORY_VALUE] = inflated.value
        return None


def _score_envelope(
    event: ScoreEvent, item: dict[str, Any], envelope_id: str, now: datetime
) -> dict[str, Any]:
    body = dict(item)
    body["id"] = event.id
    body.setdefault("timestamp", event.timestamp.isoformat())
    return {"id": envelope_id, "type": "score-create", "timestamp": now.isoformat(), "body": body}


def _project_of(principal: Principal) -> str:
    from fathom.core.usecases.access import require_project

    if principal.project_id is not None:
        return principal.project_id
    return require_project(principal)


class ProcessIngestionJobs:
    """The worker step: many jobs' batches merged and written with one insert per table for
    each chunk of about `CHUNK_BYTES` of stored data.

    The CPU-heavy part (decoding, conversion, parsing, merging) runs in a thread, so that in
    `fathom serve` the web tier on the event loop keeps answering while a batch is processed.
    """

    def __init__(
        self,
        blobs: BlobStore,
        telemetry: TelemetryStore,
        codec: JsonCodec,
        clock: Clock,
        decode_otlp: OtlpDecoder,
        pricer: ObservationPricer | None = None,
        enrichers: Sequence[Enricher] = (),
        exporters: Sequence[Exporter] = (),
        experiments: RecordExperimentLinks | None = None,
        locks: Locks | None = None,
        foreground: Foreground | None = None,
        prompt_links: LinkObservationsToPrompts | None = None,
    ) -> None:
        self._blobs, self._telemetry, self._codec, self._clock = blobs, telemetry, codec, clock
        # Several workers: see `core.ports.locks` for why merge-and-write takes turns.
        self._locks: Locks = locks if locks is not None else ProcessLocks()
        # Requests this process answers meanwhile: see `core.ports.foreground`.
        self._foreground = foreground
        self._experiments = experiments
        self._prompt_links = prompt_links
        self._decode = decode_otlp
        self._pricer = pricer
        self._enrichers = list(enrichers)
        self._exporters = list(exporters)

    async def prepare(self) -> None:
        """Warm up before the first batch: building the model matcher holds the GIL for
        ~50 ms, which requests arriving with that batch would otherwise wait out."""
        if self._pricer is not None:
            await self._pricer.prepare()

    async def __call__(self, jobs: list[Job]) -> None:
        """Process `jobs` in chunks, converting the next chunk while this one is written.

        Writing is mostly the engine's own work, which runs without the GIL, so the next
        chunk's conversion overlaps it; and a chunk's objects are freed before the next
        chunk's rows are built, so a large backlog is never in memory at once. Chunks are
        merged and written in order: a later chunk's merge sees what the earlier ones stored,
        as if they had been separate batches.
        """
        chunks = job_chunks(jobs)
        converting = asyncio.ensure_future(self._convert(chunks[0]))
        try:
            for index in range(len(chunks)):
                converted = await converting
                if index + 1 < len(chunks):
                    converting = asyncio.ensure_future(self._convert(chunks[index + 1]))
                await self._write(converted.pop())
        finally:
            # Another chunk failed: the one converting meanwhile is not needed.
            converting.cancel()
            await asyncio.gather(converting, return_exceptions=True)

    async def _convert(
        self, jobs: list[Job]
    ) -> list[dict[str, tuple[list[ParsedEvent], set[str]]]]:
        """The chunk's events per project, in a list the caller empties: the task keeps its
        result alive, and the events should be freed as soon as they are written."""
        blobs = await asyncio.gather(*(self._load(job) for job in jobs))
        return [await asyncio.to_thread(self._events_by_project, jobs, blobs)]

    async def _write(self, by_project: dict[str, tuple[list[ParsedEvent], set[str]]]) -> None:
        for project_id, (events, complete) in by_project.items():
            async with self._locks.hold(f"fathom:ingestion-merge:{project_id}"):
                await self._merge_and_write(project_id, events, complete)

    async def _load(self, job: Job) -> bytes | None:
        try:
            return await self._blobs.get(job.payload["key"])
        except NotFound:
            log.error("ingestion batch %s is missing; job dropped", job.payload.get("key"))
            return None

    def _events_by_project(
        self, jobs: list[Job], blobs: list[bytes | None]
    ) -> dict[str, tuple[list[ParsedEvent], set[str]]]:
        """Parsed events per project, with the ids of observations that came as whole OTLP
        spans: a span is exported once, when it ends, so there is no stored row to merge."""
        by_project: dict[str, tuple[list[ParsedEvent], set[str]]] = defaultdict(lambda: ([], set()))
        give_way = GiveWay(self._foreground)
        for job, data in zip(jobs, blobs, strict=True):
            give_way()
            if data is None:
                continue
            payload = job.payload
            otlp_format = payload.get("format", EVENTS)
            if otlp_format == EVENTS:
                stored = self._codec.loads(data)
                assert isinstance(stored, dict)
                raw_events = stored["events"]
                received_at = _received_at(stored)
            else:
                try:
                    resource_spans = self._decode(data, otlp_format)
                except InvalidInput as exc:  # validated when accepted; a corrupt blob
                    log.error("dropping unreadable OTLP batch %s: %s", payload["key"], exc)
                    continue
                received_at = _received_at(payload)
                raw_events = spans_to_ingestion_events(
                    resource_spans,
                    sdk_version=payload.get("sdkVersion"),
                    received_at=received_at or self._clock.now(),
                    new_id=sequential_ids(),
                )
            events, errors = parse_batch(raw_events)
            if received_at is not None:
                for event in events:
                    event.received_at = received_at
            for error in errors:
                log.warning("dropping invalid stored event", extra={"event_error": error.to_dict()})
            project_events, complete = by_project[payload["projectId"]]
            project_events.extend(events)
            if otlp_format != EVENTS:
                complete.update(
                    event.id
                    for event in events
                    if event.kind is EntityKind.OBSERVATION and event.id
                )
        return by_project

    async def _merge_and_write(
        self, project_id: str, events: list[ParsedEvent], complete_observations: set[str]
    ) -> None:
        trace_ids, observation_ids, score_ids = entity_ids(events)
        observation_ids -= complete_observations
        stored_traces, stored_observations, stored_scores = await asyncio.gather(
            self._telemetry.get_traces(project_id, sorted(trace_ids)) if trace_ids else _none(),
            self._telemetry.get_observations(project_id, sorted(observation_ids))
            if observation_ids
            else _none(),
            self._telemetry.get_scores(project_id, sorted(score_ids)) if score_ids else _none(),
        )
        merged = await asyncio.to_thread(
            merge_batch,
            project_id,
            events,
            {t.id: t for t in stored_traces},
            {o.id: o for o in stored_observations},
            {s.id: s for s in stored_scores},
            self._clock.now(),
        )
        if self._prompt_links is not None and merged.observations:
            await self._prompt_links(project_id, merged.observations)
        if self._pricer is not None and merged.observations:
            await self._pricer(project_id, merged.observations)
        for enricher in self._enrichers:
            enricher.enrich(merged.traces, merged.observations)
        writes = []
        if merged.traces:
            writes.append(self._telemetry.upsert_traces(merged.traces))
        if merged.observations:
            writes.append(self._telemetry.upsert_observations(merged.observations))
        if merged.scores:
            writes.append(self._telemetry.upsert_scores(merged.scores))
        await asyncio.gather(*writes)
        if self._experiments is not None and merged.experiment_links:
            await self._experiments(project_id, merged.experiment_links, merged.observations)
        for exporter in self._exporters:
            try:
                await exporter.export(project_id, merged.traces, merged.observations, merged.scores)
            except Exception:  # an exporter must not make the batch fail and be retried
                log.exception("exporter %s failed", getattr(exporter, "name", exporter))


# A worker step converts about this much stored batch data at a time: some 5,000 spans of
# SDK-sized exports, large enough that the engine's cost per insert stays small.
CHUNK_BYTES = 8 * 1024 * 1024
# Jobs enqueued before their size was recorded count as a typical OTLP export.
_UNKNOWN_JOB_BYTES = 256 * 1024


def _job_bytes(job: Job) -> int:
    size = job.payload.get("bytes")
    return size if type(size) is int else _UNKNOWN_JOB_BYTES


def fills_a_chunk(jobs: list[Job]) -> bool:
    """Whether `jobs` hold at least a chunk of stored data: smaller batches are worth
    gathering into larger ones, since each insert has a fixed cost and the engine merges
    every part it writes."""
    return sum(map(_job_bytes, jobs)) >= CHUNK_BYTES


def backlog_fills_a_chunk(done: list[Job], waiting: int) -> bool:
    """Whether `waiting` more jobs, as large as those `done` on average, hold a chunk: then
    there is nothing to gather (at the start of a burst, the first batch is small however
    many jobs arrive while it is processed)."""
    return waiting > 0 and waiting * sum(map(_job_bytes, done)) >= CHUNK_BYTES * len(done)


def job_chunks(jobs: list[Job], limit: int = CHUNK_BYTES) -> list[list[Job]]:
    """`jobs` in order, cut into runs of at most `limit` stored bytes (at least one job each)."""
    chunks: list[list[Job]] = [[]]
    size = 0
    for job in jobs:
        job_bytes = _job_bytes(job)
        if chunks[-1] and size + job_bytes > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(job)
        size += job_bytes
    return chunks


def _received_at(document: Mapping[str, Any]) -> datetime | None:
    """When the web side accepted a stored batch (its `receivedAt`), if recorded readably."""
    value = document.get("receivedAt")
    try:
        return datetime.fromisoformat(value) if type(value) is str else None
    except ValueError:
        return None


async def _none() -> list[Any]:
    return []
