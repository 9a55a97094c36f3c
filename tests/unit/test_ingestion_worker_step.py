"""The worker step (`ProcessIngestionJobs`): merge turns between workers, and chunks.

Two workers processing batches of one trace at the same time: with the merge lock each batch
merges with what the other wrote, so neither drops the other's fields. One worker's batch is
written chunk by chunk, in order, converting the next chunk while the previous is written."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fathom.core.domain.scores import Score
from fathom.core.domain.tracing import Observation, Trace
from fathom.core.ports.locks import ProcessLocks
from fathom.core.ports.queue import Job
from fathom.core.usecases.ingestion import (
    CHUNK_BYTES,
    INGESTION_JOB,
    OTLP_PROTOBUF,
    DurableBatchWriter,
    ProcessIngestionJobs,
    fills_a_chunk,
    job_chunks,
)
from tests.unit.fakes import FakeClock, SequentialIds

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PROJECT = "p1"


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.read: list[str] = []

    async def get(self, key: str) -> bytes:
        self.read.append(key)
        return self.data[key]

    async def put(self, key: str, data: bytes, content_type: str | None) -> None:
        self.data[key] = data


class Queue:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any]]] = []

    async def enqueue(self, kind: str, payload: dict[str, Any]) -> str:
        self.jobs.append((kind, payload))
        return str(len(self.jobs))


class Codec:
    def dumps(self, value: object) -> bytes:
        return json.dumps(value).encode()

    def loads(self, data: bytes) -> object:
        return json.loads(data)


class SlowTelemetry:
    """Stored rows in memory; reads take a moment, long enough for another worker's read
    to start before this one's write."""

    def __init__(self) -> None:
        self.traces: dict[str, Trace] = {}
        self.written: list[list[str]] = []  # trace ids of each upsert

    async def get_traces(self, project_id: str, trace_ids: list[str]) -> list[Trace]:
        found = [self.traces[i] for i in trace_ids if i in self.traces]
        await asyncio.sleep(0.05)
        return found

    async def get_observations(self, project_id: str, ids: list[str]) -> list[Observation]:
        return []

    async def get_scores(self, project_id: str, ids: list[str]) -> list[Score]:
        return []

    async def upsert_traces(self, traces: list[Trace]) -> None:
        self.written.append([trace.id for trace in traces])
        for trace in traces:
            self.traces[trace.id] = trace

    async def upsert_observations(self, observations: list[Observation]) -> None:
        pass

    async def upsert_scores(self, scores: list[Score]) -> None:
        pass


def batch_job(blobs: Blobs, key: str, body: dict[str, Any], size: int | None = None) -> Job:
    """A stored batch of one trace event; `size` is the job's recorded size, when it has one."""
    event = {"id": key, "type": "trace-create", "timestamp": NOW.isoformat(), "body": body}
    payload = {"projectId": PROJECT, "receivedAt": NOW.isoformat(), "events": [event]}
    blobs.data[key] = json.dumps(payload).encode()
    job = {"projectId": PROJECT, "key": key, "format": "events"}
    return Job(key, INGESTION_JOB, job if size is None else {**job, "bytes": size})


def worker_step(blobs: Blobs, telemetry: SlowTelemetry, **options: Any) -> ProcessIngestionJobs:
    return ProcessIngestionJobs(
        blobs,  # type: ignore[arg-type]
        telemetry,  # type: ignore[arg-type]
        Codec(),
        FakeClock(NOW),
        lambda body, fmt: [],
        **options,
    )


async def test_concurrent_workers_merge_one_trace_in_turn() -> None:
    blobs, telemetry, locks = Blobs(), SlowTelemetry(), ProcessLocks()

    def worker() -> ProcessIngestionJobs:
        # The lock is shared: the deployment's lock, as two processes would see it.
        return worker_step(blobs, telemetry, locks=locks)

    children = batch_job(blobs, "b1", {"id": "t1", "userId": "u1", "timestamp": NOW.isoformat()})
    root = batch_job(blobs, "b2", {"id": "t1", "name": "root", "input": {"q": 1}})
    await asyncio.gather(worker()([children]), worker()([root]))
    trace = telemetry.traces["t1"]
    assert (trace.user_id, trace.name, trace.input) == ("u1", "root", {"q": 1})


def sized(sizes: list[int | None]) -> list[Job]:
    payloads = [{} if size is None else {"bytes": size} for size in sizes]
    return [Job(str(i), INGESTION_JOB, payload) for i, payload in enumerate(payloads)]


def test_job_chunks_cut_at_the_byte_limit_in_order() -> None:
    jobs = sized([40, 40, 30, 90, 100, 10])
    chunks = job_chunks(jobs, limit=100)
    assert [[job.id for job in chunk] for chunk in chunks] == [
        ["0", "1"],
        ["2"],
        ["3"],
        ["4"],  # exactly the limit
        ["5"],
    ]


def test_job_chunks_keep_an_oversized_job_and_count_unknown_sizes() -> None:
    assert [len(c) for c in job_chunks(sized([CHUNK_BYTES * 3]))] == [1]
    # Jobs enqueued before sizes were recorded count as 256 KiB: 32 of them per 8 MiB.
    assert [len(c) for c in job_chunks(sized([None] * 40))] == [32, 8]
    assert job_chunks([]) == [[]]


def test_a_batch_fills_a_chunk_from_its_stored_bytes() -> None:
    assert fills_a_chunk(sized([CHUNK_BYTES // 2, CHUNK_BYTES // 2]))
    assert not fills_a_chunk(sized([CHUNK_BYTES // 2, 1000]))
    assert not fills_a_chunk(sized([None] * 31))  # 256 KiB each when unrecorded
    assert fills_a_chunk(sized([None] * 32))


async def test_chunks_are_written_in_order_and_later_ones_merge_with_earlier() -> None:
    blobs, telemetry = Blobs(), SlowTelemetry()
    jobs = [
        batch_job(blobs, "b1", {"id": "t1", "name": "root"}, size=CHUNK_BYTES),
        batch_job(blobs, "b2", {"id": "t2", "name": "other"}, size=CHUNK_BYTES),
        batch_job(blobs, "b3", {"id": "t1", "userId": "u1"}, size=CHUNK_BYTES),
    ]
    await worker_step(blobs, telemetry)(jobs)
    assert telemetry.written == [["t1"], ["t2"], ["t1"]]
    trace = telemetry.traces["t1"]
    assert (trace.name, trace.user_id) == ("root", "u1")


class GatedTelemetry(SlowTelemetry):
    """Writes wait for `release`; `fail` makes the first write raise."""

    def __init__(self, *, fail: bool = False) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.fail = fail

    async def upsert_traces(self, traces: list[Trace]) -> None:
        await self.release.wait()
        if self.fail:
            raise RuntimeError("engine down")
        await super().upsert_traces(traces)


async def test_next_chunk_is_converted_while_one_is_written() -> None:
    blobs, telemetry = Blobs(), GatedTelemetry()
    jobs = [batch_job(blobs, f"b{i}", {"id": f"t{i}"}, size=CHUNK_BYTES) for i in range(2)]
    step = asyncio.create_task(worker_step(blobs, telemetry)(jobs))
    for _ in range(100):  # until the first write waits and the second chunk has been read
        await asyncio.sleep(0.01)
        if blobs.read == ["b0", "b1"]:
            break
    assert blobs.read == ["b0", "b1"] and telemetry.written == []
    telemetry.release.set()
    await step
    assert telemetry.written == [["t0"], ["t1"]]


async def test_a_failed_chunk_fails_the_batch_and_writes_no_later_chunk() -> None:
    blobs, telemetry = Blobs(), GatedTelemetry(fail=True)
    jobs = [batch_job(blobs, f"b{i}", {"id": f"t{i}"}, size=CHUNK_BYTES) for i in range(3)]
    telemetry.release.set()
    with pytest.raises(RuntimeError, match="engine down"):
        await worker_step(blobs, telemetry)(jobs)
    assert telemetry.written == [] and telemetry.traces == {}


async def test_stored_batches_are_enqueued_with_their_size() -> None:
    blobs, queue = Blobs(), Queue()
    writer = DurableBatchWriter(blobs, queue, Codec(), FakeClock(NOW), SequentialIds())  # type: ignore[arg-type]
    await writer.write(PROJECT, [{"id": "e1", "type": "trace-create", "body": {"id": "t1"}}])
    await writer.write_otlp(PROJECT, b"\x0a\x00", OTLP_PROTOBUF, "5.0.0")
    assert [payload["bytes"] for _, payload in queue.jobs] == [
        len(blobs.data[payload["key"]]) for _, payload in queue.jobs
    ]
    assert queue.jobs[1][1]["bytes"] == 2


async def test_rows_are_created_when_their_batch_was_accepted() -> None:
    # Processed an hour after acceptance (a backlog, a restart): created_at is the acceptance
    # time recorded with the batch, for stored events and OTLP exports alike.
    blobs, telemetry = Blobs(), SlowTelemetry()
    accepted = NOW - timedelta(hours=1)
    job = batch_job(blobs, "b1", {"id": "t1"})
    stored = json.loads(blobs.data["b1"])
    blobs.data["b1"] = json.dumps({**stored, "receivedAt": accepted.isoformat()}).encode()
    span = {
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "parent_span_id": None,
        "name": "root",
        "kind": 1,
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "end_time_unix_nano": 1_700_000_001_000_000_000,
        "attributes": {},
        "events": [],
        "status": {"code": 0, "message": ""},
    }
    scope = {"name": "test", "version": "1", "attributes": {}}
    export = [{"resource_attributes": {}, "scope_spans": [{"scope": scope, "spans": [span]}]}]
    blobs.data["o1"] = b"export"
    otlp_payload = {"projectId": PROJECT, "key": "o1", "format": OTLP_PROTOBUF}
    otlp_job = Job("o1", INGESTION_JOB, {**otlp_payload, "receivedAt": accepted.isoformat()})
    step = ProcessIngestionJobs(
        blobs,  # type: ignore[arg-type]
        telemetry,  # type: ignore[arg-type]
        Codec(),
        FakeClock(NOW),
        lambda body, fmt: export,  # type: ignore[arg-type, return-value]
    )
    await step([job, otlp_job])
    assert {trace.created_at for trace in telemetry.traces.values()} == {accepted}
    assert telemetry.traces.keys() == {"t1", "ab" * 16}
    assert {trace.updated_at for trace in telemetry.traces.values()} == {NOW}
